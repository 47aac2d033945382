"""The Executor protocol: where steps run. Implementations live in `ledgerflow.executors`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ledgerflow.engine.step import StepCall, StepOutcome


@runtime_checkable
class Executor(Protocol):
    """Runs step attempts; the runner decides what to submit and when to retry.

    `wait` returns the next finished attempt, or None if `timeout` seconds pass first.
    """

    name: str

    def submit(self, call: StepCall, *, timeout: float | None, resources) -> None: ...

    def wait(self, timeout: float | None = None) -> StepOutcome | None: ...

    def in_flight(self) -> int: ...

    def close(self) -> None: ...
