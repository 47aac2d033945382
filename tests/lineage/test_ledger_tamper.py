"""Tamper evidence: rows edited, deleted, inserted or reordered directly in the DuckDB
file, and store objects whose bytes changed, are all caught by `verify`, which names them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat

import duckdb
import pytest
from hypothesis import given, settings, strategies as st

from ledgerflow.lineage import Ledger
from ledgerflow.lineage.schema import CHAINED_TABLES
from ledger_events import pipeline_events, retrain_events


def build(home) -> Ledger:
    led = Ledger(home)
    evs, arts = pipeline_events(train_failures=1)
    for ev in evs:
        led.record(ev)
    for ev in retrain_events(arts["dataset"], lr=0.01, dataset_from=arts["id"])[0]:
        led.record(ev)
    led.close()
    assert led.verify(store=False).ok
    return led


def tamper(led: Ledger, *statements):
    con = duckdb.connect(str(led.path))
    try:
        for s in statements:
            con.execute(s).fetchall()
    finally:
        con.close()


def first(led):
    report = led.verify(store=False)
    assert not report.ok
    return report.problems[0]


@pytest.fixture
def led(tmp_path):
    return build(tmp_path / "home")


def test_edited_row_is_named(led):
    seq = led.sql("SELECT seq FROM step_log WHERE state = 'failed'").to_pylist()[0]["seq"]
    tamper(led, f"UPDATE step_log SET state = 'succeeded', error = NULL WHERE seq = {seq}")
    p = first(led)
    assert (p.table, p.seq, p.what) == ("step_log", seq, "changed")


def test_edited_parameter_value_is_named(led):
    seq = led.sql("SELECT seq FROM artifacts WHERE value = '0.001'").to_pylist()[0]["seq"]
    tamper(led, f"UPDATE artifacts SET value = '0.1' WHERE seq = {seq}")
    p = first(led)
    assert (p.table, p.seq, p.what) == ("artifacts", seq, "changed")


def test_edit_with_recomputed_row_hash_is_caught_at_the_next_row(led):
    # An attacker who re-hashes the edited row still breaks the link to the next one.
    from ledgerflow.lineage import chain
    from ledgerflow.lineage.schema import METRICS

    row = led.sql("SELECT * FROM metrics ORDER BY seq LIMIT 1")
    seq = row.column("seq")[0].as_py()
    import pyarrow as pa

    forged = row.set_column(row.schema.get_field_index("value"), "value", pa.array([0.01]))
    enc = chain.encode_rows(METRICS, forged.select(list(METRICS.column_names)))[0]
    new_hash = chain.chain(row.column("prev_hash")[0].as_py(), [enc])[0]
    tamper(led, f"UPDATE metrics SET value = 0.01, row_hash = from_hex('{new_hash.hex()}') WHERE seq = {seq}")
    report = led.verify(store=False)
    assert not report.ok
    assert report.problems[0].seq == seq + 1


def test_deleted_row_is_named(led):
    seq = led.sql("SELECT seq FROM edges WHERE name = 'data' ORDER BY seq LIMIT 1").to_pylist()[0]["seq"]
    tamper(led, f"DELETE FROM edges WHERE seq = {seq}")
    p = first(led)
    assert p.what == "removed" and p.seq == seq + 1 and f"seq {seq}" in p.detail


def test_deleted_execution_is_named(led):
    eid = led.executions()[0].id
    lo = led.sql(f"SELECT min(seq) AS s FROM execution_log WHERE execution_id = '{eid}'").to_pylist()[0]["s"]
    tamper(
        led,
        *[f"DELETE FROM {t.name} WHERE seq >= {lo} AND seq < (SELECT max(seq) FROM execution_log)" for t in CHAINED_TABLES],
    )
    p = first(led)
    assert p.what == "removed" and f"seq {lo}" in p.detail


def test_inserted_row_is_named(led):
    seq = led.sql("SELECT seq FROM step_log ORDER BY seq LIMIT 1 OFFSET 2").to_pylist()[0]["seq"]
    tamper(led, f"INSERT INTO step_log SELECT * FROM step_log WHERE seq = {seq}")
    tamper(led, f"UPDATE step_log SET state = 'skipped' WHERE seq = {seq} AND rowid = (SELECT max(rowid) FROM step_log)")
    problems = led.verify(store=False).problems
    assert [(p.table, p.seq, p.what) for p in problems] == [("step_log", seq, "inserted")]


def test_appended_forged_row_is_named(led):
    head = led.verify(store=False).head_seq
    tamper(
        led,
        f"INSERT INTO metrics (seq, execution_id, step, name, value, idx, logged_at, prev_hash, row_hash) "
            f"VALUES ({head + 1}, 'X', 'train', 'loss', 0.0, NULL, NULL, "
        f"from_hex('{'ab' * 32}'), from_hex('{'cd' * 32}'))",
    )
    p = first(led)
    assert (p.table, p.seq, p.what) == ("metrics", head + 1, "inserted")


def test_reordered_rows_are_named(led):
    a, b = [r["seq"] for r in led.sql("SELECT seq FROM edges ORDER BY seq LIMIT 2 OFFSET 3").to_pylist()]
    tamper(led, f"UPDATE edges SET seq = -1 WHERE seq = {a}", f"UPDATE edges SET seq = {a} WHERE seq = {b}",
           f"UPDATE edges SET seq = {b} WHERE seq = -1")
    p = first(led)
    assert (p.table, p.seq, p.what) == ("edges", a, "reordered")
    assert f"seq {b}" in p.detail


def test_edited_prev_hash_is_named(led):
    seq = led.sql("SELECT seq FROM execution_log ORDER BY seq LIMIT 1").to_pylist()[0]["seq"]
    tamper(led, f"UPDATE execution_log SET prev_hash = from_hex('{'11' * 32}') WHERE seq = {seq}")
    p = first(led)
    assert (p.table, p.seq) == ("execution_log", seq)


@pytest.mark.slow
def test_modified_store_object_is_named(tmp_path):
    from ledgerflow.store import Store

    home = tmp_path / "home"
    led = build(home)
    store = Store.open(home / "store")
    good = store.put_bytes(b"model weights " * 100)
    bad = store.put_bytes(b"training data " * 100)
    assert led.verify().ok and led.verify().objects_checked == 2
    path = store.local_path(bad)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.write(b"X")
    report = led.verify()
    assert not report.ok and report.problems == ()
    assert [p.digest for p in report.object_problems] == [bad]
    assert good not in str(report.object_problems)


# ---- any single-row change is detected --------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    led = build(tmp_path_factory.mktemp("pristine") / "home")
    rows = []
    for t in CHAINED_TABLES:
        for r in led.sql(f"SELECT seq FROM {t.name}").to_pylist():
            rows.append((t, r["seq"]))
    return led, rows


def _new_value(draw, column, old):
    if column.sql == "VARCHAR":
        return draw(st.none() | st.text(max_size=8).filter(lambda s: s != old))
    if column.sql in ("BIGINT", "INTEGER"):
        return draw(st.none() | st.integers(-(2**31), 2**31 - 1).filter(lambda v: v != old))
    if column.sql == "DOUBLE":
        return draw(st.none() | st.floats(allow_nan=False).filter(lambda v: v != old or str(v) != str(old)))
    if column.sql == "TIMESTAMP":
        return draw(st.none() | st.datetimes(min_value=dt.datetime(1990, 1, 1)).filter(lambda v: v != old))
    raise AssertionError(column)


@settings(max_examples=40)
@given(data=st.data())
@pytest.mark.slow
def test_any_single_value_change_is_detected(pristine, tmp_path_factory, data):
    led, rows = pristine
    table, seq = data.draw(st.sampled_from(rows))
    columns = [c for c in table.columns if c.name != "seq"]  # moving rows: see test_reordered_rows_are_named
    column = data.draw(st.sampled_from(columns + ["prev_hash", "row_hash"]))
    copy = tmp_path_factory.mktemp("copy") / "home"
    shutil.copytree(led.home.path, copy)
    victim = Ledger(copy)
    if column in ("prev_hash", "row_hash"):
        old = victim.sql(f"SELECT {column} AS v FROM {table.name} WHERE seq = {seq}").to_pylist()[0]["v"]
        # (the first row's prev_hash is the genesis, 32 zero bytes: a draw of those changes nothing)
        new = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != old))
        tamper(victim, f"UPDATE {table.name} SET {column} = from_hex('{new.hex()}') WHERE seq = {seq}")
    else:
        old = victim.sql(f"SELECT {column.name} AS v FROM {table.name} WHERE seq = {seq}").to_pylist()[0]["v"]
        new = _new_value(data.draw, column, old)
        if new is None and old is None:
            return
        con = duckdb.connect(str(victim.path))
        con.execute(f"UPDATE {table.name} SET {column.name} = ? WHERE seq = ?", [new, seq]).fetchall()
        con.close()
    report = victim.verify(store=False)
    assert not report.ok
    assert report.problems[0].table == table.name and report.problems[0].seq == seq, report.problems


# ---- what readers trust: the views, and the store after the home moved -------------------


@pytest.mark.slow
def test_a_redefined_view_is_caught_by_verify_and_fools_no_reader(tmp_path):
    from ledgerflow.lineage.schema import VIEWS
    from ledger_events import pipeline_events as events

    led = Ledger(tmp_path / "home")
    evs, arts = events(fail_evaluate=True)
    for ev in evs:
        led.record(ev)
    led.close()
    failed = arts["id"]
    assert {e.id: e.status for e in led.executions()} == {failed: "failed"}
    # The `executions` view redefined in the file, behind the engine's back: every run succeeded.
    forged = VIEWS[0].replace("l.state AS status", "'succeeded' AS status")
    assert forged != VIEWS[0]
    tamper(led, forged)
    report = led.verify(store=False)
    assert not report.ok and report.problems == ()  # the chain is intact; the view is not
    [p] = report.schema_problems
    assert (p.kind, p.name, p.what) == ("view", "executions", "changed")
    assert str(report.first_problem).startswith("view executions: changed")
    # Readers use the code's views, not the file's: `list`, `show` and `query sql` still say failed.
    assert [e.status for e in led.executions()] == ["failed"]
    assert led.execution(failed[:10]).status == "failed"
    assert led.sql("SELECT status FROM executions").to_pylist() == [{"status": "failed"}]

    from click.testing import CliRunner
    from ledgerflow.app.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(led.home.path), "verify", "--no-store"])
    assert result.exit_code == 1 and "view executions: changed" in result.output, result.output


def test_a_dropped_view_an_added_view_and_a_macro_are_caught(led):
    tamper(led, "DROP VIEW tags", "CREATE VIEW extra AS SELECT 1 AS x",
           "CREATE MACRO epoch(x) AS 0")  # would shadow the built-in in every view that uses it
    found = {(p.kind, p.name, p.what) for p in led.verify(store=False).schema_problems}
    assert found == {("view", "tags", "removed"), ("view", "extra", "unexpected"), ("macro", "epoch", "unexpected")}


@pytest.mark.slow
def test_verify_checks_the_store_of_a_moved_home(tmp_path):
    from ledgerflow.engine.events import ArtifactRef
    from ledgerflow.store import Store
    from ledger_events import T0, new_id, steps_of
    from ledgerflow.engine.events import ExecutionFinished, ExecutionStarted

    old = tmp_path / "old" / "home"
    store = Store.open(old / "store")
    digests = [store.put_bytes(b"object %d " % i * 100) for i in range(3)]
    led = Ledger(old)
    e = new_id()
    outs = tuple((f"o{i}", ArtifactRef(digest=d, kind="file", type="File", size=1000, uri=store.url))
                 for i, d in enumerate(digests))
    led.record(ExecutionStarted(e, "m:wf", "blake3:00", "{}", (), "local", T0, "host", 1))
    for ev in steps_of(e, "make", "m:make", (), outs, T0):
        led.record(ev)
    led.record(ExecutionFinished(e, "succeeded", T0))
    led.close()
    assert led.verify().ok

    new = tmp_path / "elsewhere" / "home"
    new.parent.mkdir()
    shutil.move(str(old), str(new))
    moved = Ledger(new)
    report = moved.verify()
    assert report.ok and report.objects_checked == 3, report
    assert str(old / "store") in report.store_note and "moved" in report.store_note
    # Still checked: an object lost after the move is named, though recorded under the old path.
    Store.open(new / "store").local_path(digests[1]).unlink()
    report = moved.verify()
    assert not report.ok
    [p] = report.object_problems
    assert p.digest == digests[1] and "missing" in p.detail and str(new / "store") in p.detail
