"""The ledger: a Recorder, an ActionCache, and the audit query API, over one DuckDB file.

Recording never touches the file: `record` appends to a list, and a daemon thread appends
the list to this ledger's journal (a file of its own, `ledgerflow.lineage.journal`) every
`flush_interval` seconds. Every read first moves what all journals hold into the file
(`ledgerflow.lineage.moving`), then opens it read-only for one query and closes it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import duckdb

from ledgerflow.engine.events import (
    INTERRUPTED,
    RUNNING,
    AliasMoved,
    CacheEntry,
    ExecutionFinished,
    ExecutionStarted,
    MetricLogged,
    StepFinished,
    StepStarted,
)
from ledgerflow.errors import CancelError, LedgerError, LedgerServerError, LedgerUnwritable, RefError, RegistryError, UnknownEvent
from ledgerflow.home import Home
from ledgerflow import liveness
from ledgerflow.lineage import append, journal, moving, readonly_sql, refs, registry, retention, verification
from ledgerflow.lineage import server as servers
from ledgerflow.engine.status import Status
from ledgerflow.lineage.action_cache import CacheIndex
from ledgerflow.lineage.connection import DEFAULT_LOCK_TIMEOUT, open_ledger
from ledgerflow.lineage.detail import assemble, parse_json, read_graph
from ledgerflow.lineage.rows import ExecutionRanges, lookup_by_key, rows_of_executions
from ledgerflow.lineage.inference import inferred_graph
from ledgerflow.lineage.schema import (
    PARAMS_STEP,
    SCHEMA_VERSION,
    ensure_schema,
    key64,
    missing_tables,
    newer_schema,
    schema_version,
    use_code_views,
)
from ledgerflow.lineage.values import (
    ArtifactInfo,
    CollectedObject,
    GcReport,
    ModelVersion,
    RegisteredModel,
    ExecutionDetail,
    ExecutionSummary,
    RecordedGraph,
    Lineage,
    StepLog,
    VerifyReport,
)

if TYPE_CHECKING:  # pyarrow is loaded by the queries that return tables, not by `import ledgerflow`
    import pyarrow as pa

log = logging.getLogger("ledgerflow")

_WAKE_AT = 2048  # buffered events that wake the journal thread before its interval is up
_CACHE_WAIT_S = 5.0  # how long a run's cache lookup waits for the file before answering without it
_BACKLOG_BYTES = 4 << 20  # journaled bytes not yet moved past which a starting run moves them
_DELIVER_EVERY_S = 0.5  # on a ledger server: how often a recording process delivers its journal

_open_ledgers: "weakref.WeakSet[Ledger]" = weakref.WeakSet()
_current_schema: set = set()  # ledger paths this process has seen at (or brought to) SCHEMA_VERSION


@atexit.register
def _flush_all_at_exit() -> None:
    # A daemon thread dies with the interpreter; without this, the last < 250 ms of
    # events of a process that forgot close() would be lost.
    for ledger in list(_open_ledgers):
        try:
            ledger.close()
        except Exception:
            pass


def _home(home) -> Home:
    if isinstance(home, Home):
        return home
    return Home.resolve(home)


def _effective_status(status: str, host, pid, start) -> str:
    """`running` whose process is gone reads as `interrupted`, before anyone appends the row."""
    if status == RUNNING and liveness.is_alive(host, pid, start) is False:
        return INTERRUPTED
    return status


class Ledger:
    """The lineage ledger of a Ledgerflow home.

    >>> import tempfile
    >>> ledger = Ledger(tempfile.mkdtemp())
    >>> ledger.executions()
    ()
    >>> ledger.verify(store=False).ok
    True
    >>> ledger.close()

    As a Recorder it is handed to the runner; as an ActionCache it answers cache keys;
    the query methods (`executions`, `execution`, `upstream`, `downstream`, `sql`,
    `verify`) are the audit API the `lineage` CLI is built on.
    """

    def __init__(self, home=None, *, ledger: str | None = None, flush_interval: float = 0.05,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        if ledger is None and servers.is_server_url(str(home)):  # Ledger("postgresql://...")
            home, ledger = None, str(home)
        self.home = _home(home)
        ledger = ledger if ledger is not None else (os.environ.get("LEDGERFLOW_LEDGER") or None)
        if ledger is not None and not servers.is_server_url(ledger):
            raise LedgerServerError(f"the ledger {ledger!r} is not a PostgreSQL URL: LEDGERFLOW_LEDGER (or --ledger) "
                                    "takes postgresql://USER:PASSWORD@HOST:PORT/DATABASE; leave it unset for the "
                                    "home's ledger.duckdb")
        # On a server (see `ledgerflow.lineage.server`), `path` is this home's copy of its chain,
        # and the journals wait beside it until they are delivered.
        self.server = None if ledger is None else servers.Server(ledger)
        self.path: Path = self.home.ledger_path if self.server is None else self.server.copy_path(self.home.path)
        self.journal_dir: Path = self.home.journal_path if self.server is None else self.path.parent / "journal"
        self._delivered_at = 0.0
        self._undelivered: str | None = None  # why the last delivery failed, while it keeps failing
        self.flush_interval = flush_interval
        self.lock_timeout = lock_timeout
        self._buffer: list = []  # (event, process-start token) recorded, not yet appended to the journal
        self._buffer_lock = threading.Lock()
        self._append_lock = threading.Lock()  # keeps appends in order: one at a time
        self._journal = journal.JournalWriter(self.journal_dir)  # the file is made on the first append
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._error: BaseException | None = None
        # A run's cache reads never move journals and wait for the file only briefly (see CacheIndex).
        self._cache = CacheIndex(self.path, lambda: self.reader(views=False, fresh=False, timeout=_CACHE_WAIT_S),
                                 self.journal_dir, self._journal.path)

    def __repr__(self) -> str:
        where = "" if self.server is None else f", ledger={self.server.display!r}"
        return f"Ledger({str(self.home.path)!r}{where})"

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- Recorder -------------------------------------------------------------------

    def record(self, event) -> None:
        """Buffer `event`; a background thread appends it to this ledger's journal within
        `flush_interval` (see `ledgerflow.lineage.journal`). Recording never waits for the
        ledger file: the events are moved into it by the next reader (or `sync()`).

        The start and the end of an execution are appended before this returns: a run whose
        home cannot be written fails before its first step, and a finished run is on disk
        (its journal synced) when the runner hands back its result.
        """
        if self._closed:
            raise LedgerError(f"the ledger at {self.path} is closed")
        kind = type(event)
        if kind not in append.ROWS:
            # Refused here, not in the journal thread where nobody would see it.
            raise UnknownEvent(f"the ledger does not record {kind.__name__} (not a ledgerflow event)")
        # (The common case first, and cheap: this runs twice for every step.)
        start = None if kind is not ExecutionStarted else append.process_start_of(event)
        with self._buffer_lock:
            self._buffer.append((event, start))
            backlog = len(self._buffer)
        if kind is StepFinished or kind is MetricLogged:
            self._cache.remember(event)
        elif kind is ExecutionStarted:
            self.flush()
            if self.server is not None:
                # Delivered at once, so that teammates see the run start, and so that a server
                # that cannot take it fails the run before its first step.
                self._exchange()
            else:
                self._move_backlog()
            return
        elif kind is ExecutionFinished:
            self.flush()
            self._journal.sync()
            if self.server is not None:
                self._deliver(wait=True)
            return
        if self._thread is None:
            self._start_thread()
        elif backlog >= _WAKE_AT:
            self._wake.set()

    def _start_thread(self) -> None:
        _open_ledgers.add(self)
        self._thread = threading.Thread(target=self._run, name=f"ledger-journal:{self.path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._append()
                self._error = None
            except BaseException as exc:  # kept, and raised by the next flush()/close()
                self._error = exc
            if self.server is not None and time.monotonic() - self._delivered_at >= _DELIVER_EVERY_S:
                self._deliver(wait=False)

    def _exchange(self, wait: bool = True) -> moving.Moved | None:
        """On a server: deliver the journals of this home and pull the copy up to the server's head."""
        self._delivered_at = time.monotonic()
        return moving.exchange(self.path, self.journal_dir, self.server, timeout=self.lock_timeout, wait=wait)

    def _deliver(self, wait: bool) -> None:
        """Deliver what is journaled, without failing the run: a server that is down or busy
        leaves the events in the journal, delivered by the next delivery or read (said once)."""
        if not journal.pending(self.journal_dir):
            return
        try:
            self._exchange(wait=wait)
        except Exception as exc:  # noqa: BLE001 - the record is safe in the journal; say so once
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self._undelivered != reason:
                log.warning("the ledger server did not take this run's events yet (%s); they are kept in %s and "
                            "delivered when it can (any lineage command on this home, or the next run)",
                            reason, self.journal_dir)
            self._undelivered = reason
        else:
            self._undelivered = None

    def _append(self) -> int:
        with self._append_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            # A step that started and finished since the last append: its `running` record
            # would be superseded before anyone could read it, so it is not written.
            finished = append.coalesced(batch)
            try:
                self._journal.append([journal.encode(ev, start) for ev, start in batch
                                      if not (isinstance(ev, StepStarted)
                                              and (ev.execution_id, ev.step, ev.attempt) in finished)])
            except BaseException:
                # Nothing was appended (a failed write is cut back): keep the events, in order.
                with self._buffer_lock:
                    self._buffer[:0] = batch
                raise
            return len(batch)

    def flush(self) -> None:
        """Append every buffered event to the journal now: from then on a kill -9 of this
        process loses none of them."""
        self._append()

    def sync(self) -> None:
        """Flush, then move every journaled event of this home (any process's) into the ledger
        file, waiting for the file if another process holds it (on a server: deliver them, and
        bring this home's copy up to the server's head)."""
        self.flush()
        if self.server is not None:
            self._exchange()
        else:
            moving.move(self.path, self.journal_dir, timeout=self.lock_timeout)

    def _move_backlog(self) -> None:
        # Journals are moved by readers; a home that nobody reads would pile them up, and
        # every run's cache would read them all. Past a backlog, a starting run moves them,
        # if it can have the file at once.
        if journal.pending_bytes(self.journal_dir) > _BACKLOG_BYTES:
            try:
                moving.move(self.path, self.journal_dir, timeout=self.lock_timeout, wait=False)
            except Exception as exc:  # noqa: BLE001 - the run goes on; the next reader moves them, or says why not
                log.warning("the journals of %s stay unmoved: %s", self.home.path, exc)

    def _catch_up(self) -> bool:
        """Before a read: what this ledger and every other recording process appended is moved
        into the file, so the reader sees it. A home this process can't write is read as it is.
        True when it moved anything."""
        self.flush()
        if self.server is not None:
            # A reader of a team ledger reads the server's record or nothing: an old copy
            # answering as if it were current would be a wrong audit answer.
            moved = self._exchange()
            return moved is not None and moved.events > 0
        try:
            moved = moving.move(self.path, self.journal_dir, timeout=self.lock_timeout)
        except LedgerUnwritable as exc:
            log.warning("reading %s without the events still in its journals: %s", self.path, exc)
            return False
        return moved is not None and moved.events > 0

    def close(self) -> None:
        """Append what is buffered, close the journal and stop the background thread.
        Queries still work afterwards."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        _open_ledgers.discard(self)
        try:
            self.flush()
        finally:
            self._journal.close()

    # -- ActionCache ----------------------------------------------------------------

    def lookup(self, cache_key: str) -> CacheEntry | None:
        """The outputs (and metrics) of the first successful step with this cache key, or None."""
        return self._cache.lookup(cache_key)

    # -- queries --------------------------------------------------------------------

    @contextlib.contextmanager
    def reader(self, config: dict | None = None, views: bool = True, fresh: bool = True,
                timeout: float | None = None):
        """A read-only connection for one query. The first read of a process also brings a
        ledger written by an older schema up to this one (see `_migrate`). Its views are this
        code's, never the file's (see `schema.use_code_views`): a view redefined in the file
        cannot change what `list`, `show` or `query sql` read (`views=False`: ~5 ms less, for
        a reader of tables only). `fresh`: journaled events are moved in first (see `_catch_up`)."""
        if fresh:
            self._catch_up()
        key = str(self.path)
        timeout = self.lock_timeout if timeout is None else timeout
        with open_ledger(self.path, read_only=True, timeout=timeout, config=config) as con:
            version = SCHEMA_VERSION if key in _current_schema else schema_version(con)
            if version is not None and version > SCHEMA_VERSION:
                raise newer_schema(version)
            if version is None or version == SCHEMA_VERSION:
                _current_schema.add(key)
                if views:
                    use_code_views(con)
                yield con
                return
        self._migrate(version)
        with open_ledger(self.path, read_only=True, timeout=timeout, config=config) as con:
            if views:
                use_code_views(con)
            yield con

    def _migrate(self, version: int) -> None:
        """Readers ask for the columns and tables this version writes (the graph record, the
        origins of inputs); migration only adds them, so every old row and hash stays as it was."""
        try:
            with open_ledger(self.path, timeout=self.lock_timeout) as con:
                con.execute("BEGIN").fetchall()
                try:
                    ensure_schema(con)
                    con.execute("COMMIT").fetchall()
                except BaseException:
                    append.rollback(con)
                    raise
        except (LedgerError, duckdb.Error) as exc:
            raise LedgerError(f"the ledger at {self.path} has schema version {version}; reading it needs it "
                              f"migrated to {SCHEMA_VERSION}, which failed: {exc}") from exc
        _current_schema.add(str(self.path))

    def has_file(self) -> bool:
        """Move the journals in (see `_catch_up`), then say whether there is a file to read: a
        reader that asks this opens the file with `reader(fresh=False)`, not moving twice."""
        self._catch_up()
        return self.path.exists()

    @staticmethod
    def _artifacts(con, digests) -> dict:
        found = lookup_by_key(
            con, "artifacts", "dkey", [key64(d) for d in digests], "digest, kind, type, size, uri, value"
        )
        out = {}
        if found is not None:
            for row in found.to_pylist():
                out.setdefault(row["digest"], ArtifactInfo(**row))
        return out

    _SUMMARY_COLS = (
        "execution_id, workflow, status, started_at, ended_at, duration_s, executor, host, pid, "
        "replay_of, error, process_start"
    )

    @staticmethod
    def _summary(row) -> ExecutionSummary:
        eid, wf, status, started, ended, dur, executor, host, pid, replay_of, error, start = row
        return ExecutionSummary(
            id=eid,
            workflow=wf,
            status=_effective_status(status, host, pid, start),
            started_at=started,
            ended_at=ended,
            duration_s=dur,
            executor=executor,
            host=host,
            pid=pid,
            replay_of=replay_of,
            error=error,
        )

    def executions(self, limit: int | None = None, *, status: str | None = None, workflow: str | None = None,
                   since=None, tag: str | None = None) -> tuple:
        """Executions, newest first, as ExecutionSummary values; the filters narrow them: `status`
        (as shown: a running execution whose process is gone on this host reads `interrupted`),
        `workflow` (a part of "module:function"), `since` (a datetime: started at or after it, UTC
        if naive) and `tag` (carried now).

        >>> import tempfile
        >>> Ledger(tempfile.mkdtemp()).executions(limit=10, status="failed")
        ()
        """
        if not self.has_file():
            return ()
        return self._settled(lambda: self._select_executions(limit, status, workflow, since, tag),
                             lambda found: [e.status for e in found])

    def _settled(self, read, statuses):
        """`read()`; once more, after moving the journals, when it called an execution interrupted
        (`statuses(result)`) and there was something to move: a process that ended between the move
        of its journal and the look at its pid is read as it ended, not as interrupted."""
        result = read()
        if Status.INTERRUPTED in statuses(result) and self._catch_up():
            result = read()
        return result

    def _select_executions(self, limit, status, workflow, since, tag) -> tuple:
        where, params = [], []
        if workflow:
            where.append("contains(workflow, ?)")
            params.append(workflow)
        if since is not None:
            where.append("started_at >= ?")
            params.append(append.utc_naive(since))
        # A live or interrupted run is recorded `running`: which one it is, liveness says below.
        live = status in (Status.RUNNING, Status.INTERRUPTED)
        if live:  # recorded running, or interrupted (by a reader that found its process gone)
            where.append("status IN ('running', 'interrupted')")
        elif status:
            where.append("status = ?")
            params.append(status)
        with self.reader(fresh=False) as con:
            if tag:
                if "tag_log" in missing_tables(con):
                    return ()
                where.append("execution_id IN (SELECT execution_id FROM tags WHERE tag = ?)")
                params.append(tag)
            q = f"SELECT {self._SUMMARY_COLS} FROM executions"
            q += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY started_at DESC, start_seq DESC"
            if limit is not None and not live:
                q += " LIMIT ?"
                params.append(int(limit))
            rows = con.execute(q, params).fetchall()
        found = tuple(self._summary(r) for r in rows)
        if live:
            found = tuple(e for e in found if e.status == status)[:limit]
        return found

    def cancel(self, ref: str, *, wait: float = 30.0) -> ExecutionSummary:
        """Stop a running execution from any process on the host it runs on, as Ctrl-C in its
        terminal would: the steps running are recorded cancelled, the rest not started. Waits up
        to `wait` seconds for the record to say it ended and returns its summary.

        While it runs, from another process (or `lineage cancel latest`)::

            ledger.cancel("latest").status      # 'cancelled'

        An execution that has ended has nothing to cancel:

        >>> Ledger().cancel(ex.id)      # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ledgerflow.errors.CancelError: execution 01... is succeeded: there is nothing to cancel
        """
        import os
        import signal
        import time

        with self.reader() as con:
            eid = refs.resolve_execution(con, ref)
            host, pid, start = con.execute(
                "SELECT host, pid, process_start FROM executions WHERE execution_id = ?", [eid]).fetchall()[0]
        summary = self._settled(lambda: self._one_summary(eid), lambda summary: [summary.status])
        if summary.status != Status.RUNNING:
            raise CancelError(f"execution {eid} is {summary.status}: there is nothing to cancel")
        alive = liveness.is_alive(host, pid, start)
        if alive is None:
            raise CancelError(f"execution {eid} runs on host {host} (pid {pid}), not this one "
                              f"({liveness.this_host()}): cancel it there")
        if not alive:
            raise CancelError(f"execution {eid}: its process {pid} is gone; it is recorded as interrupted")
        if liveness.ignores_sigint(pid):
            raise CancelError(f"execution {eid}: its process {pid} ignores SIGINT (Ctrl-C), as a job started "
                              "with `&` from a script does: end it with `kill` (it is then recorded interrupted)")
        try:
            os.kill(pid, signal.SIGINT)
        except PermissionError:
            raise CancelError(f"execution {eid} runs as another user (pid {pid}): only they (or root) can "
                              "cancel it") from None
        except ProcessLookupError:
            pass  # it ended as we asked: the record says how
        deadline = time.monotonic() + wait
        while True:
            summary = self._settled(lambda: self._one_summary(eid), lambda summary: [summary.status])
            if summary.status == Status.CANCELLED:
                return summary
            if summary.status != Status.RUNNING:
                raise CancelError(f"execution {eid} ended {summary.status} before it could be cancelled")
            if time.monotonic() >= deadline:
                raise CancelError(f"execution {eid} was asked to stop (SIGINT to pid {pid}) but still runs after "
                                  f"{wait:g} s: a step in native code may not see it until it returns; run "
                                  "`lineage cancel` again with --wait, or end the process (it is then recorded "
                                  "interrupted)")
            time.sleep(0.2)

    def _one_summary(self, eid: str) -> ExecutionSummary:
        with self.reader() as con:
            rows = con.execute(f"SELECT {self._SUMMARY_COLS} FROM executions WHERE execution_id = ?", [eid]).fetchall()
        return self._summary(rows[0])

    def resolve(self, ref: str) -> refs.Resolved:
        """What a REF names (see `ledgerflow.lineage.refs`); RefError if nothing or several things."""
        with self.reader() as con:
            return refs.resolve(con, ref)

    def execution(self, ref: str) -> ExecutionDetail:
        """Everything recorded about one execution: its steps, attempts, artifacts and metrics.

        `ref` is an execution id or a unique prefix of one.
        """
        return self._settled(lambda: self._read_execution(ref), lambda detail: [detail.summary.status])

    def _read_execution(self, ref: str) -> ExecutionDetail:
        with self.reader() as con:
            eid = refs.resolve_execution(con, ref)
            row = con.execute(
                f"SELECT {self._SUMMARY_COLS}, workflow_fingerprint, params, code_digest, environment "
                "FROM executions WHERE execution_id = ?",
                [eid],
            ).fetchall()
            if not row:
                raise LedgerError(f"execution {eid} has state rows but no start row: the ledger is damaged")
            summary = self._summary(row[0][:12])
            fingerprint, params, code_digest, environment = row[0][12:]
            ranges = ExecutionRanges(con)
            step_rows = rows_of_executions(
                con, ranges, "step_log",
                "step, attempt, state, task, task_fingerprint, cache_key, cached_from, started_at, ended_at, "
                "resources, node, error, traceback, map_index, condition, blocked_by, forced",
                [eid],
            )[eid]
            edge_rows = rows_of_executions(
                con, ranges, "edges", "step, attempt, direction, name, digest, src_execution_id, src_step, src_name, how",
                [eid]
            )[eid]
            metric_rows = rows_of_executions(
                con, ranges, "metrics", "step, name, value, idx, logged_at, reused_from", [eid])[eid]
            graph = read_graph(con, eid)
            # Most of its artifacts were first seen in this execution, so their rows lie in
            # its seq range too: read those by range, and look up only the others by key.
            lo, hi = ranges.get([eid])[eid]
            arts = {
                row["digest"]: ArtifactInfo(**row)
                for row in con.sql(
                    f"SELECT digest, kind, type, size, uri, value FROM artifacts WHERE seq BETWEEN {int(lo)} AND {int(hi)}"
                ).to_arrow_table().to_pylist()
            }
            arts.update(self._artifacts(con, {r[4] for r in edge_rows} - arts.keys()))
            nodes = {} if "node_log" in missing_tables(con) else {
                node: parse_json(env) for node, env in rows_of_executions(
                    con, ranges, "node_log", "node, environment", [eid])[eid]}
        detail = assemble(summary, fingerprint, params, code_digest, environment, step_rows, edge_rows, metric_rows,
                           arts)
        return attrs.evolve(detail, nodes=nodes, graph=graph)

    def logs(self, ref: str, attempt: int | None = None, *, spooled: bool = False) -> tuple[StepLog, ...]:
        """What steps wrote to stdout and stderr: every attempt of every step of an execution
        (`ref` an execution id), or of one step (`EXECUTION_ID:step`); `attempt` picks one.
        In the order they ran, stdout before stderr. `spooled`: also what attempts still running
        on this host have written so far (from their spool files; `digest` None), after those.

        >>> for log in Ledger().logs(f"{ex.id}:train"):
        ...     print(log.attempt, log.stream, log.text, end="")
        1 stderr training on 10 rows
        """
        with self.reader(views=False) as con:
            resolved = refs.resolve(con, ref)
            if resolved.kind == "artifact":
                raise RefError(f"{ref!r} names an artifact; logs belong to a step: give EXECUTION_ID:step "
                               "or an execution id")
            if "step_streams" in missing_tables(con):
                return ()
            query = ("SELECT execution_id, step, attempt, stream, digest, size, lines FROM step_streams "
                     "WHERE execution_id = ?")
            params: list = [resolved.execution_id]
            if resolved.step is not None:
                query, params = query + " AND step = ?", params + [resolved.step]
            if attempt is not None:
                query, params = query + " AND attempt = ?", params + [attempt]
            rows = con.execute(query + " ORDER BY seq", params).fetchall()
        from ledgerflow.store import Store

        store = Store.open(self.home.store_url)
        recorded = tuple(StepLog(*row, text=_stored_text(store, row[4])) for row in rows)
        if not spooled:
            return recorded
        done = {(g.step, g.attempt, g.stream) for g in recorded}
        return recorded + tuple(g for g in _spooled(self.home.path, resolved.execution_id)
                                if (g.step, g.attempt, g.stream) not in done and resolved.step in (None, g.step)
                                and attempt in (None, g.attempt))

    def occurrence(self, ref: str) -> tuple[ArtifactInfo, str]:
        """An artifact and the occurrence that made it: (info, "EXECUTION_ID:step.slot").

        `ref` is that occurrence itself (`01JD3Q8Z:split.return[0]`, an execution id prefix
        allowed) or a digest (prefix) of bytes some step produced: its first producer.
        """
        from ledgerflow.engine.runner import parse_origin

        with self.reader() as con:
            head, colon, rest = ref.partition(":")
            if colon and head.startswith("latest"):  # latest:step.output names the latest run's occurrence
                ref = f"{refs.resolve_execution(con, head)}:{rest}"
            origin = parse_origin(ref)
            if origin is None and ":" in ref and not ref.startswith("blake3:"):
                origin = parse_origin(ref + ".return")  # EXECUTION_ID:step names what the step returned
            if origin is not None:
                eid = refs.resolve_execution(con, origin.execution_id)
                rows = con.execute(
                    "SELECT digest FROM edges WHERE execution_id = ? AND step = ? AND name = ? AND direction = 'produced' "
                    "ORDER BY seq DESC LIMIT 1", [eid, origin.step, origin.name]).fetchall()
                if not rows:
                    raise RefError(f"{ref!r}: execution {eid} has no output {origin.name!r} of step {origin.step!r}")
                digest, where = rows[0][0], f"{eid}:{origin.step}.{origin.name}"
            else:
                resolved = refs.resolve(con, ref)
                if resolved.kind != "artifact":
                    raise RefError(f"{ref!r} names {resolved.kind} {resolved.ref}, not an artifact: give a digest "
                                   "or EXECUTION_ID:step.output (e.g. 01JD3Q8Z:split.return)")
                digest = resolved.digest
                from ledgerflow.lineage import traversal  # numpy and pyarrow: loaded by the reads that need them

                producers = traversal.producers_of(con, digest)
                # A step that made those bytes; else the run they were first given to as a parameter.
                first = ([(e, s, n) for e, s, n in producers if s != PARAMS_STEP][:1]
                         or [(e, s, n) for e, s, n in producers][:1])
                if not first:
                    raise RefError(f"{ref!r}: no execution in this ledger made or took {digest}; pass the handle "
                                   "itself")
                e, s, n = first[0]
                where = f"{e}:{s}.{n}"
            return self._artifacts(con, [digest])[digest], where

    def graph(self, ref: str) -> RecordedGraph:
        """The graph of an execution as it was built (nodes, typed edges, map elements).

        For an execution recorded before the ledger kept graphs (schema < 4) it is
        reconstructed from the steps' inputs and outputs and marked `inferred`.

            g = ledger.graph("01JD3Q8Z")
            [(e.source, e.target, e.param) for e in g.edges_into("train")]
        """
        detail = self.execution(ref)
        return detail.graph if detail.graph is not None else inferred_graph(detail)

    def upstream(self, ref: str, depth: int | None = None, *, same_content: bool = False) -> Lineage:
        """Everything `ref` came from: producing steps, their inputs, ... down to raw parameters.

        `ref`: a digest or unique prefix, an execution id, or "EXECUTION_ID:step". Nodes
        come with their depth (hops from `ref`); `depth` limits it. For example::

            model = ledger.upstream("blake3:9f3a", depth=4)
            [n.ref for n in model.of_kind("step")]       # ['01JD...:train', '01JD...:ingest']
        """
        return self._walk(ref, "upstream", depth, same_content)

    def downstream(self, ref: str, depth: int | None = None, *, same_content: bool = False) -> Lineage:
        """Everything made from `ref`: from a digest, every step that consumed those bytes (e.g.
        every model trained on a dataset) and what was made from them, by recorded provenance."""
        return self._walk(ref, "downstream", depth, same_content)

    def _walk(self, ref: str, direction: str, depth: int | None, same_content: bool = False) -> Lineage:
        from ledgerflow.lineage import traversal  # numpy and pyarrow: `lineage list` and `--help` do without

        with self.reader() as con:
            return traversal.traverse(con, refs.resolve(con, ref), direction, depth, same_content)

    def why(self, ref: str):
        """Why a step ran, or which earlier step it reused: a StepWhy (see `ledgerflow.lineage.why`).

        `ref`: "EXECUTION_ID:step" (an id prefix allowed), "latest:step", or a step name (of the
        latest execution that has it). For a step that ran, the parts of its cache key that differ
        from the most recent earlier run of its task, a changed function with a diff of its source::

            ledger.why("train").reason        # 're-ran: FACTOR: 2 -> 5 (since 01JD...:train)'
        """
        from ledgerflow.lineage import why

        with self.reader() as con:
            execution_id, step = why.resolve_step(con, ref)
            try:
                from ledgerflow.store import Store

                store = Store.open(self.home.store_url)
            except Exception:  # noqa: BLE001 - without a store, `why` still answers, without diffs
                store = None
            return why.explain(con, store, execution_id, step)

    def sql(self, query: str, params: list | None = None, *, timeout: float | None = 30.0,
            memory: str = "1GB") -> pa.Table:  # the defaults: readonly_sql.DEFAULT_TIMEOUT_S, DEFAULT_MEMORY
        """Run a read-only query; returns a pyarrow Table (`.to_pylist()` for dicts).

        Statements that write, and any access outside the ledger file, are refused with
        LedgerError; the ledger is left unchanged. The query is stopped, with LedgerError,
        after `timeout` seconds (None or 0: no limit) or when it needs more than `memory`
        (a DuckDB size: "1GB", "512MB"); it never spills to disk. The views it sees are this
        code's (see `_reader`).

        >>> import tempfile
        >>> Ledger(tempfile.mkdtemp()).sql("DROP TABLE steps")
        Traceback (most recent call last):
        ...
        ledgerflow.errors.QueryError: query sql is read-only: refused a DROP statement (statement 1)
        """
        if self.server is not None:
            return self._server_sql(query, params, timeout)
        readonly_sql.check(query)
        with self.reader(readonly_sql.config(memory)) as con:
            return readonly_sql.run(con, query, params, timeout=timeout, memory=memory)

    def _server_sql(self, query: str, params: list | None, timeout: float | None) -> pa.Table:
        """`sql` on a ledger server: run there, as its reader role (see `server.query`)."""
        import pyarrow as pa

        self.flush()
        self._exchange()  # what this home journaled is on the server before the query reads it
        names, rows = servers.query(self.server, query, params, timeout_s=timeout or 0)
        columns = list(zip(*rows)) if rows else [[] for _ in names]
        return pa.Table.from_arrays([pa.array(list(c)) for c in columns], names=names)

    def verify(self, store: bool = True) -> VerifyReport:
        """Re-walk the hash chain and re-hash every store object; a VerifyReport says what's wrong.

        >>> import tempfile
        >>> Ledger(tempfile.mkdtemp()).verify(store=False).ok
        True
        """
        return verification.verify(self, store)

    # -- model registry (see ledgerflow.lineage.registry) ------------------------------

    def models(self) -> tuple:
        """Every registered model: its versions (metrics, producing execution), aliases and their history.

        >>> import tempfile
        >>> Ledger(tempfile.mkdtemp()).models()
        ()
        """
        if not self.has_file():
            return ()
        with self.reader(fresh=False) as con:
            return registry.read_models(con)

    def registered(self, name: str) -> RegisteredModel:
        """One registered model by name; RefError (naming close names) if there is none."""
        found = ()
        if self.has_file():
            with self.reader(fresh=False) as con:
                found = registry.read_models(con, name)
                known = registry.names(con) if not found else []
        else:
            known = []
        if not found:
            raise registry.unknown_model(name, known)
        return found[0]

    def model(self, name: str, *, alias: str | None = None, version: int | None = None,
              digest: str | None = None) -> ModelVersion | None:
        """A version of a registered model: the one `alias` points at, number `version`, the
        one holding `digest`, or (none given) the latest. None if there is no such version.

        >>> import tempfile
        >>> Ledger(tempfile.mkdtemp()).model("digits", alias="production") is None
        True
        """
        if sum(x is not None for x in (alias, version, digest)) > 1:
            raise RegistryError("model(): give at most one of alias, version, digest")
        if not self.has_file():
            return None
        with self.reader(fresh=False) as con:
            found = registry.read_models(con, name)
        if not found:
            return None
        m = found[0]
        if alias is not None:
            version = m.aliases.get(alias)
            if version is None:
                return None
        for v in m.versions:
            if (digest is not None and v.digest == digest) or (digest is None and v.version == version):
                return v
        return m.latest if version is None and digest is None else None

    def alias_history(self, name: str, alias: str | None = None) -> tuple:
        """Every move of `alias` (or of all the model's aliases), oldest first, as AliasMove values."""
        m = self.registered(name)
        return tuple(mv for mv in m.history if alias is None or mv.alias == alias)

    def promote(self, name: str, version: int, alias: str = "production", *, who: str | None = None,
                why: str | None = None) -> ModelVersion:
        """Point `alias` at `version` of `name`; returns that version. Recorded with who, when and why.

        Promoting to the version the alias already points at records nothing.
        """
        registry.check_name("alias", alias)
        m = self.registered(name)
        target = registry.find_version(m, int(version))
        if m.aliases.get(alias) != target.version:
            self._move(AliasMoved(name, alias, target.version, _utcnow(), who or _who(), why, action=registry.PROMOTE))
        return self.model(name, version=target.version)

    def rollback(self, name: str, alias: str = "production", *, who: str | None = None,
                 why: str | None = None) -> ModelVersion:
        """Return `alias` to the version it pointed at before its last move; returns that version.

        Rolling back again walks further back through the alias's history; RegistryError
        when there is no earlier version.
        """
        registry.check_name("alias", alias)
        target = registry.rollback_target(self.registered(name), alias)
        self._move(AliasMoved(name, alias, target, _utcnow(), who or _who(), why, action=registry.ROLLBACK))
        return self.model(name, version=target)

    def _move(self, event) -> None:
        self.record(event)
        self.sync()

    # -- retention (see ledgerflow.lineage.retention) ---------------------------------

    def tags(self, execution: str) -> tuple:
        """The tags an execution carries now (an id or unique prefix), sorted.

        >>> ledger = Ledger()
        >>> ledger.tags(ex.id)
        ()
        >>> ledger.tag(ex.id, "keep")
        ('keep',)
        >>> ledger.tags(ex.id)
        ('keep',)
        """
        with self.reader() as con:
            return retention.current_tags(con, refs.resolve_execution(con, execution))

    def tag(self, execution: str, tag: str, *, remove: bool = False, who: str | None = None,
            why: str | None = None) -> tuple:
        """Tag an execution (`keep` protects its objects from gc), or remove a tag; returns its tags.

        A removal is a new row too: the tag history stays in `tag_log`.
        """
        registry.check_name("tag", tag)  # a bad name is bad input, whatever the ledger holds
        with self.reader() as con:
            eid = refs.resolve_execution(con, execution)
            current = retention.current_tags(con, eid)
        event = retention.tag_event(eid, tag, current, remove=remove, who=who or _who(), why=why)
        if event is None:
            return current
        self._move(event)
        return self.tags(eid)

    def gc(self, keep_last: int | None = None, older_than_days: float | None = None, *, dry_run: bool = False,
           keep_tag: str = retention.KEEP, orphan_min_age_s: float = retention.ORPHAN_MIN_AGE_S,
           who: str | None = None) -> GcReport:
        """Remove the store objects no kept execution references; record each removal in `gc_log`.

        See `ledgerflow.lineage.retention` for what is kept. `dry_run` removes and records
        nothing and reports what would go.
        """
        policy = retention.Policy(keep_last, older_than_days, keep_tag, orphan_min_age_s)
        return retention.collect(self, policy, dry_run=dry_run, who=who)

    def collected(self, digest: str) -> CollectedObject | None:
        """When and by whom `lineage gc` removed `digest` from the store; None if it never did."""
        if not self.has_file():
            return None
        with self.reader(fresh=False) as con:
            return retention.collected(con, digest)


def _spooled(home: Path, execution_id: str) -> list:
    """What the attempts of `execution_id` still running on this host have written so far."""
    from ledgerflow.engine.capture import spools

    found = []
    for step, attempt, stream, path in spools(home, execution_id):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # stored and removed as we looked: the recorded copy is read next time
        if text:
            found.append(StepLog(execution_id, step, attempt, stream, None, len(text.encode()), text.count("\n"),
                                 text))
    return found


def _stored_text(store, digest: str) -> str | None:
    from ledgerflow.errors import ObjectNotFound

    try:
        return store.get_bytes(digest).decode("utf-8", errors="replace")
    except (ObjectNotFound, OSError):
        return None


def _utcnow():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def _who() -> str:
    from ledgerflow.engine.runner import who

    return who()


