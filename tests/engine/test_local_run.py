"""The local executor end to end: values, handles, run-time checks, failures, retries, timeouts."""

import os
import time

import attrs
import pyarrow as pa
import pytest

from ledgerflow import (Dataset, ExecutionFailed, File, MemoryRecorder, ParameterError, StepOutputError, log_metric,
                        run, task, workflow)
from ledgerflow.engine import events as ev


@task
def ingest(n: int) -> Dataset:
    return pa.table({"x": list(range(n)), "y": [i % 3 for i in range(n)]})


@task
def summarize(data: Dataset) -> dict[str, float]:
    t = data.to_arrow()
    return {"rows": float(t.num_rows), "mean_x": sum(t["x"].to_pylist()) / t.num_rows}


@workflow
def pipeline(n: int = 100) -> dict[str, float]:
    return summarize(data=ingest(n=n))


def steps_of(rec, cls=ev.StepFinished):
    return [e for e in rec.events if isinstance(e, cls)]


def test_issue_example(home):
    rec = MemoryRecorder()
    ex = run(pipeline, params={"n": 10}, recorder=rec)
    assert ex.status == "succeeded" and ex.outputs["rows"] == 10.0 and ex.outputs["mean_x"] == 4.5
    assert len(ex.id) == 26 and ex.steps["ingest"].status == "succeeded"
    done = steps_of(rec)
    assert [s.step for s in done] == ["ingest", "summarize"]
    produced = done[0].outputs[0][1]
    assert produced.kind == "dataset" and done[1].inputs[0][1].digest == produced.digest
    started = rec.events[0]
    assert isinstance(started, ev.ExecutionStarted) and '"n":10' in started.params.replace(" ", "")


def test_ids_sort_by_time(home):
    a = run(pipeline, params={"n": 1}, recorder=MemoryRecorder()).id
    b = run(pipeline, params={"n": 1}, recorder=MemoryRecorder()).id
    assert a < b


def test_parameters_checked(home):
    with pytest.raises(ParameterError, match="no parameter 'm'.*n: int"):
        run(pipeline, params={"m": 1}, recorder=MemoryRecorder())
    with pytest.raises(ParameterError, match=r"n: expected int, got str"):
        run(pipeline, params={"n": "ten"}, recorder=MemoryRecorder())

    @workflow
    def needs(n: int) -> dict[str, float]:
        return summarize(data=ingest(n=n))

    with pytest.raises(ParameterError, match="needs parameter 'n'"):
        run(needs, recorder=MemoryRecorder())


@task
def wrong(n: int) -> str:
    return n  # declared str


@task
def after(s: str) -> int:
    raise AssertionError("must not run")


@workflow
def mistyped(n: int = 1) -> int:
    return after(s=wrong(n=n))


def test_runtime_output_mismatch_fails_the_step(home):
    rec = MemoryRecorder()
    with pytest.raises(ExecutionFailed, match="step 'wrong'") as err:
        run(mistyped, recorder=rec)
    assert isinstance(err.value.__cause__, StepOutputError)
    assert "expected str, got int 1" in str(err.value.__cause__)
    assert err.value.execution.status == "failed"
    assert [s.step for s in steps_of(rec, ev.StepStarted)] == ["wrong"]


@attrs.define
class XY:
    x: int
    y: int


@task
def missing_column() -> Dataset[XY]:
    return pa.table({"x": [1]})


@workflow
def schema_wf() -> Dataset[XY]:
    return missing_column()


def test_dataset_missing_declared_column(home):
    with pytest.raises(ExecutionFailed) as err:
        run(schema_wf, recorder=MemoryRecorder())
    assert "column 'y' is missing" in str(err.value.__cause__)


class Boom(RuntimeError):
    pass


@task
def explode(n: int) -> int:
    raise Boom(f"bad input {n}")


@task
def str_of(x: int) -> str:
    return str(x)


@workflow
def failing(n: int = 3) -> int:
    return after(s=str_of(x=explode(n=n)))


def test_failure_chains_original_exception_and_stops_downstream(home):
    rec = MemoryRecorder()
    with pytest.raises(ExecutionFailed) as err:
        run(failing, recorder=rec)
    assert "step 'explode'" in str(err.value) and "Boom: bad input 3" in str(err.value)
    cause = err.value.__cause__
    assert isinstance(cause, Boom) and cause.__traceback__ is not None
    finished, *unreached = steps_of(rec)
    assert finished.status == "failed" and "in explode" in finished.traceback
    # The steps downstream never ran, and the record says so, naming the step that stopped them.
    assert [(s.step, s.status, s.blocked_by) for s in unreached] == [
        ("str_of", "skipped", "explode"), ("after", "skipped", "explode")]
    assert unreached[0].condition == "upstream step 'explode' failed"
    assert [e.status for e in rec.events if isinstance(e, ev.ExecutionFinished)] == ["failed"]


CALLS = {"n": 0}


@task(retries=2)
def flaky(n: int) -> int:
    CALLS["n"] += 1
    if CALLS["n"] < 3:
        raise ConnectionError(f"attempt {CALLS['n']}")
    return n


@workflow
def retrying(n: int = 7) -> int:
    return flaky(n=n)


@pytest.mark.slow
def test_retries_record_every_attempt(home):
    CALLS["n"] = 0
    rec = MemoryRecorder()
    ex = run(retrying, recorder=rec)
    assert ex.outputs == 7 and ex.steps["flaky"].attempts == 3
    assert [(s.attempt, s.status) for s in steps_of(rec)] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert "ConnectionError: attempt 1" in steps_of(rec)[0].error


@task(timeout=0.3)
def slow(n: int) -> int:
    time.sleep(5)
    return n


@workflow
def timing_out(n: int = 1) -> int:
    return slow(n=n)


def test_timeout_stops_the_step(home):
    rec = MemoryRecorder()
    t0 = time.monotonic()
    with pytest.raises(ExecutionFailed, match="timeout of 0.3 s"):
        run(timing_out, recorder=rec)
    assert time.monotonic() - t0 < 3
    assert steps_of(rec)[0].status == "timeout"


@task
def write_file(text: str) -> File["txt"]:
    path = f"out-{os.getpid()}.txt"
    with open(path, "w") as fh:
        fh.write(text)
    return path


@task
def halves(n: int) -> tuple[int, int]:
    log_metric("n", n)
    log_metric("loss", 0.5, index=1)
    return n // 2, n - n // 2


@task
def read(f: File, extra: int) -> str:
    return f.path.read_text() + str(extra)


@workflow
def mixed(n: int = 5) -> tuple[str, int]:
    a, b = halves(n=n)
    return read(f=write_file(text="hi"), extra=a), b


def test_files_tuples_metrics_in_process(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = MemoryRecorder()
    ex = run(mixed, recorder=rec)
    assert ex.outputs == ("hi2", 3)
    assert [(m.name, m.value, m.index) for m in rec.events if isinstance(m, ev.MetricLogged)] == [
        ("n", 5.0, None), ("loss", 0.5, 1)]
    names = {s.step: [n for n, _ in s.outputs] for s in steps_of(rec)}
    assert names["halves"] == ["return[0]", "return[1]"]
    f_ref = dict(steps_of(rec)[1].outputs)["return"] if steps_of(rec)[1].step == "write_file" else None
    assert f_ref is None or (f_ref.kind == "file" and f_ref.type == "File['txt']")


@task
def where() -> int:
    return os.getpid()


@workflow
def pid_wf() -> int:
    return where()


def test_local_executor_runs_in_process(home):
    assert run(pid_wf, recorder=MemoryRecorder()).outputs == os.getpid()


@task(cache=True)
def cached_ingest(n: int) -> Dataset:
    CALLS["cached"] = CALLS.get("cached", 0) + 1
    return pa.table({"x": list(range(n))})


@workflow
def cached_wf(n: int = 4) -> dict[str, float]:
    return summarize(data=cached_ingest(n=n))


def test_cache_hit_reuses_outputs(home):
    rec = MemoryRecorder()
    CALLS["cached"] = 0
    first = run(cached_wf, recorder=rec)
    second = run(cached_wf, recorder=rec)
    assert CALLS["cached"] == 1 and first.outputs == second.outputs
    hit = second.steps["cached_ingest"]
    assert hit.status == "cached" and hit.cached_from == f"{first.id}:cached_ingest"
    run(cached_wf, recorder=rec, cache=False)
    assert CALLS["cached"] == 2


@task
def one(n: int) -> int:
    return n + 1


@task
def add_all(xs: list[int]) -> int:
    return sum(xs)


@workflow
def gathering(n: int = 1) -> int:
    return add_all(xs=[one(n=n), one(n=one(n=n)), 5])


def test_a_list_written_in_the_body_keeps_the_lineage_joined(home):
    from ledgerflow import Ledger

    ex = run(gathering)
    assert ex.outputs == 2 + 3 + 5
    ledger = Ledger(home)
    steps = {s.step: s for s in ledger.execution(ex.id).steps}
    names = [b.name for b in steps["add_all"].inputs]
    assert names[:1] == ["xs"] and {"xs[0]", "xs[1]", "xs[2]"} <= set(names)
    upstream = {n.ref for n in ledger.upstream(steps["add_all"].outputs[0].artifact.digest).nodes}
    assert {f"{ex.id}:one", f"{ex.id}:one_2", f"{ex.id}:one_3"} <= upstream
