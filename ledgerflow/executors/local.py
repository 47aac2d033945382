"""The local executor: steps run one at a time in this process, so a debugger stops in task code."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import deque

from ledgerflow.engine.step import StepCall, StepOutcome, StepTimeout, run_step


@contextlib.contextmanager
def _deadline(seconds: float | None, step: str):
    """Raise StepTimeout inside the step after `seconds` (main thread only: that is where signals land)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise StepTimeout(f"step {step!r} ran longer than its timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class LocalExecutor:
    """Runs each submitted step in-process, in submission order, when the runner waits for it.

    >>> from ledgerflow import run
    >>> run(pipeline, executor=LocalExecutor())   # doctest: +SKIP
    """

    name = "local"

    def __init__(self) -> None:
        self._queue: deque[tuple[StepCall, float | None]] = deque()

    def submit(self, call: StepCall, *, timeout: float | None = None, resources=None) -> None:
        self._queue.append((call, timeout))

    def wait(self, timeout: float | None = None) -> StepOutcome | None:
        if not self._queue:
            return None
        call, limit = self._queue.popleft()
        with _deadline(limit, call.step):
            return run_step(call)

    def in_flight(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()
