"""A ledger written by schema 3 (before the graph record and input origins) is read by this
version: migrated in place before the first read, or imported from its export, with every
old row and hash kept, `verify` passing, and its edges marked inferred, never guessed
across executions.

The fixture `fixtures/ledger-v3-export` is `lineage export --format parquet` of a ledger
written by Ledgerflow at commit 291696f (schema 3): two runs of a map over a list, a sum,
and a `when` branch; the second run's `make` was a cache hit.
"""

from __future__ import annotations

import shutil

import pytest
from pathlib import Path

import duckdb

from ledgerflow.lineage import Ledger
from ledgerflow.lineage.connection import open_ledger
from ledgerflow.lineage.exchange import read_export
from ledgerflow.lineage.schema import CHAINED_TABLES, INDEXES, INDEXES_V2, SCHEMA_VERSION, VIEWS_V2

V3_EXPORT = Path(__file__).parent / "fixtures" / "ledger-v3-export"


def build_v3_file(path: Path) -> None:
    """A schema-3 DuckDB ledger holding the fixture's rows exactly (hashes included)."""
    _, tables = read_export(V3_EXPORT)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        for t in CHAINED_TABLES:  # the tables as schema 3 had them: no optional columns, no graph_log
            if t.name != "graph_log":
                cols = [f"{c.name} {c.sql}" for c in t.columns if not c.optional]
                con.execute(f"CREATE TABLE {t.name} ({', '.join(cols)}, prev_hash BLOB NOT NULL, "
                            "row_hash BLOB NOT NULL)")
        for ddl in INDEXES + INDEXES_V2 + VIEWS_V2:
            con.execute(ddl)
        for name, data in tables.items():
            if name == "graph_log":
                continue
            old = [c for c in data.column_names if c in
                   {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                              "WHERE table_name = ?", [name]).fetchall()}]
            con.register("_rows", data.select(old))
            con.execute(f"INSERT INTO {name} ({', '.join(old)}) SELECT {', '.join(old)} FROM _rows")
            con.unregister("_rows")
    finally:
        con.close()


def hashes(path: Path) -> dict:
    with open_ledger(path, read_only=True) as con:
        return {t.name: con.execute(f"SELECT seq, row_hash FROM {t.name} ORDER BY seq").fetchall()
                for t in CHAINED_TABLES if t.name != "graph_log"}


def check_inferred_reading(ledger: Ledger) -> None:
    first, second = sorted(ledger.executions(), key=lambda e: e.started_at)
    assert {first.status, second.status} == {"succeeded"}
    graph = ledger.graph(first.id)
    assert graph.inferred
    assert {"make", "square", "total", "big", "report"} <= {n.step for n in graph.nodes}
    up = ledger.upstream(f"{first.id}:big")
    steps = {n.ref for n in up.of_kind("step")}
    # (An old map element's input is an element of a list no step produced whole: no digest
    # names its source, so inference stops there; what the new record keeps, old rows lack.)
    assert {f"{first.id}:total", f"{first.id}:square[0]"} <= steps, steps
    # Old rows name no sources: links inside an execution are inferred, and never cross into
    # the other execution, whose steps produced the very same values.
    assert not any(ref.startswith(second.id) for ref in steps), steps
    assert {e.how for e in up.edges if e.how} <= {"inferred", None} | {"param"}
    assert any(e.how == "inferred" for e in up.edges)


@pytest.mark.slow
def test_a_schema_3_file_is_migrated_before_the_first_read(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "ledger.duckdb"
    build_v3_file(path)
    before = hashes(path)
    ledger = Ledger(home)
    assert ledger.verify(store=False).ok  # verify reads too: the file is migrated first
    with open_ledger(path, read_only=True) as con:
        version = con.execute("SELECT max(CAST(value AS INTEGER)) FROM meta").fetchall()[0][0]
    assert version == SCHEMA_VERSION
    assert hashes(path) == before  # nothing rewritten
    check_inferred_reading(ledger)


def test_a_schema_3_export_imports_and_verifies(tmp_path):
    home = tmp_path / "home"
    ledger = Ledger(home)
    report = ledger.import_(str(V3_EXPORT)) if hasattr(ledger, "import_") else None
    if report is None:
        from ledgerflow.lineage.exchange import import_export

        report = import_export(ledger, V3_EXPORT)
    assert report.executions_imported and len(report.executions_imported) == 2
    assert ledger.verify(store=False).ok
    check_inferred_reading(ledger)


@pytest.mark.slow
def test_new_rows_after_the_migration_chain_on(tmp_path):
    from ledger_events import pipeline_events

    home = tmp_path / "home"
    home.mkdir()
    build_v3_file(home / "ledger.duckdb")
    ledger = Ledger(home)
    evs, _ = pipeline_events()
    for ev in evs:
        ledger.record(ev)
    ledger.close()
    assert ledger.verify(store=False).ok
    assert len(ledger.executions()) == 3


def test_fixture_is_what_it_says(tmp_path):
    shutil.copytree(V3_EXPORT, tmp_path / "x")
    manifest, tables = read_export(tmp_path / "x")
    assert manifest["schema_version"] == 3 and "graph_log" not in manifest["tables"]
