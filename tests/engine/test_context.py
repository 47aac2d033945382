"""`ledgerflow.current()`: a step knows its execution, name, attempt, home and granted GPUs,
on both executors; outside a step it is a clear error (issue 15, point 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ledgerflow
from ledgerflow import Ledger, Resources, current, run, task, workflow
from ledgerflow.engine.context import NotInStep


@task(retries=2)
def counts_attempts(marker: str) -> int:
    """The KFP retry sample, without a counter file: fails until its third attempt."""
    ctx = current()
    if ctx.attempt < 3:
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return ctx.attempt


@task
def who_am_i(x: int) -> dict[str, str]:
    ctx = ledgerflow.current()
    return {"execution": ctx.execution_id, "step": ctx.step, "task": ctx.task, "home": ctx.home or "",
            "attempt": str(ctx.attempt), "cpus": str(ctx.resources.num_cpus)}


@task(resources=Resources(num_gpus=1))
def gpu_ids(x: int) -> list[str]:
    return list(current().gpu_ids)


@workflow
def retried(marker: str = "m") -> int:
    return counts_attempts(marker=marker)


@workflow
def introspect(x: int = 1) -> dict[str, str]:
    return who_am_i(x=x)


@workflow
def on_a_gpu(x: int = 1) -> list[str]:
    return gpu_ids(x=x)


@pytest.mark.slow
def test_a_retry_reads_its_attempt_number(home, executor):
    ex = run(retried, executor=executor, home=home, progress=False)
    assert ex.outputs == 3 and ex.steps["counts_attempts"].attempts == 3
    attempts = [a.status for s in Ledger(home).execution(ex.id).steps for a in s.attempts]
    assert attempts == ["failed", "failed", "succeeded"]


def test_a_step_knows_its_execution_step_and_home(home, executor):
    ex = run(introspect, executor=executor, home=home, progress=False)
    assert ex.outputs == {"execution": ex.id, "step": "who_am_i", "task": "test_context:who_am_i",
                          "home": str(Path(home).absolute()), "attempt": "1", "cpus": "1"}


def test_a_gpu_step_on_ray_is_told_its_gpu(home, ray_runtime):
    ex = run(on_a_gpu, executor="ray", home=home, progress=False)
    assert ex.outputs == ["0"]  # the session's runtime declares one GPU: Ray assigns id 0


def test_outside_a_step_it_is_a_clear_error():
    with pytest.raises(NotInStep, match="only available inside a running step"):
        current()
    assert who_am_i.fn is not None
    with pytest.raises(NotInStep):
        who_am_i.fn(1)  # a task called as a plain function is not a running step
