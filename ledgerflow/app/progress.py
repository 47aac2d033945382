"""Showing a run as it goes: a live line on a terminal, log lines everywhere else.

`Progress` is a Recorder: the runner's events drive it as they drive the ledger.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from typing import IO

from ledgerflow.engine import events as ev
from ledgerflow.engine.status import display_of
from ledgerflow.printable import is_terminal

log = logging.getLogger("ledgerflow")



class Progress:
    """Steps pending, running, cached, done and failed, with the elapsed time.

    On a terminal, one rich line redrawn in place; otherwise each finished step is a line on
    the `ledgerflow` logger (INFO, errors as WARNING), which suits CI and pipes. Where nobody
    configured logging, those lines are written to the stream (stderr) themselves, so a run
    whose output is piped (`python train.py | tee log`) still shows how it goes, on stderr,
    and leaves stdout to what the program prints.

    >>> from ledgerflow import run
    >>> print(run(pipeline, progress=True).status)     # the live line goes to stderr
    succeeded

    The line, as it reads before the first event:

    >>> Progress(total_steps=2, live=False).line()
    '    0.0s | pending 2 | running 0 | cached 0 | done 0 | failed 0'
    """

    def __init__(self, total_steps: int, *, stream: IO[str] | None = None, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.auto = live is None  # progress=False: no lines of our own either
        self.total = total_steps
        self.state: dict[str, str] = {}  # step -> label of its latest event
        self.started = time.monotonic()
        self.workflow = ""
        self._lock = threading.Lock()
        self._live = None
        self._plain = None  # a handler of our own while logging is unconfigured (see `_update`)
        self._level = logging.NOTSET

    def line(self) -> str:
        counts = Counter(self.state.values())
        elapsed = time.monotonic() - self.started
        pending = max(self.total - len(self.state), 0)
        return (f"{self.workflow} {elapsed:6.1f}s | pending {pending} | running {counts['running']} | "
                f"cached {counts['cached']} | done {counts['done'] + counts['skipped']} | failed {counts['failed']}")

    def __rich__(self) -> str:
        return self.line()

    def record(self, event: ev.Event) -> None:
        with self._lock:
            self._update(event)
            if self._live is not None:
                self._live.refresh()

    def _update(self, event: ev.Event) -> None:
        if isinstance(event, ev.ExecutionStarted):
            self.workflow = event.workflow.split(":")[-1].split(".")[-1]  # "pipeline", not "m:f.<locals>.pipeline"
            self.started = time.monotonic()
            if self.live:
                from rich.console import Console
                from rich.live import Live

                # Live redraws 8 times a second from __rich__, so the elapsed time keeps moving
                # while a long step runs, not only when an event arrives. What the program prints
                # is shown above the line only when stdout is a terminal too: piped, it stays in
                # the pipe (`| tee log`), not moved to the terminal.
                self._live = Live(self, console=Console(file=self.stream, highlight=False), refresh_per_second=8,
                                  redirect_stdout=is_terminal(sys.stdout), redirect_stderr=False)
                self._live.start()
            else:
                if self.auto and not log.hasHandlers():
                    self._plain = logging.StreamHandler(self.stream)
                    self._plain.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
                    self._level = log.level
                    log.addHandler(self._plain)
                    log.setLevel(logging.INFO)
                log.info("execution %s of %s started", event.execution_id, self.workflow)
            return
        if isinstance(event, (ev.StepStarted, ev.StepFinished)):
            if event.map_index is not None and event.step not in self.state:
                self.total += 1  # map elements are known only once their list is
            status = ev.RUNNING if isinstance(event, ev.StepStarted) else event.status
            self.state[event.step] = display_of(status).label
            if isinstance(event, ev.StepFinished) and not self.live:
                seconds = (event.ended_at - event.started_at).total_seconds()
                if event.error:
                    log.warning("step %s attempt %d %s after %.2fs: %s", event.step, event.attempt, event.status,
                                seconds, event.error)
                else:
                    log.info("step %s %s (%.2fs)", event.step, event.status, seconds)
        elif isinstance(event, ev.ExecutionFinished) and not self.live:
            log.info("execution %s %s | %s", event.execution_id, event.status, self.line())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        if self._plain is not None:
            log.removeHandler(self._plain)
            log.setLevel(self._level)
            self._plain = None

