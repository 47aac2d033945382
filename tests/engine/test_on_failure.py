"""`@workflow(on_failure=cleanup)` (issue 15, point 4): when a step fails for good the handler
runs once with what failed, is recorded as step `on_failure`, and the run still fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerflow import ExecutionFailed, Failure, Ledger, WorkflowTypeError, current, run, task, workflow


@task(retries=1)
def flaky(folder: str) -> int:
    raise ValueError("no data today")


@task
def cleanup(failure: Failure) -> str:
    note = f"{failure.step} of {failure.workflow} failed after {failure.attempts} attempts: {failure.error}"
    Path(current().home, "cleaned").write_text(note)  # (the run's home: known in a Ray worker too)
    return note


@task
def fine(folder: str) -> int:
    return 1


@workflow(on_failure=cleanup)
def guarded(folder: str) -> int:
    return flaky(folder=folder)


@workflow(on_failure=cleanup)
def healthy(folder: str) -> int:
    return fine(folder=folder)


@pytest.mark.slow
def test_the_handler_runs_with_the_failure_and_is_recorded(home, executor, tmp_path):
    with pytest.raises(ExecutionFailed, match="no data today"):
        run(guarded, {"folder": str(tmp_path)}, executor=executor, home=home, progress=False)
    note = (home / "cleaned").read_text()
    assert note == "flaky of test_on_failure:guarded failed after 2 attempts: ValueError: no data today"
    ledger = Ledger(home)
    [summary] = ledger.executions()
    assert summary.status == "failed" and "no data today" in summary.error
    steps = {s.step: s for s in ledger.execution(summary.id).steps}
    assert steps["flaky"].status == "failed" and steps["on_failure"].status == "succeeded"
    assert steps["on_failure"].task == "test_on_failure:cleanup"
    [given] = [b for b in steps["on_failure"].inputs if b.name == "failure"]
    assert '"step":"flaky"' in given.artifact.value.replace(" ", "")
    assert any(n.step == "on_failure" for n in ledger.graph(summary.id).nodes)


def test_a_run_that_succeeds_never_calls_the_handler(home, tmp_path):
    ex = run(healthy, {"folder": str(tmp_path)}, home=home, progress=False)
    assert ex.outputs == 1 and not (home / "cleaned").exists()
    assert "on_failure" not in {s.step for s in Ledger(home).execution(ex.id).steps}


def test_the_handler_must_take_a_failure():
    with pytest.raises(WorkflowTypeError, match="must take one parameter of type ledgerflow.Failure"):
        @workflow(on_failure=fine)
        def wrong(folder: str) -> int:
            return fine(folder=folder)
    with pytest.raises(WorkflowTypeError, match="takes a @task"):
        @workflow(on_failure=print)
        def not_a_task(folder: str) -> int:
            return fine(folder=folder)
