"""The local executor: steps run one at a time in this process, so a debugger stops in task code."""

from __future__ import annotations

from collections import deque

from ledgerflow.engine.step import StepCall, StepOutcome, run_step
from ledgerflow.executors.deadline import deadline


class LocalExecutor:
    """Runs each submitted step in-process, in submission order, when the runner waits for it.

    >>> from ledgerflow import run
    >>> run(pipeline, executor=LocalExecutor()).outputs     # the same as executor="local"
    4.5
    """

    name = "local"
    capacity = 1  # one step at a time, in this process
    where = "this process"

    def __init__(self) -> None:
        self._queue: deque[tuple[StepCall, float | None]] = deque()

    def submit(self, call: StepCall, *, timeout: float | None = None, resources=None) -> None:
        self._queue.append((call, timeout))

    def wait(self, timeout: float | None = None) -> StepOutcome | None:
        if not self._queue:
            return None
        call, limit = self._queue.popleft()
        with deadline(limit, call.step):
            return run_step(call)

    def in_flight(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()
