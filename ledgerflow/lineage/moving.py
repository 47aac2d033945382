"""Moving journaled events into the hash-chained tables, in large batches.

Recording processes only append to their journals (`ledgerflow.lineage.journal`); whoever
holds the ledger file moves what they appended: a reader that wants fresh data (every
`Ledger` query does this first), `lineage` itself, `Ledger.sync()`, or a run that finds a
large backlog when it starts. A move:

1. takes the file (the exclusive lock of `connection.open_ledger`) and begins a transaction;
2. reads, for every journal, how far it was moved (`journal_moves`, the truth) and its
   whole records after that, journal by journal in creation order;
3. appends them as chained rows after the head, then `interrupted` rows for executions whose
   process died (only a process found dead *before* its journal was read: one alive then may
   have appended more since);
4. records each journal's new position in `journal_moves` and commits: the rows and the
   positions land together or not at all, so a record is moved exactly once;
5. then, still holding the file, notes each position beside its journal (a hint that lets a
   reader skip the lock when nothing is pending) and removes journals moved whole whose
   owner closed them or died.

A kill -9 anywhere in a move leaves the ledger at the previous commit and the journals as
they were: the next move does it again. See docs/ledger.md, "Journals".
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import attrs

from ledgerflow.errors import LedgerBusy, LedgerError, LedgerServerError, LedgerUnwritable
from ledgerflow.lineage import journal, server as servers, append
from ledgerflow.lineage.connection import open_ledger

log = logging.getLogger("ledgerflow")


@attrs.frozen
class Moved:
    """What one move did: events appended as rows, from how many journals, journals removed."""

    events: int
    rows: int
    journals: int
    removed: int


NOTHING = Moved(0, 0, 0, 0)


def _positions(con, names: list) -> dict:
    if not names:
        return {}
    return dict(con.execute(
        "SELECT journal, max(upto) FROM journal_moves WHERE journal IN (SELECT unnest(?)) GROUP BY journal",
        [names]).fetchall())


def _decoded(path: Path, chunk: journal.Chunk) -> list | None:
    try:
        return [journal.decode(record) for _, record in chunk.records]
    except (LedgerError, TypeError, ValueError) as exc:
        # Left where it is, unmoved, for a Ledgerflow that can read it: moving the rest of it
        # would put its events out of order.
        log.warning("journal %s is not moved: %s", path, exc)
        return None


def move(ledger_path: Path, directory: Path, *, timeout: float, wait: bool = True) -> Moved | None:
    """Move every whole journaled record not yet in the ledger at `ledger_path` into it.

    Waits up to `timeout` seconds for the file (`wait=False`: not at all, returning None when
    another process holds it). Returns NOTHING, without touching the file, when no journal
    has bytes beyond its hint.
    """
    if not journal.pending(directory):
        return NOTHING
    try:
        with open_ledger(ledger_path, timeout=timeout if wait else 0.0) as con:
            return _move_holding(con, ledger_path, directory)
    except LedgerBusy:
        if wait:
            raise
        return None
    except Exception as exc:
        if refused_write(exc):
            raise LedgerUnwritable(f"cannot move the journals of {directory} into {ledger_path}: "
                                   f"{_reason(exc)}") from exc
        raise


_REFUSALS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def refused_write(exc: BaseException) -> bool:
    """Did the file system refuse a write (full, read-only, no permission), here or in a cause?"""
    texts = tuple(os.strerror(e) for e in _REFUSALS)
    seen: set = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _REFUSALS:
            return True
        if any(t in str(exc) for t in texts):  # DuckDB reports them as text
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def exchange(ledger_path: Path, directory: Path, server, *, timeout: float, wait: bool = True) -> Moved | None:
    """For a ledger on a server (`ledgerflow.lineage.server`): deliver this home's journals to
    it, and bring the home's copy of its chain (the file at `ledger_path`) up to its head.

    Journals pending: moved under the server's head (see `server_head`), the server committing
    before the copy does. Nothing pending: the copy pulls from one read-only snapshot, taking
    no lock there.
    """
    if journal.pending(directory):
        try:
            with server_head(ledger_path, server, timeout=timeout, wait=wait) as (con, pg, after):
                if not servers.can_write(pg):
                    raise LedgerServerError(
                        f"the ledger server {server.display} lets user {server.user!r} read but not record; record "
                        f"with the writer's URL (see `lineage ledger init`). The events stay in {directory}")
                return _move_holding(con, ledger_path, directory, pg=pg, after=after)
        except LedgerBusy:
            if wait:
                raise
            return None
    with _server_errors(server, directory), server.connect() as pg:
        pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            # The server's head is where this process last left the copy: nothing to fetch, and
            # the copy is not opened (a copy only grows, so it is at least there).
            if ledger_path.exists() and _copy_heads.get(str(ledger_path)) == servers.head(pg):
                return NOTHING
            ledger_path.parent.mkdir(parents=True, exist_ok=True)
            with open_ledger(ledger_path, timeout=timeout if wait else 0.0) as con:
                _pull(con, pg, ledger_path, server)
        except LedgerBusy:
            if wait:
                raise
            return None
        finally:
            if not pg.closed:
                pg.execute("ROLLBACK")
    return NOTHING


_copy_heads: dict = {}  # copy path -> (seq, row_hash) of its head when this process last pulled into it


@contextlib.contextmanager
def server_head(ledger_path: Path, server, *, timeout: float, wait: bool = True):
    """Hold a team ledger's head: the copy at `ledger_path` exclusively, and a server
    transaction that has taken the head's advisory lock (the one lock every appender takes)
    and brought the copy up to the head. Yields (copy, server connection, head seq).

    Whoever holds it appends to the copy in a transaction of its own, then `send`s those rows:
    the server commits first, then the copy. (A copy that fails to commit after the server did
    is only behind: the next pull fetches those rows.) Leaving without `send` rolls the server
    back, which gives the lock back.
    """
    with _server_errors(server, ledger_path.parent / "journal"):
        ledger_path.parent.mkdir(parents=True, exist_ok=True)
        with open_ledger(ledger_path, timeout=timeout if wait else 0.0) as con, server.connect() as pg:
            pg.execute("BEGIN")
            try:
                # Waited for as long as the copy is (`timeout`), or not at all: a journal thread
                # that finds another host appending tries again later, rather than holding the copy.
                if not wait:
                    if not pg.execute("SELECT pg_try_advisory_xact_lock(%s)", [servers.HEAD_LOCK]).fetchone()[0]:
                        raise LedgerBusy(f"another process is appending to {server.display}")
                else:
                    pg.execute(f"SET LOCAL lock_timeout = {max(1, int(timeout * 1000))}")
                    pg.execute("SELECT pg_advisory_xact_lock(%s)", [servers.HEAD_LOCK])
                yield con, pg, _pull(con, pg, ledger_path, server)
            finally:
                if not pg.closed and pg.info.transaction_status != 0:  # not sent: give the lock back
                    pg.execute("ROLLBACK")


def send(pg, con, after: int, moved: list = ()) -> None:
    """Send the copy's rows past seq `after` (and journals' new positions) to the server and commit there."""
    servers.push(pg, con, after)
    if moved:
        servers.record_positions(pg, list(moved), datetime.now(timezone.utc).replace(tzinfo=None))
    pg.execute("COMMIT")


@contextlib.contextmanager
def _server_errors(server, directory: Path):
    try:
        yield
    except Exception as exc:
        psycopg = sys.modules.get("psycopg")
        if psycopg is not None and isinstance(exc, psycopg.errors.LockNotAvailable):
            raise LedgerBusy(f"another process kept appending to {server.display} past the wait") from exc
        if psycopg is not None and isinstance(exc, psycopg.Error):  # the connection dropped, the server stopped
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LedgerServerError(f"the ledger server {server.display} failed mid-exchange ({reason}); nothing "
                                    f"was lost: what is journaled stays in {directory} until a delivery "
                                    "succeeds") from exc
        raise


def _pull(con, pg, ledger_path: Path, server) -> int:
    """Bring the copy up to the server's head in a transaction of its own; returns the new head seq."""
    append.check_schema(con)
    try:
        seq, row_hash = append.head(con)
        n, last_hash = servers.pull(pg, con, (seq, row_hash), server.display)
        con.execute("COMMIT").fetchall()
    except BaseException:
        append.rollback(con)
        raise
    _copy_heads[str(ledger_path)] = (seq + n, last_hash)
    return seq + n


def _move_holding(con, ledger_path: Path, directory: Path, pg=None, after: int = 0) -> Moved:
    """Move the journals into the file at `ledger_path` (`con`, held exclusively). With `pg`, a
    server transaction holding the head's lock (see `exchange`), whose head is at seq `after`:
    the positions are the server's, and the new rows go there before the file commits."""
    paths = journal.journals(directory)
    append.check_schema(con)
    try:
        names = [p.name for p in paths]
        done = servers.positions(pg, names) if pg is not None else _positions(con, names)
        events: list = []
        spared: set = set()
        progress: list = []  # (path, new position, records moved)
        finished: list = []
        for path in paths:
            header = journal.read_header(path)
            if header is None:
                continue  # removed by another mover since it was listed
            # Asked before reading: a dead owner appends nothing more, so what is read is all.
            alive = header.owner_alive()
            if alive is not False:
                spared.add((header.pid, header.start))
            start = max(done.get(path.name) or 0, header.end)
            chunk = journal.read(path, start)
            decoded = _decoded(path, chunk)
            if decoded is None:
                continue
            events.extend(decoded)
            progress.append((path, chunk.end, len(decoded)))
            if chunk.closed or alive is False:
                finished.append(path)
        rows = append.append(con, events, ledger_path) if events else 0
        rows += append.interrupt_dead(con, ledger_path, spared, this_boot_only=pg is not None)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        moved = [(p.name, end, n) for p, end, n in progress if n]
        if pg is not None:
            send(pg, con, after, moved)
        if moved:
            names, ends, counts = (list(c) for c in zip(*moved))
            con.execute("INSERT INTO journal_moves SELECT unnest(?), unnest(?), unnest(?), ?",
                        [names, ends, counts, now]).fetchall()
        con.execute("COMMIT").fetchall()
    except BaseException:
        append.forget(ledger_path)
        append.rollback(con)
        raise
    append.committed(ledger_path)
    for path, end, _ in progress:
        try:
            journal.note_moved(path, end)
        except OSError:
            pass  # only a hint: the next reader takes the lock and finds nothing to move
    for path in finished:
        try:
            journal.remove(path)
        except OSError:
            pass  # moved whole (journal_moves says so): the next move removes it
    return Moved(len(events), rows, sum(1 for _, _, n in progress if n), len(finished))
