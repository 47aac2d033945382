"""The ledger as Recorder, ActionCache and query API, on real DuckDB files."""

from __future__ import annotations

import math
import threading
import time

import duckdb
import pytest
from hypothesis import given, settings, strategies as st

from ledgerflow.engine.events import (
    FAILED,
    SUCCEEDED,
    ArtifactRef,
    ExecutionFinished,
    ExecutionStarted,
    MetricLogged,
    Recorder,
    ActionCache,
    StepFinished,
    StepStarted,
)
from ledgerflow.errors import LedgerError, RefError
from ledgerflow.lineage import Ledger
from ledgerflow.lineage.schema import SCHEMA_VERSION
from ledger_events import T0, chain_events, new_id, pipeline_events, retrain_events, value


def record_all(ledger, events):
    for ev in events:
        ledger.record(ev)
    ledger.sync()


@pytest.fixture(params=["file", "server"])
def ledger(tmp_path, request):
    """The home's DuckDB file, or a team ledger on PostgreSQL: every test using it runs on both."""
    url = request.getfixturevalue("team_ledger").writer_url if request.param == "server" else None
    led = Ledger(tmp_path / "home", ledger=url)
    yield led
    led.close()


def test_is_a_recorder_and_an_action_cache(ledger):
    assert isinstance(ledger, Recorder)
    assert isinstance(ledger, ActionCache)


def test_records_an_execution_and_reads_it_back(ledger):
    evs, arts = pipeline_events()
    record_all(ledger, evs)
    [summary] = ledger.executions()
    assert summary.id == arts["id"]
    assert summary.status == SUCCEEDED
    assert summary.workflow == "examples.quickstart:pipeline"
    assert summary.duration_s == pytest.approx(19.0)
    detail = ledger.execution(arts["id"])
    assert [s.step for s in detail.steps] == ["ingest", "train", "evaluate"]
    assert detail.params == {"n": 500, "lr": 0.001}
    assert [b.name for b in detail.inputs] == ["n", "lr"]
    assert [(b.name, b.artifact.digest) for b in detail.outputs] == [
        ("model", arts["model"].digest), ("score", arts["score"].digest)
    ]
    train = detail.steps[1]
    assert [(b.name, b.artifact.digest) for b in train.inputs] == [
        ("data", arts["dataset"].digest), ("lr", arts["lr"].digest)
    ]
    assert train.outputs[0].artifact.kind == "model"
    assert train.outputs[0].artifact.type == "Model[sklearn]"
    assert [(m.name, m.value, m.index) for m in train.metrics] == [("loss", 0.25, 1)]
    assert train.cache_key is not None and not train.cache_hit


def test_schema_version_is_recorded(ledger):
    record_all(ledger, pipeline_events()[0])
    rows = ledger.sql("SELECT value FROM meta WHERE key = 'schema_version'").to_pylist()
    assert rows == [{"value": str(SCHEMA_VERSION)}]


def test_flush_is_one_transaction_per_batch_and_in_bulk(ledger):
    evs = chain_events(200)
    for ev in evs[:-1]:
        ledger.record(ev)
    ledger.flush()
    n = ledger.sql("SELECT count(*) AS n FROM step_log").to_pylist()[0]["n"]
    assert n == 200  # start and finish in one batch: only the final row of each attempt
    seqs = [r["seq"] for r in ledger.sql(
        "SELECT seq FROM (SELECT seq FROM execution_log UNION ALL SELECT seq FROM step_log UNION ALL "
        "SELECT seq FROM artifacts UNION ALL SELECT seq FROM edges UNION ALL SELECT seq FROM metrics) AS s ORDER BY 1"
    ).to_pylist()]
    assert seqs == list(range(1, len(seqs) + 1))  # global, gap-free


def test_background_thread_journals_within_the_interval(tmp_path):
    """What one Ledger records reaches its journal on its own; another reader (which moves the
    journals into the file first) sees it, the execution still running."""
    led = Ledger(tmp_path / "h", flush_interval=0.05)
    evs, arts = pipeline_events(finish=False)
    for ev in evs:
        led.record(ev)
    reader = Ledger(tmp_path / "h")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if reader.sql("SELECT count(*) AS n FROM steps").to_pylist()[0]["n"] == 3:
            break
        time.sleep(0.05)
    else:
        pytest.fail("events were not journaled by the background thread")
    assert not led.path.with_name("ledger.duckdb.wal").exists()
    assert reader.executions()[0].status == "running"
    led.close()


def test_execution_finished_is_written_before_record_returns(ledger):
    evs, arts = pipeline_events()
    for ev in evs:
        ledger.record(ev)
    assert ledger.executions()[0].status == SUCCEEDED  # no flush() call


def test_steps_view_counts_each_step_once(ledger):
    record_all(ledger, pipeline_events(train_failures=2)[0])
    record_all(ledger, pipeline_events()[0])
    rows = ledger.sql("SELECT task, count(*) AS n FROM steps GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [
        {"task": "examples.quickstart:evaluate", "n": 2},
        {"task": "examples.quickstart:ingest", "n": 2},
        {"task": "examples.quickstart:train", "n": 2},
    ]
    attempts = ledger.sql("SELECT count(*) AS n FROM attempts WHERE task LIKE '%train'").to_pylist()[0]["n"]
    assert attempts == 4


# ---- audit scenarios ----------------------------------------------------------------


def test_audit_what_produced_this_model(ledger):
    evs, arts = pipeline_events(lr=0.001)
    record_all(ledger, evs)
    up = ledger.upstream(arts["model"].digest)
    refs = {(n.kind, n.ref): n.depth for n in up.nodes}
    assert refs[("step", f"{arts['id']}:train")] == 1
    assert refs[("artifact", arts["dataset"].digest)] == 2
    assert refs[("artifact", arts["lr"].digest)] == 2
    assert refs[("step", f"{arts['id']}:ingest")] == 3
    assert refs[("artifact", arts["n"].digest)] == 4
    assert ("execution", arts["id"]) in refs  # the parameters' source
    lr_node = next(n for n in up.nodes if n.ref == arts["lr"].digest)
    assert lr_node.artifact.value == "0.001"
    names = {(e.source, e.target, e.name) for e in up.edges}
    assert (arts["dataset"].digest, f"{arts['id']}:train", "data") in names
    assert (arts["id"], arts["lr"].digest, "lr") in names
    # The evaluation is downstream, not upstream.
    assert ("step", f"{arts['id']}:evaluate") not in refs


def test_audit_which_models_were_trained_on_this_dataset(ledger):
    evs, arts = pipeline_events()
    record_all(ledger, evs)
    evs2, arts2 = retrain_events(arts["dataset"], lr=0.01, dataset_from=arts["id"])
    record_all(ledger, evs2)
    down = ledger.downstream(arts["dataset"].digest)
    models = {n.ref for n in down.of_kind("artifact") if n.artifact.kind == "model"}
    assert models == {arts["model"].digest, arts2["model"].digest}
    steps = {n.ref for n in down.of_kind("step")}
    assert f"{arts2['id']}:train" in steps and f"{arts['id']}:train" in steps
    # ...and upstream of the second model crosses back into the first execution.
    up = ledger.upstream(arts2["model"].digest)
    assert f"{arts['id']}:ingest" in {n.ref for n in up.of_kind("step")}


def test_audit_which_executions_used_lr(ledger):
    a = pipeline_events(lr=0.001)
    b = pipeline_events(lr=0.01)
    c = pipeline_events(lr=0.001)
    for evs, _ in (a, b, c):
        record_all(ledger, evs)
    rows = ledger.sql("SELECT execution_id FROM params WHERE name = 'lr' AND value = '0.001' ORDER BY 1").to_pylist()
    assert [r["execution_id"] for r in rows] == sorted([a[1]["id"], c[1]["id"]])


def test_failures_and_retries_are_visible(ledger):
    evs, arts = pipeline_events(train_failures=2, fail_evaluate=True)
    record_all(ledger, evs)
    d = ledger.execution(arts["id"])
    assert d.status == FAILED
    train = next(s for s in d.steps if s.step == "train")
    assert [a.status for a in train.attempts] == [FAILED, FAILED, SUCCEEDED]
    assert train.attempts[0].error == "RuntimeError: CUDA out of memory"
    assert train.attempts[0].traceback.startswith("Traceback")
    assert train.status == SUCCEEDED
    evaluate = next(s for s in d.steps if s.step == "evaluate")
    assert evaluate.status == FAILED and evaluate.error.startswith("RuntimeError")
    assert d.summary.error == "RuntimeError: CUDA out of memory"


def test_depth_limits_the_walk(ledger):
    record_all(ledger, chain_events(10))
    last = ledger.sql("SELECT digest FROM edges WHERE step = '@outputs'").to_pylist()[0]["digest"]
    up = ledger.upstream(last, depth=3)
    assert max(n.depth for n in up.nodes) == 3
    assert len(up.of_kind("step")) == 2
    full = ledger.upstream(last)
    assert len(full.of_kind("step")) == 10


# ---- refs -------------------------------------------------------------------------


def test_refs_prefixes_steps_and_errors(ledger):
    evs, arts = pipeline_events()
    record_all(ledger, evs)
    model = arts["model"].digest
    assert ledger.resolve(model[:16]).digest == model
    assert ledger.resolve(model[len("blake3:"):][:10]).digest == model
    assert ledger.resolve(arts["id"][:10]).execution_id == arts["id"]
    r = ledger.resolve(f"{arts['id']}:train")
    assert (r.kind, r.step) == ("step", "train")
    with pytest.raises(RefError, match="no artifact or execution"):
        ledger.resolve("blake3:ffffffffffffffffff0")
    with pytest.raises(RefError, match="has no step"):
        ledger.resolve(f"{arts['id']}:nope")
    with pytest.raises(RefError, match="no execution"):
        ledger.execution("ZZZZ")


def test_ambiguous_prefix_lists_candidates(ledger):
    evs = chain_events(60)
    record_all(ledger, evs)
    digests = [r["digest"] for r in ledger.sql("SELECT digest FROM artifacts").to_pylist()]
    # With 61 digests, some pair shares its first hex digit.
    first = {}
    for d in digests:
        first.setdefault(d[7], []).append(d)
    prefix, same = next((k, v) for k, v in first.items() if len(v) > 1)
    with pytest.raises(RefError, match="ambiguous") as err:
        ledger.resolve("blake3:" + prefix)
    assert same[0] in str(err.value)


# ---- action cache -------------------------------------------------------------------


def test_lookup_finds_outputs_from_earlier_runs(tmp_path):
    evs, arts = pipeline_events()
    with Ledger(tmp_path / "h") as led:
        record_all(led, evs)
    key = next(e.cache_key for e in evs if isinstance(e, StepFinished) and e.step == "train")
    fresh = Ledger(tmp_path / "h")
    hit = fresh.lookup(key)
    assert hit.step_ref == f"{arts['id']}:train"
    assert hit.outputs == (("return", arts["model"]),)
    assert fresh.lookup("blake3:" + "0" * 64) is None


def test_lookup_sees_this_process_unflushed_steps(ledger):
    evs, arts = pipeline_events(finish=False)
    for ev in evs:
        ledger.record(ev)
    key = next(e.cache_key for e in evs if isinstance(e, StepFinished) and e.step == "ingest")
    assert ledger.lookup(key).outputs == (("return", arts["dataset"]),)


# ---- read-only SQL ------------------------------------------------------------------


_REFUSED_EVERYWHERE = (
    "DELETE FROM step_log",
    "UPDATE step_log SET state = 'succeeded'",
    "INSERT INTO meta VALUES ('x', 'y')",
    "DROP VIEW steps",
    "CREATE TABLE t (a INT)",
    "COPY step_log TO '/tmp/x.csv'",
    "SELECT 1; DELETE FROM edges",
)
_REFUSED = {  # what each engine's own dialect could reach beyond the ledger
    "file": ("ATTACH '/tmp/other.duckdb' AS o", "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true"),
    # a second statement after COMMIT would run outside the read-only transaction, as the writer
    "server": ("SELECT 1; COMMIT; INSERT INTO meta VALUES ('x', 'y')", "CREATE EXTENSION IF NOT EXISTS dblink",
               "SELECT lo_import('/etc/passwd')"),
}


@pytest.mark.parametrize("ledger, statement", [(backend, statement) for backend in ("file", "server")
                                               for statement in _REFUSED_EVERYWHERE + _REFUSED[backend]],
                         indirect=["ledger"])
@pytest.mark.slow
def test_sql_refuses_writes(ledger, statement):
    record_all(ledger, pipeline_events()[0])
    before = ledger.verify(store=False)
    with pytest.raises(LedgerError, match="read-only"):
        ledger.sql(statement)
    after = ledger.verify(store=False)
    assert after.ok and (after.rows, after.head_hash) == (before.rows, before.head_hash)


def test_sql_cannot_read_files(ledger, tmp_path):
    record_all(ledger, pipeline_events()[0])
    (tmp_path / "secret.csv").write_text("a\n1\n")
    with pytest.raises(LedgerError):
        ledger.sql(f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')")


def test_sql_bad_query_is_a_ledger_error(ledger):
    record_all(ledger, pipeline_events()[0])
    with pytest.raises(LedgerError, match="SQL"):
        ledger.sql("SELEC 1")
    with pytest.raises(LedgerError, match="SQL error"):
        ledger.sql("SELECT nope FROM steps")


def test_queries_on_a_missing_ledger(tmp_path):
    led = Ledger(tmp_path / "nothing")
    assert led.executions() == ()
    with pytest.raises(LedgerError, match="no ledger"):
        led.execution("x")
    assert led.verify(store=False).ok


# ---- invariants ---------------------------------------------------------------------

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def event_streams(draw):
    """A plausible stream: some executions, steps with odd names/values, metrics, retries."""
    events = []
    for _ in range(draw(st.integers(1, 3))):
        e = new_id()
        p = value(draw(texts), "str")
        events.append(ExecutionStarted(e, draw(texts), "fp", "{}", ((draw(texts) or "p", p),), "local", T0, "h", 1))
        prev = p
        for i in range(draw(st.integers(0, 4))):
            name = f"{draw(texts)}{i}"
            out = value([draw(texts), i], "list")
            for attempt in range(1, draw(st.integers(1, 3)) + 1):
                events.append(StepStarted(e, name, draw(texts), "fp", attempt, T0, cache_key=draw(st.none() | texts)))
                events.append(StepFinished(e, name, "t", "fp", attempt, draw(st.sampled_from([SUCCEEDED, FAILED])),
                                           T0, T0, inputs=(("x", prev),), outputs=(("y", out),),
                                           error=draw(st.none() | texts)))
            events.append(MetricLogged(e, name, draw(texts), draw(floats), T0, draw(st.none() | st.integers(-5, 5))))
            prev = out
        if draw(st.booleans()):
            events.append(ExecutionFinished(e, SUCCEEDED, T0, outputs=(("out", prev),)))
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=3)))
    return events, cuts


@settings(max_examples=15)
@given(stream=event_streams())
@pytest.mark.slow
def test_any_recorded_stream_verifies(tmp_path_factory, stream):
    events, cuts = stream
    led = Ledger(tmp_path_factory.mktemp("h"), flush_interval=60)
    for i, ev in enumerate(events):
        if i in cuts:
            led.flush()
        led.record(ev)
    led.close()
    report = led.verify(store=False)
    assert report.ok, report.problems
    metrics = led.sql("SELECT value FROM metrics ORDER BY seq").to_pylist() if events else []
    recorded = [ev.value for ev in events if isinstance(ev, MetricLogged)]
    assert len(metrics) == len(recorded)
    for got, want in zip(metrics, recorded):
        assert got["value"] == want or (math.isnan(got["value"]) and math.isnan(want))


def test_concurrent_threads_of_one_process_keep_one_chain(tmp_path):
    home = tmp_path / "h"
    ledgers = [Ledger(home, flush_interval=0.01) for _ in range(4)]

    def work(led):
        for ev in chain_events(30):
            led.record(ev)

    threads = [threading.Thread(target=work, args=(led,)) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for led in ledgers:
        led.close()
    assert len(ledgers[0].executions()) == 4
    assert ledgers[0].verify(store=False).ok


def test_a_newer_schema_is_refused(tmp_path):
    led = Ledger(tmp_path / "h")
    record_all(led, pipeline_events()[0])
    con = duckdb.connect(str(led.path))
    con.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    con.close()
    with pytest.raises(LedgerError, match="schema version 999"):
        record_all(Ledger(tmp_path / "h"), pipeline_events()[0])


def test_upstream_ignores_other_executions_receiving_the_input_as_a_parameter(ledger):
    evs, arts = pipeline_events()
    record_all(ledger, evs)
    evs2, arts2 = retrain_events(arts["dataset"], lr=0.01, dataset_from=arts["id"])
    record_all(ledger, evs2)
    up = ledger.upstream(arts["model"].digest)
    assert arts2["id"] not in {n.ref for n in up.nodes}
    # ...but the second execution's own history names its parameter source.
    up2 = ledger.upstream(arts2["model"].digest)
    assert {n.ref for n in up2.of_kind("execution")} == {arts["id"], arts2["id"]}


def test_a_running_step_is_a_row_until_it_finishes(ledger):
    evs, arts = pipeline_events()
    started = [i for i, e in enumerate(evs) if isinstance(e, StepStarted) and e.step == "train"][0]
    for ev in evs[: started + 1]:
        ledger.record(ev)
    ledger.flush()
    rows = ledger.sql("SELECT step, status FROM steps WHERE step = 'train'").to_pylist()
    assert rows == [{"step": "train", "status": "running"}]
    for ev in evs[started + 1 :]:
        ledger.record(ev)
    rows = ledger.sql("SELECT state FROM step_log WHERE step = 'train' ORDER BY seq").to_pylist()
    assert [r["state"] for r in rows] == ["running", "succeeded"]
    assert ledger.execution(arts["id"]).steps[1].status == SUCCEEDED


def test_a_ledger_file_deleted_and_recreated_is_written_again(tmp_path):
    import shutil

    led = Ledger(tmp_path / "h")
    record_all(led, pipeline_events()[0])
    shutil.rmtree(tmp_path / "h")
    record_all(led, pipeline_events()[0])
    assert len(led.executions()) == 1 and led.verify(store=False).ok


def test_record_refuses_what_is_not_an_event(ledger):
    with pytest.raises(TypeError, match="does not record"):
        ledger.record("hello")


def test_nan_payloads_verify(ledger):
    import struct

    odd_nan = struct.unpack("d", struct.pack("Q", 0x7FF8000000000001))[0]
    evs, arts = pipeline_events(finish=False)
    evs.append(MetricLogged(arts["id"], "train", "loss", odd_nan, T0))
    record_all(ledger, evs)
    assert ledger.verify(store=False).ok
