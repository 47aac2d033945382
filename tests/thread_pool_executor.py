"""A toy executor for the executor-registry test: steps on a pool of threads of this process.

The whole of what adding an executor takes: this module, and one `register` line.
"""

from __future__ import annotations

import concurrent.futures

from ledgerflow.engine.step import StepCall, StepOutcome, run_step


class ThreadPoolExecutor:
    name = "threads"
    capacity = 4
    where = "a pool of threads in this process"

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.capacity, thread_name_prefix="step")
        self._running: set[concurrent.futures.Future] = set()

    def submit(self, call: StepCall, *, timeout: float | None = None, resources=None) -> None:
        self._running.add(self._pool.submit(run_step, call))

    def wait(self, timeout: float | None = None) -> StepOutcome | None:
        done, _ = concurrent.futures.wait(self._running, timeout, concurrent.futures.FIRST_COMPLETED)
        if not done:
            return None
        future = done.pop()
        self._running.discard(future)
        return future.result()

    def in_flight(self) -> int:
        return len(self._running)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
