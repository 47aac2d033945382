"""`ledgerflow.current()`: what a running step may know about itself.

A task is a plain function, so the engine hands it no extra argument: code inside the step
asks `current()` for its execution id, step name, attempt (a retry that wants to know how
many times it has run), the home, the resources its task asked for and the GPUs it was
granted (on Ray, the ids Ray assigned to this task). Set around each attempt by the code
that runs it (`step.run_step`), in Ray workers too; outside a step, a clear error.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Any

import attrs

from ledgerflow.errors import NotInStep


@attrs.frozen
class StepContext:
    """The running step: `ledgerflow.current()` returns one.

    >>> from ledgerflow import task
    >>> @task(retries=2)
    ... def flaky(x: int) -> int:
    ...     ctx = current()
    ...     return x + ctx.attempt          # 1 on the first try, 2 on the first retry
    """

    execution_id: str
    step: str
    task: str  # module:function
    attempt: int  # 1-based
    home: str | None  # the ledger home of the run
    resources: Any  # the task's Resources, as asked
    gpu_ids: tuple  # GPUs granted to this attempt (Ray's ids, or CUDA_VISIBLE_DEVICES): () for none
    node: str  # the host it runs on


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("ledgerflow_step", default=None)


def current() -> StepContext:
    """The step this code runs in; NotInStep outside one (in a workflow body, or plain Python).

    >>> current()
    Traceback (most recent call last):
    ...
    ledgerflow.errors.NotInStep: ledgerflow.current() is only available inside a running step (a @task function called by a run); here no step is running
    """
    ctx = _current.get()
    if ctx is None:
        raise NotInStep("ledgerflow.current() is only available inside a running step (a @task function called "
                        "by a run); here no step is running")
    return ctx


def granted_gpus() -> tuple:
    """The GPU ids this process may use: Ray's assignment inside a Ray task, else CUDA_VISIBLE_DEVICES."""
    ray = sys.modules.get("ray")
    if ray is not None:
        with contextlib.suppress(Exception):
            if ray.is_initialized():
                return tuple(str(g) for g in ray.get_gpu_ids())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return tuple(g for g in visible.split(",") if g.strip())


@contextlib.contextmanager
def entered(ctx: StepContext):
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
