"""What a step writes while it runs: its stdout, its stderr and its `logging` records.

Each attempt's streams are kept whole (up to `KEEP_CHARS` characters each: beyond that the head and the
tail, with a line saying how much was cut), stored in the store by content when the attempt
ends, and linked from the ledger (`StepLogged`), so `lineage logs` can print them long after
the terminal that ran the step is gone. While the step runs, each line is also:

- echoed to the stream it was written to (on a terminal, prefixed with the step's name, so
  the output of steps that run side by side can be told apart), unless the caller asked for
  quiet; and
- appended to a spool file under the home (`logs/EXECUTION/STEP@ATTEMPT.STREAM`), which
  `lineage logs --follow` reads from another terminal; it is removed once the stored copy is
  recorded.

The capture swaps `sys.stdout` and `sys.stderr` for the step's duration: what a task writes
through Python is kept; what native code or a child process writes to the file descriptors
directly is echoed but not kept.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import IO, Iterator

import attrs

from ledgerflow.store import Store

STDOUT, STDERR = "stdout", "stderr"
KEEP_CHARS = 8_000_000
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


@attrs.frozen
class StoredLog:
    """One stream of one attempt, stored by content: what `StepLogged` records."""

    stream: str  # STDOUT | STDERR
    digest: str
    size: int
    lines: int


def spool_path(home: str | os.PathLike, execution_id: str, step: str, attempt: int, stream: str) -> Path:
    """Where a running attempt's stream is spooled for `lineage logs --follow`."""
    return Path(home) / "logs" / execution_id / f"{step.replace('/', '_')}@{attempt}.{stream}"


class _Tee(io.TextIOBase):
    """A text stream that keeps what is written, echoes it, and spools it, line-prefixed."""

    def __init__(self, stream: str, echo: IO[str] | None, prefix: str, spool: Path | None) -> None:
        self.stream = stream
        self._echo = echo
        self._prefix = prefix
        self._head: list[str] = []
        self._tail: collections.deque[str] = collections.deque()
        self._head_size = self._tail_size = self._cut = 0
        self._at_line_start = True
        self._spool = None
        if spool is not None:
            try:
                spool.parent.mkdir(parents=True, exist_ok=True)
                self._spool = open(spool, "a", encoding="utf-8", errors="replace")
            except OSError:  # a worker on another node: no home here to spool into
                self._spool = None
        self.spool_path = spool if self._spool is not None else None

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    def isatty(self) -> bool:
        return False  # what a step writes is kept as text: no colours meant for a terminal

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        self._keep(text)
        if self._spool is not None:
            try:
                self._spool.write(text)
                self._spool.flush()
            except OSError:
                pass  # a full disk stops the live view, never the step
        if self._echo is not None:
            self._echo.write(self._prefixed(text) if self._prefix else text)
        return len(text)

    def flush(self) -> None:
        if self._echo is not None:
            with contextlib.suppress(Exception):
                self._echo.flush()

    def _prefixed(self, text: str) -> str:
        out = []
        for line in _lines(text):
            out.append(self._prefix + line if self._at_line_start else line)
            self._at_line_start = line.endswith("\n")
        return "".join(out)

    def _keep(self, text: str) -> None:
        if self._head_size < KEEP_CHARS // 2:
            self._head.append(text)
            self._head_size += len(text)
            return
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size > KEEP_CHARS // 2 and len(self._tail) > 1:  # keep the last writes
            dropped = self._tail.popleft()
            self._tail_size -= len(dropped)
            self._cut += len(dropped)

    def text(self) -> str:
        middle = f"\n[... {self._cut} characters cut: a stream keeps the first and last {KEEP_CHARS // 2:,} ...]\n" if self._cut else ""
        return "".join(self._head) + middle + "".join(self._tail)

    def close_spool(self) -> None:
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.close()


class Capture:
    """The two streams of one running attempt (see `captured`)."""

    def __init__(self, out: _Tee, err: _Tee) -> None:
        self.out, self.err = out, err

    def store(self, store: Store) -> tuple[StoredLog, ...]:
        """Put each stream that has text into the store; what to record."""
        logs = []
        for tee in (self.out, self.err):
            text = tee.text()
            if text:
                data = text.encode("utf-8", errors="replace")
                digest = store.put_bytes(data)
                logs.append(StoredLog(tee.stream, digest, len(data), text.count("\n") + (not text.endswith("\n"))))
        return tuple(logs)

    def remove_spools(self) -> None:
        for tee in (self.out, self.err):
            if tee.spool_path is not None:
                with contextlib.suppress(OSError):
                    tee.spool_path.unlink()
                with contextlib.suppress(OSError):
                    tee.spool_path.parent.rmdir()  # the execution's folder, once its last spool is gone


@contextlib.contextmanager
def captured(step: str, *, echo: bool = True, spool: tuple | None = None) -> Iterator[Capture]:
    """Capture what the block writes to stdout, stderr and `logging` as one step's streams.

    `spool`: (home, execution_id, attempt) to spool the streams for `--follow`, or None.

    >>> with captured("hello", echo=False) as c:
    ...     print("hi")
    >>> c.out.text()
    'hi\\n'
    """
    real_out, real_err = sys.stdout, sys.stderr
    paths = (None, None) if spool is None else tuple(spool_path(spool[0], spool[1], step, spool[2], s)
                                                      for s in (STDOUT, STDERR))

    def tee(stream: str, real: IO[str] | None, path: Path | None) -> _Tee:
        target = real if echo and real is not None else None
        prefix = f"[{step}] " if target is not None and _is_terminal(target) else ""
        return _Tee(stream, target, prefix, path)

    out, err = tee(STDOUT, real_out, paths[0]), tee(STDERR, real_err, paths[1])
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    level = root.level
    if not root.handlers and level > logging.INFO:
        # Logging nobody configured: keep INFO records too (a configured one keeps its own level).
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    sys.stdout, sys.stderr = out, err
    try:
        yield Capture(out, err)
    finally:
        sys.stdout, sys.stderr = real_out, real_err
        root.removeHandler(handler)
        root.setLevel(level)
        out.close_spool()
        err.close_spool()


def _lines(text: str) -> list[str]:
    """`text` cut after each newline (only "\n": a "\r" redraws a progress bar in place)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
