"""Holding the ledger file briefly: open, one transaction, close, retrying on the lock.

DuckDB lets one process at a time open a database file read-write (readers share a
lock, but not with a writer). So nothing keeps the file open: every flush and every
query opens it, does one transaction and closes it, and a process that finds the file
locked retries with jittered exponential backoff, bounded in total time. Opening costs
about 15 ms (measured on DuckDB 2.0, mostly instance start-up), which is why writes are
batched.

Within one process, DuckDB shares one database instance between connections to the same
path, so two threads could run concurrent transactions and fork the chain; a per-path
lock serialises them.

Between processes, DuckDB's own lock on the file is not enough. DuckDB 2.0 reads the
database headers (which checkpoint is current) through a plain open *before* it takes its
lock, and does not read them again once it holds it (strace: pread of bytes 0-12288, then
F_SETLK, then straight to the metadata block). A writer that commits and checkpoints in
that window is overwritten: the opener loads the previous checkpoint, appends on top of it,
and its own checkpoint supersedes the other's commit, whose process has already exited 0.
Or the opener fails ("Could not read enough bytes from file"), or leaves a WAL that no
longer matches the file. Raw DuckDB, 16 processes each doing 40 open/commit/close rounds
on 2 loaded cores, lost 1-4 commits a round (15 in 6 rounds). So every open, read or
write, also holds an flock on `ledger.duckdb.lock` beside the file, from before DuckDB
looks at the file until after it has closed it: shared for readers, exclusive for writers.
Waiting on it costs one system call a try, not a DuckDB start-up, so a waiting process
retries every few milliseconds instead of every 100 ms.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import threading
import time
from pathlib import Path

import duckdb

from ledgerflow.errors import LedgerBusy, LedgerError
from ledgerflow.regular_files import NotARegularFile, check_regular

DEFAULT_LOCK_TIMEOUT = 60.0  # the wait is not fair between processes: leave room for many writers

_path_locks: dict = {}
_path_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    with _path_locks_guard:
        return _path_locks.setdefault(str(path), threading.RLock())


def lock_path(path: Path) -> Path:
    """The file whose flock guards the ledger at `path` for as long as DuckDB has it open."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


_held: dict = {}  # str(path) -> [fd, depth]: this process's flock on the ledger; guarded by _lock_for(path)


def _forget_held_locks_in_child() -> None:
    # A forked child shares the parent's open lock file, and with it the flock: were the
    # child to keep that descriptor, the lock would outlive the parent's close() for as long
    # as the child runs. Closing the child's copy leaves the parent's lock as it is.
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_held_locks_in_child)


def _open_lock_file(path: Path) -> int | None:
    lock = lock_path(path)
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        pass
    try:
        # A read-only home: flock works on a descriptor opened for reading, and no process
        # can write the ledger there either (DuckDB will say so to a writer).
        return os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file and no way to make one: DuckDB's own lock is all there is


@contextlib.contextmanager
def _file_lock(path: Path, *, shared: bool, deadline: float, timeout: float):
    """Hold the flock of the ledger at `path` (shared or exclusive) for the block.

    Called with _lock_for(path) held, so only one thread of this process is here at a time;
    a nested open in that thread reuses the lock it already holds.
    """
    key = str(path)
    held = _held.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    fd = _open_lock_file(path)
    if fd is None:
        yield
        return
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LedgerError(f"cannot lock the ledger at {path}: {exc.strerror or exc}") from exc
            now = time.monotonic()
            if now >= deadline:
                raise LedgerBusy(f"the ledger at {path} stayed locked by another process for {timeout:.0f} s")
            # Full jitter keeps several waiting processes from retrying in lockstep.
            time.sleep(min(delay * random.uniform(0.5, 1.5), deadline - now))
            delay = min(delay * 2, 0.01)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            _held.pop(key, None)
    finally:
        with contextlib.suppress(OSError):  # (already closed in a child forked inside the block)
            os.close(fd)  # releases the flock, after DuckDB has closed the file and removed its WAL


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _create(path: Path) -> None:
    """Make the ledger file with its schema, atomically: it appears whole or not at all.

    A process killed while creating a ledger in place would leave a file without tables,
    which no reader could use. So the schema is written to a temporary file beside it and
    hard-linked into place (git's object store does the same), which also never replaces a
    ledger another process created first.
    """
    from ledgerflow.lineage.schema import ensure_schema

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        con = duckdb.connect(str(tmp))
        try:
            ensure_schema(con)
            con.execute("CHECKPOINT").fetchall()
        finally:
            con.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: its ledger is as good as ours
    except OSError as exc:
        raise LedgerError(f"cannot create the ledger at {path}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def open_ledger(
    path: Path,
    *,
    read_only: bool = False,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    config: dict | None = None,
):
    """Yield a DuckDB connection to the ledger at `path`, closed on exit.

    A reader on a missing file raises LedgerError (there is no ledger yet); a writer
    creates it. Waits up to `timeout` seconds for another process to let go of the file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ledger.duckdb"
    >>> with open_ledger(p) as con:
    ...     con.execute("SELECT 42").fetchall()
    [(42,)]
    """
    path = Path(path)
    if read_only and not path.exists():
        raise LedgerError(f"no ledger at {path} (nothing has been recorded there yet)")
    try:
        check_regular(path)  # DuckDB would wait on a FIFO forever
    except NotARegularFile as exc:
        raise LedgerError(f"{path} is not a ledger: {exc.strerror}") from None
    except FileNotFoundError:
        pass  # a writer creates it
    if not read_only and not path.exists():
        _create(path)
    # Our transactions are small: a thread pool and extension autoloading only add to the
    # ~15 ms it takes to open the file (measured: 36 -> 20 ms on 2 cores).
    cfg = {"threads": 1, "autoload_known_extensions": False, "autoinstall_known_extensions": False}
    cfg.update(config or {})
    deadline = time.monotonic() + timeout
    delay = 0.002
    with _lock_for(path), _file_lock(path, shared=read_only, deadline=deadline, timeout=timeout):
        # The flock keeps out every Ledgerflow process; DuckDB's own lock can still be held by
        # something else (the duckdb CLI, an older Ledgerflow), so its conflicts are waited out too.
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=cfg)
                break
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise LedgerError(f"cannot open the ledger at {path}: {exc}") from exc
                now = time.monotonic()
                if now >= deadline:
                    raise LedgerBusy(
                        f"the ledger at {path} stayed locked by another process for {timeout:.0f} s"
                    ) from exc
                # Full jitter keeps several waiting processes from retrying in lockstep.
                time.sleep(min(delay * random.uniform(0.5, 1.5), deadline - now))
                delay = min(delay * 2, 0.1)
        try:
            yield con
        finally:
            con.close()  # checkpoints and removes the WAL, all before the flock is released
