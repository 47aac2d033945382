"""The Executor protocol, and the optional capabilities an executor may have: where steps run.
Implementations live in `ledgerflow.executors`, registered there by name."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ledgerflow.engine.step import StepCall, StepOutcome


@runtime_checkable
class Executor(Protocol):
    """Runs step attempts; the runner decides what to submit and when to retry.

    `wait` returns the next finished attempt, or None if `timeout` seconds pass first.
    `capacity`: how many attempts it runs at once (None: as many as it is given, its own
    scheduler queues the rest, as Ray's does). The runner submits no more than that, so what
    is recorded as started has started, and a cancelled run cancels only what was running.
    """

    name: str
    capacity: int | None
    where: str  # the machine or cluster the steps run on, in words: recorded with the execution

    def submit(self, call: StepCall, *, timeout: float | None, resources) -> None: ...

    def wait(self, timeout: float | None = None) -> StepOutcome | None: ...

    def in_flight(self) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class ChecksBeforeRun(Protocol):
    """An executor that can refuse, before anything runs, what could never run on it (a step
    asking for more GPUs than any node has). The runner asks at its first submit, so a run of
    cache hits never starts the executor's cluster."""

    def check(self, nodes: Any, store: Any = None) -> None: ...
