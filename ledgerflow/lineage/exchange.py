"""Ledger export to Parquet, and import of such an export into another home's chain.

`export(ledger, dir)` writes every chained table (with `seq`, `prev_hash`, `row_hash`)
and `meta` as `<table>.parquet`, plus `manifest.json` (schema version, row counts, the
chain's head), for analysis in any tool that reads Parquet.

`import_export(ledger, dir)` merges an export into `ledger`. The chain can't be copied
as it is (the target has its own seqs and hashes), so rows are *re-appended*: same
content, in the source's seq order, numbered from the target's head and hashed onto its
chain, in one transaction. Before anything is written the export's own chain is
re-walked (`chain.check`) and its head compared with the manifest, so a tampered export is
refused. What is skipped, table by table (generic over `schema.CHAINED_TABLES`):

- rows of an execution the target already has (any table with `execution_id` except
  `model_versions`, where it only says where a model came from): one execution is
  imported whole or not at all, so importing the same export twice adds nothing;
- `artifacts`, `graph_specs` and `task_identities` rows of digests the target already has (content, kept once);
- `model_versions`: versions are numbered per name by the ledger, so an imported version
  gets the target's next number for its name, unless the target has that model (name and
  digest) already, whose number it then takes; `alias_log` rows follow the renumbering,
  and an alias the target already has is left as the target has it;
- any other table (`gc_log`, tables added later): rows identical to one of the target's.

Store objects are not copied: an imported execution's artifacts are where its `uri` says.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import attrs
import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ledgerflow.errors import ExchangeError, IntegrityError
from ledgerflow.lineage import chain, moving, append
from ledgerflow.lineage.connection import open_ledger
from ledgerflow.regular_files import NotARegularFile, check_regular, open_regular
from ledgerflow.lineage.schema import ARTIFACTS, CHAINED_TABLES, GRAPH_SPECS, TASK_IDENTITIES, SCHEMA_VERSION, TABLES_BY_NAME, ensure_schema

MANIFEST = "manifest.json"
FORMAT = "ledgerflow-ledger-export/1"


@attrs.frozen
class ExportReport:
    """What `export` wrote: rows per table, and the chain's head as exported."""

    directory: str
    tables: dict  # table -> rows
    head_seq: int
    head_hash: str

    def to_json(self):
        return attrs.asdict(self)


@attrs.frozen
class ImportReport:
    """What `import_export` appended: rows per table, and what it skipped and why."""

    directory: str
    imported: dict  # table -> rows appended
    skipped: dict  # table -> rows skipped
    executions_imported: tuple  # ids
    executions_skipped: tuple  # ids the target already had
    first_seq: int | None  # the target's seqs of the appended rows (None: nothing appended)
    last_seq: int | None
    head_hash: str  # the target's head after the import

    def to_json(self):
        return attrs.asdict(self)


def export(ledger, directory: str | os.PathLike) -> ExportReport:
    """Write every ledger table of `ledger` as Parquet under `directory` (created; must be empty).

    >>> from ledgerflow import Ledger
    >>> report = export(Ledger(home), "ledger-export")     # the home holds one execution, ex
    >>> report.tables["execution_log"], report.tables["step_log"]     # its start and end; its two steps
    (2, 2)
    """
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExchangeError(f"{out} exists and is not an empty directory: export into a new one")
    ledger.sync()  # what is still journaled goes out too
    if not ledger.path.exists():
        raise ExchangeError(f"no ledger at {ledger.path} (nothing has been recorded there yet)")
    out.mkdir(parents=True, exist_ok=True)
    counts: dict = {}
    # One read-only connection: every table comes from the same snapshot of the file.
    with open_ledger(ledger.path, read_only=True, timeout=ledger.lock_timeout) as con:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        version = con.execute("SELECT max(CAST(value AS INTEGER)) FROM meta WHERE key = 'schema_version'").fetchall()
        for t in CHAINED_TABLES:
            if t.name not in present:  # an older file, not migrated yet: the table is empty
                continue
            cols = ", ".join(t.column_names + ("prev_hash", "row_hash"))
            counts[t.name] = _copy(con, f"SELECT {cols} FROM {t.name} ORDER BY seq", out / f"{t.name}.parquet")
        counts["meta"] = _copy(con, "SELECT key, value FROM meta", out / "meta.parquet")
        walked = chain.check(con, max_problems=1)
    manifest = {
        "format": FORMAT,
        "schema_version": int(version[0][0]),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "source": str(ledger.home.path),
        "store": ledger.home.store_url,
        "tables": counts,
        "head_seq": walked.head_seq,
        "head_hash": walked.head_hash,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportReport(str(out), counts, walked.head_seq, walked.head_hash)


def _copy(con, query: str, path: Path) -> int:
    # DuckDB writes Parquet itself (no round trip through Python), BLOB hashes as binary.
    escaped = str(path).replace("'", "''")
    con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT parquet)").fetchall()
    return con.execute(f"SELECT count(*) FROM read_parquet('{escaped}')").fetchall()[0][0]


def read_export(directory: str | os.PathLike) -> tuple:
    """(manifest, {table: Arrow table}) of an export, its chain verified; IntegrityError if tampered.

    The rows are cast to this version's column types, so an export that lost or retyped a
    column is refused rather than half imported.
    """
    src = Path(directory)
    try:
        with open_regular(src / MANIFEST) as f:
            manifest = json.loads(f.read().decode())
    except NotARegularFile as exc:
        raise ExchangeError(f"{src / MANIFEST}: {exc.strerror}") from None
    except FileNotFoundError:
        raise ExchangeError(f"{src} is not a ledger export (no {MANIFEST})") from None
    except ValueError as exc:
        raise ExchangeError(f"{src / MANIFEST} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ExchangeError(f"{src} is not a ledger export of a format this Ledgerflow reads ({manifest.get('format')!r})")
    version = int(manifest.get("schema_version", 0))
    unknown = set(manifest.get("tables", {})) - set(TABLES_BY_NAME) - {"meta"}
    if version > SCHEMA_VERSION or unknown:
        raise ExchangeError(f"the export at {src} has schema version {version}; this Ledgerflow reads up to "
                            f"{SCHEMA_VERSION}: upgrade it")
    tables: dict = {}
    con = duckdb.connect(config={"threads": 1})
    try:
        for t in CHAINED_TABLES:
            if t.name not in manifest["tables"]:
                continue
            path = src / f"{t.name}.parquet"
            if not path.exists():
                raise IntegrityError(f"the export at {src} is missing {path.name}, which its manifest lists",
                                     location=str(path))
            try:
                check_regular(path)  # DuckDB would wait on a FIFO forever
            except NotARegularFile as exc:
                raise ExchangeError(f"{path}: {exc.strerror}") from None
            schema = t.arrow_schema.append(pa.field("prev_hash", pa.binary())).append(pa.field("row_hash", pa.binary()))
            try:
                data = _read_parquet(con, path)
                for column in t.columns:
                    if column.optional and column.name not in data.column_names:
                        # Exported by an older schema: a column it did not have is NULL
                        # throughout, which the chain does not encode (see chain.py).
                        data = data.append_column(column.name, pa.nulls(data.num_rows, column.arrow))
                data = data.select(schema.names).cast(schema)
            except (duckdb.Error, pa.ArrowInvalid, KeyError, ValueError) as exc:
                raise IntegrityError(f"{path} does not hold the {t.name} table: {str(exc).splitlines()[0]}",
                                     location=str(path)) from None
            tables[t.name] = data
            con.register(f"_{t.name}", data)
            con.execute(f"CREATE TABLE {t.name} AS SELECT * FROM _{t.name}").fetchall()
        walked = chain.check(con, max_problems=1)
    finally:
        con.close()
    if walked.problems:
        raise IntegrityError(f"the export at {src} fails verification: {walked.problems[0]}", location=str(src))
    if (walked.head_seq, walked.head_hash) != (manifest.get("head_seq"), manifest.get("head_hash")):
        raise IntegrityError(
            f"the export at {src} ends at seq {walked.head_seq} {walked.head_hash[:16]}, but its manifest says "
            f"seq {manifest.get('head_seq')} {str(manifest.get('head_hash'))[:16]}: rows were removed or added",
            location=str(src))
    return manifest, tables


def _read_parquet(con, path: Path) -> pa.Table:
    escaped = str(path).replace("'", "''")
    return con.sql(f"SELECT * FROM read_parquet('{escaped}')").to_arrow_table()


def import_export(ledger, directory: str | os.PathLike) -> ImportReport:
    """Merge the export in `directory` into `ledger`'s chain (see the module docstring).

    >>> from ledgerflow import Ledger
    >>> export(Ledger(home), "ledger-export").tables["step_log"]
    2
    >>> report = import_export(Ledger("other-home"), "ledger-export")
    >>> report.executions_imported == (ex.id,)
    True
    """
    _, tables = read_export(directory)
    ledger.sync()  # what is journaled goes first
    if ledger.server is None:
        with open_ledger(ledger.path, timeout=ledger.lock_timeout) as con:
            head_seq, head_hash, kept, skipped, executions, appended = _merge(con, tables)
    else:  # a team ledger: merged into the copy under the server's head, sent, committed there first
        with moving.server_head(ledger.path, ledger.server, timeout=ledger.lock_timeout) as (con, pg, after):
            head_seq, head_hash, kept, skipped, executions, appended = _merge(
                con, tables, lambda: moving.send(pg, con, after))
    new_head = appended[-1] if appended else (None, head_hash)
    return ImportReport(
        directory=str(directory),
        imported={name: data.num_rows for name, data in kept.items() if data.num_rows},
        skipped={name: n for name, n in skipped.items() if n},
        executions_imported=executions[0],
        executions_skipped=executions[1],
        first_seq=head_seq + 1 if appended else None,
        last_seq=new_head[0],
        head_hash=new_head[1].hex() if isinstance(new_head[1], bytes) else new_head[1],
    )


def _merge(con, tables: dict, before_commit=lambda: None) -> tuple:
    """Append what the export has and the ledger (`con`) lacks, in one transaction."""
    con.execute("BEGIN").fetchall()
    try:
        ensure_schema(con)
        head_seq, head_hash = append.head(con)
        kept, skipped, executions = _select(con, tables)
        appended = _append(con, kept, head_seq, head_hash)
        before_commit()
        con.execute("COMMIT").fetchall()
    except BaseException:
        append.rollback(con)  # a failed COMMIT has ended the transaction already: keep its error
        raise
    return head_seq, head_hash, kept, skipped, executions, appended


def _column(con, table: str, col: str) -> set:
    return {r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM {table}").fetchall()}


def _select(con, tables: dict) -> tuple:
    """The rows of each source table to append, what was skipped per table, and the executions."""
    target_execs = _column(con, "execution_log", "execution_id")
    source_execs = list(dict.fromkeys(tables["execution_log"].column("execution_id").to_pylist())) \
        if "execution_log" in tables else []
    kept: dict = {}
    skipped: dict = {}
    versions: dict = {}  # (name, source version) -> target version
    for t in CHAINED_TABLES:
        data = tables.get(t.name)
        if data is None or data.num_rows == 0:
            continue
        if t.name == "model_versions":
            keep, versions = _model_versions(con, data)
            data = _renumber(data, "version", versions)
        elif t.name == "alias_log":
            keep = _alias_rows(con, data, versions)
            data = _renumber(_renumber(data, "version", versions), "previous_version", versions)
        elif "execution_id" in t.column_names:
            keep = pc.invert(pc.is_in(data.column("execution_id"), pa.array(sorted(target_execs), pa.string())))
            keep = pc.fill_null(keep, True)
        elif t in (ARTIFACTS, GRAPH_SPECS, TASK_IDENTITIES):  # content by digest: kept once
            keep = pc.invert(pc.is_in(data.column("digest"), pa.array(sorted(_column(con, t.name, "digest")),
                                                                        pa.string())))
        else:
            keep = _not_in_target(con, t, data)
        filtered = data.filter(keep)
        kept[t.name] = filtered
        skipped[t.name] = data.num_rows - filtered.num_rows
    imported = tuple(e for e in source_execs if e not in target_execs)
    already = tuple(e for e in source_execs if e in target_execs)
    return kept, skipped, (imported, already)


def _model_versions(con, data: pa.Table) -> tuple:
    """Which source model versions to append, and each source (name, version)'s number in the target."""
    existing = {(n, d): v for n, d, v in con.execute("SELECT name, digest, version FROM model_versions").fetchall()}
    top = dict(con.execute("SELECT name, max(version) FROM model_versions GROUP BY name").fetchall())
    keep, mapping = [], {}
    for name, version, digest in zip(*(data.column(c).to_pylist() for c in ("name", "version", "digest"))):
        if (name, digest) in existing:
            mapping[(name, version)] = existing[(name, digest)]
            keep.append(False)
            continue
        top[name] = (top.get(name) or 0) + 1
        mapping[(name, version)] = existing[(name, digest)] = top[name]
        keep.append(True)
    return pa.array(keep, pa.bool_()), mapping


def _alias_rows(con, data: pa.Table, versions: dict) -> pa.Array:
    # The target's aliases are its own decisions: an alias it has is not moved by an import.
    theirs = set(con.execute("SELECT DISTINCT name, alias FROM alias_log").fetchall())
    keep = []
    for name, alias, version in zip(*(data.column(c).to_pylist() for c in ("name", "alias", "version"))):
        keep.append((name, alias) not in theirs and (name, version) in versions)
    return pa.array(keep, pa.bool_())


def _renumber(data: pa.Table, col: str, versions: dict) -> pa.Table:
    names = data.column("name").to_pylist()
    old = data.column(col).to_pylist()
    new = [None if v is None else versions.get((n, v), v) for n, v in zip(names, old)]
    i = data.schema.get_field_index(col)
    return data.set_column(i, data.schema.field(i), pa.array(new, data.schema.field(i).type))


def _not_in_target(con, t, data: pa.Table) -> pa.Array:
    """Rows with no identical row (all content columns but seq) in the target's table."""
    cols = [c for c in t.column_names if c != "seq"]
    con.register("_incoming", data.select(cols).append_column("_i", pa.array(range(data.num_rows), pa.int64())))
    try:
        match = " AND ".join(f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in cols)
        dup = {r[0] for r in con.execute(
            f"SELECT s._i FROM _incoming s WHERE EXISTS (SELECT 1 FROM {t.name} t WHERE {match})").fetchall()}
    finally:
        con.unregister("_incoming")
    return pa.array([i not in dup for i in range(data.num_rows)], pa.bool_())


def _append(con, kept: dict, head_seq: int, head_hash: bytes) -> list:
    """Renumber the kept rows in source seq order from the target's head, chain them, insert them.

    Returns [(seq, row_hash)] of the appended rows in order.
    """
    order = []  # (source seq, table name, row index)
    for name, data in kept.items():
        order.extend((s, name, i) for i, s in enumerate(data.column("seq").to_pylist()))
    if not order:
        return []
    order.sort()
    new_seq: dict = {name: [None] * data.num_rows for name, data in kept.items()}
    for n, (_, name, i) in enumerate(order, start=head_seq + 1):
        new_seq[name][i] = n
    parts = []
    for name, data in kept.items():
        if data.num_rows:
            t = TABLES_BY_NAME[name]
            parts.append((t, data.select(t.column_names).set_column(0, "seq", pa.array(new_seq[name], pa.int64()))))
    hashes = append.insert_chained(con, parts, head_seq, head_hash)
    return list(zip(range(head_seq + 1, head_seq + 1 + len(order)), hashes))
