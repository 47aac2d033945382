"""Step timeouts: stop the step in its own process, and if it will not stop, end the process."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from ledgerflow.engine.step import StepTimeout

# A step stuck in native code never sees the Python-level alarm; after this much longer,
# its process is killed outright (only where that process exists for steps alone: Ray).
HARD_KILL_GRACE_S = 5.0


@contextlib.contextmanager
def deadline(seconds: float | None, step: str, *, kill_process: bool = False):
    """Raise StepTimeout inside the block after `seconds`; with kill_process, SIGKILL the process
    if the block is still running `HARD_KILL_GRACE_S` later."""
    if not seconds:
        yield
        return
    watchdog = None
    if kill_process:
        watchdog = threading.Timer(seconds + HARD_KILL_GRACE_S, os.kill, (os.getpid(), signal.SIGKILL))
        watchdog.daemon = True
        watchdog.start()
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        def expire(signum, frame):
            raise StepTimeout(f"step {step!r} ran longer than its timeout of {seconds:g} s")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if in_main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if watchdog is not None:
            watchdog.cancel()
