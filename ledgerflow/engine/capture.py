"""What a step writes while it runs: its stdout, its stderr and its `logging` records.

Each attempt's streams are kept whole (up to `KEEP_CHARS` characters each: beyond that the head
and the tail, with a line saying how much was cut), stored in the store by content when the
attempt ends, and linked from the ledger (`StepLogged`), so `lineage logs` can print them long
after the terminal that ran the step is gone. While the step runs, each line is also:

- echoed to the stream it was written to (on a terminal, prefixed with the step's name, so
  the output of steps can be told apart), unless the caller asked for quiet; and
- appended to a spool file under the home (`logs/EXECUTION/STEP@ATTEMPT.STREAM`), which
  `lineage logs --follow` reads from another terminal. The attempt removes it once its copy is
  stored; if the attempt never ends normally (cancelled, its worker killed), the runner adopts
  what the spool holds (`adopt_spools`), so that output is recorded too.

`sys.stdout` and `sys.stderr` are replaced, once, by routers that send what a thread writes to
the capture that thread is running, and everything else to the real stream: two runs in two
threads keep their output apart, and nothing depends on captures ending in the order they began.
What the task's own thread writes through Python is kept; what other threads, native code or a
child process write to the file descriptors is echoed but not kept. A `logging` handler on the
root logger keeps each record the step's thread emits in its stderr (echoing it only where no
other handler prints it), so `logging.basicConfig()` called inside a task finds a handler there
and does nothing: configure logging before the run.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import functools
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterator

import attrs

from ledgerflow.printable import is_terminal
from ledgerflow.store import Store

STDOUT, STDERR = "stdout", "stderr"
KEEP_CHARS = 8_000_000
_SPOOL_FLUSH_S = 0.1  # a spool is flushed at a newline, or this long after its last flush
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


def spools(home: str | os.PathLike, execution_id: str) -> list[tuple[str, int, str, Path]]:
    """(step, attempt, stream, path) of every spool of `execution_id` on this host, as named by
    `spool_path`: the attempts still running here (or that never stored their output)."""
    folder = Path(home) / "logs" / execution_id
    found = []
    for path in sorted(folder.glob("*@*.*")) if folder.is_dir() else ():
        step, _, rest = path.name.rpartition("@")
        attempt, _, stream = rest.partition(".")
        if attempt.isdigit() and stream in (STDOUT, STDERR):
            found.append((step, int(attempt), stream, path))
    return found


class _Tee(io.TextIOBase):
    """One stream of one attempt: keeps what is written, echoes it (line-prefixed), spools it."""

    def __init__(self, stream: str, real: IO[str] | None, echo: bool, spool: tuple | None) -> None:
        self.stream = stream
        self._real = real
        self._echo = real if echo else None
        self._prefix = ""
        self._head: list[str] = []
        self._tail: collections.deque[str] = collections.deque()
        self._head_size = self._tail_size = self._cut = 0
        self._at_line_start = True
        self._spool = None
        # (home, execution, step, attempt): the spool is made at the first write, so the many
        # steps that write nothing pay nothing for it.
        self._spool_at = spool
        self.spool_path: Path | None = None  # set once the spool file exists
        self._flushed_at = 0.0
        self._binary = _BinaryWriter(self)

    def prefix_lines_with(self, prefix: str) -> None:
        if self._echo is not None and is_terminal(self._echo):
            self._prefix = prefix

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    @property
    def buffer(self) -> "_BinaryWriter":
        """For tasks that write bytes (`sys.stdout.buffer.write`): decoded as UTF-8 and kept."""
        return self._binary

    def fileno(self) -> int:
        # The real descriptor: what is written to it directly (a child process, native code) is
        # echoed by the terminal, not kept.
        if self._real is None:
            raise io.UnsupportedOperation("fileno")
        return self._real.fileno()

    def isatty(self) -> bool:
        return False  # what a step writes is kept as text: no colours meant for a terminal

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        self.keep(text)
        if self._echo is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed or broken terminal: still kept
                self._echo.write(self._prefixed(text) if self._prefix else text)
        return len(text)

    def keep(self, text: str) -> None:
        """Keep and spool `text`, without echoing it."""
        self._keep(text)
        if self._spool_at is not None:
            self._open_spool()
        if self._spool is not None:
            try:
                self._spool.write(text)
                now = time.monotonic()
                if "\n" in text or now - self._flushed_at > _SPOOL_FLUSH_S:
                    self._spool.flush()
                    self._flushed_at = now
            except (OSError, ValueError):
                pass  # a full disk stops the live view, never the step

    def _open_spool(self) -> None:
        (home, execution_id, step, attempt), self._spool_at = self._spool_at, None
        path = spool_path(home, execution_id, step, attempt, self.stream)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._spool = open(path, "a", encoding="utf-8", errors="replace")
            self.spool_path = path
        except OSError:  # a worker on another node: no home here to spool into
            self._spool = None

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
        self._spool_at = None  # nothing more is written: never open it now
        if self._spool is not None:
            with contextlib.suppress(OSError, ValueError):
                self._spool.close()
            self._spool = None


class _BinaryWriter(io.RawIOBase):
    """`sys.stdout.buffer` of a captured step: bytes decoded (UTF-8, incrementally) into its tee."""

    def __init__(self, tee: _Tee) -> None:
        self._tee = tee
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._tee.write(self._decoder.decode(bytes(data)))
        return len(data)

    def flush(self) -> None:
        self._tee.flush()

    def fileno(self) -> int:
        return self._tee.fileno()


class Capture:
    """The two streams of one running attempt (see `captured`)."""

    def __init__(self, out: _Tee, err: _Tee) -> None:
        self.out, self.err = out, err

    def store(self, store: Store) -> tuple[StoredLog, ...]:
        """Put each stream that has text into the store; what to record."""
        return tuple(log for tee in (self.out, self.err) if (log := _store_text(store, tee.stream, tee.text())))

    def remove_spools(self) -> None:
        for tee in (self.out, self.err):
            tee.close_spool()
            if tee.spool_path is not None:
                _remove_spool(tee.spool_path)


def _store_text(store: Store, stream: str, text: str) -> StoredLog | None:
    if not text:
        return None
    data = text.encode("utf-8", errors="replace")
    return StoredLog(stream, store.put_bytes(data), len(data), text.count("\n") + (not text.endswith("\n")))


def _remove_spool(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the execution's folder, once its last spool is gone


def adopt_spools(home: str | os.PathLike, execution_id: str, step: str, attempt: int,
                 store: Store) -> tuple[StoredLog, ...]:
    """What an attempt that never ended normally (cancelled, its worker killed) had spooled:
    stored, and the spools removed. Empty where there are none (another node's worker)."""
    logs = []
    for stream in (STDOUT, STDERR):
        path = spool_path(home, execution_id, step, attempt, stream)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        log = _store_text(store, stream, text)
        if log is not None:
            logs.append(log)
        _remove_spool(path)
    return tuple(logs)


# -- the routers: installed once, they send each thread's writes to its capture -----------------

_lock = threading.Lock()
_by_thread: dict[int, list[Capture]] = {}  # a stack: a step may run a workflow of its own
_routers: dict[str, "_Router"] = {}
_log_handler: "_LogRouter | None" = None
_root_level = logging.NOTSET
_stays = False  # see stay_installed


class _Router(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: a thread running a step writes to its capture,
    every other thread to the stream that was there before."""

    def __init__(self, stream: str, real: IO[str]) -> None:
        self.stream = stream
        self.real = real

    def _target(self):
        stack = _by_thread.get(threading.get_ident())
        if not stack:
            return self.real
        return stack[-1].out if self.stream == STDOUT else stack[-1].err

    def write(self, text: str) -> int:
        return self._target().write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target().isatty()

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def buffer(self):
        return self._target().buffer

    @property
    def encoding(self) -> str:
        return getattr(self._target(), "encoding", "utf-8")

    @property
    def errors(self) -> str:
        return getattr(self._target(), "errors", "strict")


class _LogRouter(logging.Handler):
    """On the root logger while steps run: a record from a step's thread is kept in its stderr,
    and echoed only where no other handler prints it."""

    def emit(self, record: logging.LogRecord) -> None:
        stack = _by_thread.get(threading.get_ident())
        if not stack:
            if record.levelno >= max(_root_level, logging.WARNING) and len(logging.getLogger().handlers) == 1:
                # Another thread's record (a ledger's journal thread, or between steps in a process
                # whose capture stays): what logging's last resort would print, had we not been here.
                with contextlib.suppress(Exception):
                    _routers[STDERR].real.write(self.format(record) + "\n")
            return
        capture = stack[-1]
        try:
            text = self.format(record) + "\n"
        except Exception:
            return
        others = [h for h in logging.getLogger().handlers if h is not self]
        if others:
            capture.err.keep(text)
        else:
            capture.err.write(text)


@functools.lru_cache(maxsize=1)
def _the_log_router() -> _LogRouter:
    """One handler for the process, put on the root logger while steps run (made once: a handler
    registers itself with `logging` for shutdown, which a handler a step would not need)."""
    handler = _LogRouter()
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    return handler


def _router(stream: str) -> _Router:
    current = sys.stdout if stream == STDOUT else sys.stderr
    router = _routers.get(stream)
    if router is None or current is not router:  # first use, or someone (a test's capsys) swapped it
        router = _routers[stream] = _Router(stream, current)
        if stream == STDOUT:
            sys.stdout = router
        else:
            sys.stderr = router
    return router


def _enter(capture: Capture) -> None:
    global _log_handler, _root_level
    with _lock:
        if not _by_thread and _log_handler is None:
            _log_handler = _the_log_router()
            root = logging.getLogger()
            _root_level = root.level
            if not root.handlers and root.level > logging.INFO:
                # Logging nobody configured: keep INFO records too (a configured one keeps its level).
                root.setLevel(logging.INFO)
            root.addHandler(_log_handler)
        _by_thread.setdefault(threading.get_ident(), []).append(capture)


def stay_installed() -> None:
    """Keep the stream routers and the log handler in place after the last step ends.

    For a process that exists to run steps (a Ray worker): putting them up and taking them down
    around every step costs a root-logger level change each time, which clears every logger's
    cache. Outside steps, the routers pass writes through and the handler prints what logging's
    last resort would have.
    """
    global _stays
    _stays = True


def _leave(capture: Capture) -> None:
    global _log_handler
    with _lock:
        stack = _by_thread.get(threading.get_ident(), [])
        if capture in stack:
            stack.remove(capture)
        if not stack:
            _by_thread.pop(threading.get_ident(), None)
        if not _by_thread and _log_handler is not None and not _stays:
            root = logging.getLogger()
            root.removeHandler(_log_handler)
            root.setLevel(_root_level)
            _log_handler = None
            # Put the real streams back, unless someone replaced our routers meanwhile.
            for stream, router in list(_routers.items()):
                if stream == STDOUT and sys.stdout is router:
                    sys.stdout = router.real
                elif stream == STDERR and sys.stderr is router:
                    sys.stderr = router.real
            _routers.clear()


@contextlib.contextmanager
def captured(step: str, *, echo: bool = True, spool: tuple | None = None) -> Iterator[Capture]:
    """Capture what the block writes to stdout, stderr and `logging` as one step's streams.

    `spool`: (home, execution_id, attempt) to spool the streams for `--follow`, or None.

    >>> with captured("hello", echo=False) as c:
    ...     print("hi")
    >>> c.out.text()
    'hi\\n'
    """
    with _lock:
        out_router, err_router = _router(STDOUT), _router(STDERR)
    at = None if spool is None else (spool[0], spool[1], step, spool[2])
    out = _Tee(STDOUT, out_router.real, echo, at)
    err = _Tee(STDERR, err_router.real, echo, at)
    for tee in (out, err):
        tee.prefix_lines_with(f"[{step}] ")
    capture = Capture(out, err)
    _enter(capture)
    try:
        yield capture
    finally:
        _leave(capture)
        out.close_spool()
        err.close_spool()


def _lines(text: str) -> list[str]:
    """`text` cut after each newline (only "\\n": a "\\r" redraws a progress bar in place)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
