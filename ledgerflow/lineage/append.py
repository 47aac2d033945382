"""One flush: a batch of events becomes chained rows, written in one transaction.

The batch is turned into one Arrow table per ledger table, each row numbered with the
next `seq`, hashed in `seq` order onto the chain's head, and inserted in bulk (one
INSERT ... SELECT per table, never one statement per event). The head is read inside
the same transaction while this process holds the file lock, so no other writer can
append in between.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
from blake3 import blake3

from ledgerflow.engine.events import (
    FROM_CACHE,
    INTERRUPTED,
    RUNNING,
    AliasMoved,
    ExecutionFinished,
    ExecutionStarted,
    GraphRecorded,
    TaskIdentified,
    MetricLogged,
    ModelRegistered,
    NodeSeen,
    StepFinished,
    StepLogged,
    StepStarted,
)
from ledgerflow import liveness
from ledgerflow.errors import UnknownEvent
from ledgerflow.lineage import chain, registry, retention
from ledgerflow.lineage.rows import lookup_by_key
from ledgerflow.lineage.schema import (
    ARTIFACTS,
    CHAINED_TABLES,
    EDGES,
    EXECUTION_LOG,
    GRAPH_LOG,
    GRAPH_SPECS,
    TASK_IDENTITIES,
    METRICS,
    NODE_LOG,
    OUTPUTS_STEP,
    PARAMS_STEP,
    STEP_STREAMS,
    SCHEMA_VERSION,
    STEP_LOG,
    ensure_schema,
    key64,
)

def utc_naive(at: datetime | None) -> datetime | None:
    """Timestamps are stored as naive UTC; an aware datetime is converted, a naive one taken as UTC."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(timezone.utc).replace(tzinfo=None)


def head(con, at_least: int = 0) -> tuple:
    """(seq, row_hash) of the newest row of the chain, or (0, genesis).

    `at_least`: a seq the head is believed to have reached (this process's last write).
    Rows below it are skipped by zone maps, so the query reads only the newest row groups
    instead of every seq of every table; if no row reaches it (the file was replaced by a
    shorter one), the whole chain is asked.
    """
    where = f" WHERE seq >= {int(at_least)}" if at_least > 0 else ""
    parts = " UNION ALL ".join(
        f"(SELECT seq, row_hash FROM {t.name}{where} ORDER BY seq DESC LIMIT 1)" for t in CHAINED_TABLES
    )
    rows = con.execute(f"SELECT seq, row_hash FROM ({parts}) ORDER BY seq DESC LIMIT 1").fetchall()
    if not rows and at_least > 0:
        return head(con)
    return (0, chain.GENESIS) if not rows else (rows[0][0], bytes(rows[0][1]))


# path -> seq of the newest row this process wrote there: where the next head() may start looking.
_last_seq: dict = {}
_pending_head: dict = {}  # path -> (seq, hash) of the head of a transaction not committed yet


def check_schema(con) -> None:
    """Begin a write transaction and make sure the file is at this schema version.

    ensure_schema, through a fast path: one query of `meta` when it is at this version
    (ensure_schema asks information_schema first, ~10 ms on a big file). A file without
    `meta` fails the query, which ends the transaction, so it is begun again before
    ensure_schema creates the schema.
    """
    con.execute("BEGIN").fetchall()
    try:
        row = con.execute(
            "SELECT max(CAST(value AS INTEGER)) FROM meta WHERE key = 'schema_version'"
        ).fetchall()[0]
    except duckdb.CatalogException:
        rollback(con)
        con.execute("BEGIN").fetchall()
        row = (None,)
    if row[0] is None or int(row[0]) != SCHEMA_VERSION:
        ensure_schema(con)


_COLUMN_NAMES: dict = {}  # table name -> its column names (a property that builds a tuple each time)


class _Batch:
    """Rows being assembled for one flush, numbered as they are added."""

    def __init__(self, first_seq: int, known_digests: set):
        self.next_seq = first_seq
        self.rows = {t.name: [] for t in CHAINED_TABLES}  # tuples in column order
        self.known = known_digests
        self.specs: set = set()  # digests of graph specs and task identities the ledger holds (or this batch adds)
        self._keys: dict = {}

    def add(self, table, **values) -> None:
        values["seq"] = self.next_seq
        self.next_seq += 1
        names = _COLUMN_NAMES.get(table.name)
        if names is None:
            names = _COLUMN_NAMES[table.name] = table.column_names
        get = values.get
        self.rows[table.name].append(tuple([get(c) for c in names]))

    def key(self, text: str) -> int:
        # A digest appears in several edges of a batch (produced, then consumed): hash it once.
        k = self._keys.get(text)
        if k is None:
            k = self._keys[text] = key64(text)
        return k

    def artifacts_and_edges(self, execution_id, step, attempt, direction, binding, at, sources=(),
                            reused: str | None = None) -> None:
        """Artifact rows for digests new to the ledger, and an edge per binding, each with the
        occurrence it came from: `sources` by name, or for a cache hit's outputs (`reused`,
        "EXEC:step") the same output of the step it reuses."""
        origins = dict(sources)
        reused_execution, _, reused_step = (reused or "").partition(":")
        for name, ref in binding:
            origin = origins.get(name)
            if origin is not None:
                src = (origin.execution_id, origin.step, origin.name, origin.how)
            elif reused:
                src = (reused_execution, reused_step, name, FROM_CACHE)
            else:
                src = (None, None, None, None)
            if src[0] == execution_id:
                # Most inputs come from the same execution: NULL says so, which keeps the column
                # all-NULL in most row groups, so zone maps skip them when a walk asks which
                # rows point into other executions.
                src = (None,) + src[1:]
            if ref.digest not in self.known:
                self.known.add(ref.digest)
                self.add(
                    ARTIFACTS,
                    digest=ref.digest,
                    dkey=self.key(ref.digest),
                    kind=ref.kind,
                    type=ref.type,
                    size=ref.size,
                    uri=ref.uri,
                    value=ref.value,
                    first_execution_id=execution_id,
                    first_step=step,
                    first_seen_at=at,
                )
            self.add(
                EDGES,
                execution_id=execution_id,
                step=step,
                attempt=attempt,
                direction=direction,
                name=name,
                digest=ref.digest,
                dkey=self.key(ref.digest),
                src_execution_id=src[0],
                src_step=src[1],
                src_name=src[2],
                how=src[3],
            )


def _batch_digests(events) -> list:
    out = []
    for ev, _ in events:
        for binding in (getattr(ev, "inputs", ()), getattr(ev, "outputs", ())):
            out.extend(ref.digest for _, ref in binding)
    return out


def _existing(con, digests: list) -> set:
    found = lookup_by_key(con, "artifacts", "dkey", [key64(d) for d in digests], "digest")
    if found is None:
        return set()
    wanted = set(digests)
    return {d for d in found.column("digest").to_pylist() if d in wanted}


def _interrupted(con, batch: _Batch, spared: set, now: datetime, this_boot_only: bool = False) -> None:
    """Append an `interrupted` state row for running executions whose process is gone, and
    one for each of their steps that was running, so no step reads `running` forever.

    `this_boot_only` (a team ledger): only processes started since this machine booted are
    judged. Another machine may carry the same host name, and one of its runs would look
    dead here (its start token names another boot)."""
    rows = con.execute(
        """
        SELECT s.execution_id, s.host, s.pid, s.process_start FROM execution_log s
        WHERE s.workflow IS NOT NULL AND s.host = ?
          AND NOT EXISTS (SELECT 1 FROM execution_log l
                          WHERE l.execution_id = s.execution_id AND l.state <> 'running')
        ORDER BY s.seq
        """,
        [liveness.this_host()],
    ).fetchall()
    for execution_id, host, pid, start in rows:
        if (pid, start) in spared or liveness.is_alive(host, pid, start) is not False:
            continue
        if this_boot_only and not liveness.started_this_boot(start):
            continue
        why = f"process {pid} on {host} ended without finishing the execution"
        for step, attempt, task, fingerprint, cache_key, started_at, resources, map_index in con.execute(
            """
            SELECT step, attempt, task, task_fingerprint, cache_key, started_at, resources, map_index
            FROM step_log WHERE execution_id = ?
            QUALIFY row_number() OVER (PARTITION BY step, attempt ORDER BY seq DESC) = 1 AND state = 'running'
            ORDER BY seq
            """,
            [execution_id],
        ).fetchall():
            batch.add(STEP_LOG, execution_id=execution_id, step=step, attempt=attempt, state=INTERRUPTED, task=task,
                      task_fingerprint=fingerprint, cache_key=cache_key,
                      ckey=None if cache_key is None else batch.key(cache_key), started_at=started_at, ended_at=now,
                      resources=resources, map_index=map_index, error=why)
        batch.add(EXECUTION_LOG, execution_id=execution_id, state=INTERRUPTED, changed_at=now, error=why)


def append(con, events: list, ledger_path) -> int:
    """Append `events` (pairs of event and its process-start token) as chained rows, inside
    the caller's open transaction (begun with `check_schema`). Returns the number of rows.

    The head is read inside that transaction while this process holds the file, so no other
    process can append in between; `committed` tells the next head() where to look.
    """
    head_seq, head_hash = _head_in_transaction(con, ledger_path)
    batch = _Batch(head_seq + 1, _existing(con, _batch_digests(events)))
    batch.specs = _known_content(con, events)
    batch.registry = registry.RegistryState(con)  # numbers model versions; queries only if needed
    finished = coalesced(events)
    for ev, start in events:
        if isinstance(ev, StepStarted) and (ev.execution_id, ev.step, ev.attempt) in finished:
            continue
        _add_event(batch, ev, start)
    n = batch.next_seq - (head_seq + 1)
    if n:
        _pending_head[str(ledger_path)] = (head_seq + n, _insert(con, batch, head_seq, head_hash))
    return n


def interrupt_dead(con, ledger_path, spared: set = frozenset(), *, this_boot_only: bool = False) -> int:
    """Append an `interrupted` state row for each running execution of this host whose process
    is gone, and for each of its running steps (inside the caller's transaction).

    `spared`: (pid, process start) of processes seen alive when their journal was read. One
    that died since may have appended records not moved yet; it is left for the next move.
    """
    head_seq, head_hash = _head_in_transaction(con, ledger_path)
    batch = _Batch(head_seq + 1, set())
    _interrupted(con, batch, spared, utc_naive(datetime.now(timezone.utc)), this_boot_only)
    n = batch.next_seq - (head_seq + 1)
    if n:
        _pending_head[str(ledger_path)] = (head_seq + n, _insert(con, batch, head_seq, head_hash))
    return n


def _head_in_transaction(con, ledger_path) -> tuple:
    # Rows this transaction appended already: their head is known, no need to ask for it.
    return _pending_head.get(str(ledger_path)) or head(con, _last_seq.get(str(ledger_path), 0))


def committed(ledger_path) -> None:
    """The transaction that appended rows committed: the next head() may start from them."""
    pending = _pending_head.pop(str(ledger_path), None)
    if pending is not None:
        _last_seq[str(ledger_path)] = pending[0]


def forget(ledger_path) -> None:
    """The transaction that appended rows was rolled back."""
    _pending_head.pop(str(ledger_path), None)


def write(con, events: list, ledger_path) -> int:
    """Append `events` in a transaction of their own. Returns the number of rows written."""
    check_schema(con)
    try:
        n = append(con, events, ledger_path)
        con.execute("COMMIT").fetchall()
    except BaseException:
        forget(ledger_path)
        rollback(con)
        raise
    committed(ledger_path)
    return n


def rollback(con) -> None:
    """Roll back the open transaction, if there still is one, without hiding why it failed.

    A COMMIT that fails (a full disk: "Failed to commit: Could not write file ...: No space
    left on device") has already ended the transaction; ROLLBACK would then raise "cannot
    rollback - no transaction is active" and that error, not the real cause, would reach
    the user (found by tests/system/test_faults.py). The original exception is re-raised by the caller.
    """
    try:
        con.execute("ROLLBACK").fetchall()
    except duckdb.Error:
        pass


def coalesced(events: list) -> set:
    """Attempts that start and finish within this batch.

    Their `running` row would be superseded in the same transaction, so no reader could
    ever see it: it is not written (one step_log row per attempt instead of two).
    """
    return {
        (ev.execution_id, ev.step, ev.attempt) for ev, _ in events if isinstance(ev, StepFinished)
    }


def _node_seen(batch: _Batch, ev: NodeSeen, start) -> None:
    batch.add(NODE_LOG, execution_id=ev.execution_id, node=ev.node, environment=ev.environment,
              seen_at=utc_naive(ev.at))


def _step_finished(batch: _Batch, ev: StepFinished, start) -> None:
    batch.add(
        STEP_LOG,
        execution_id=ev.execution_id,
        step=ev.step,
        attempt=ev.attempt,
        state=ev.status,
        task=ev.task,
        task_fingerprint=ev.task_fingerprint,
        cache_key=ev.cache_key,
        ckey=None if ev.cache_key is None else batch.key(ev.cache_key),
        cached_from=ev.cached_from,
        started_at=utc_naive(ev.started_at),
        ended_at=utc_naive(ev.ended_at),
        resources=ev.resources,
        node=ev.node,
        error=ev.error,
        traceback=ev.traceback,
        map_index=ev.map_index,
        condition=ev.condition,
        blocked_by=ev.blocked_by,
        forced=ev.forced,
    )
    at = utc_naive(ev.ended_at)
    batch.artifacts_and_edges(ev.execution_id, ev.step, ev.attempt, "consumed", ev.inputs, at, ev.sources)
    batch.artifacts_and_edges(ev.execution_id, ev.step, ev.attempt, "produced", ev.outputs, at, reused=ev.cached_from)


def _step_started(batch: _Batch, ev: StepStarted, start) -> None:
    batch.add(
        STEP_LOG,
        execution_id=ev.execution_id,
        step=ev.step,
        attempt=ev.attempt,
        state=RUNNING,
        task=ev.task,
        task_fingerprint=ev.task_fingerprint,
        cache_key=ev.cache_key,
        ckey=None if ev.cache_key is None else batch.key(ev.cache_key),
        started_at=utc_naive(ev.started_at),
        resources=ev.resources,
        map_index=ev.map_index,
        forced=ev.forced,
    )


def _step_logged(batch: _Batch, ev: StepLogged, start) -> None:
    batch.add(STEP_STREAMS, execution_id=ev.execution_id, step=ev.step, attempt=ev.attempt, stream=ev.stream,
              digest=ev.digest, size=ev.size, lines=ev.lines, logged_at=utc_naive(ev.at))


def _metric_logged(batch: _Batch, ev: MetricLogged, start) -> None:
    batch.add(METRICS, execution_id=ev.execution_id, step=ev.step, name=ev.name, value=float(ev.value),
              idx=ev.index, logged_at=utc_naive(ev.at), reused_from=ev.reused_from)


def _execution_started(batch: _Batch, ev: ExecutionStarted, start) -> None:
    batch.add(
        EXECUTION_LOG,
        execution_id=ev.execution_id,
        state=RUNNING,
        changed_at=utc_naive(ev.started_at),
        workflow=ev.workflow,
        workflow_fingerprint=ev.workflow_fingerprint,
        params=ev.params,
        executor=ev.executor,
        host=ev.host,
        pid=ev.pid,
        process_start=start,
        code_digest=ev.code_digest,
        environment=ev.environment,
        replay_of=ev.replay_of,
    )
    batch.artifacts_and_edges(ev.execution_id, PARAMS_STEP, 0, "produced", ev.inputs, utc_naive(ev.started_at),
                              ev.sources)


def _graph_recorded(batch: _Batch, ev: GraphRecorded, start) -> None:
    digest = digest_text(ev.spec)
    if digest not in batch.specs:
        batch.specs.add(digest)
        batch.add(GRAPH_SPECS, digest=digest, dkey=batch.key(digest), spec=ev.spec, first_execution_id=ev.execution_id)
    batch.add(GRAPH_LOG, execution_id=ev.execution_id, part=ev.part, spec_digest=digest, recorded_at=utc_naive(ev.at))


def digest_text(text: str) -> str:
    return "blake3:" + blake3(text.encode()).hexdigest()


def _task_identified(batch: _Batch, ev: TaskIdentified, start) -> None:
    if ev.fingerprint not in batch.specs:
        batch.specs.add(ev.fingerprint)
        batch.add(TASK_IDENTITIES, digest=ev.fingerprint, dkey=batch.key(ev.fingerprint), task=ev.task,
                  parts=ev.parts, first_execution_id=ev.execution_id)


def _known_content(con, events) -> set:
    """Digests of this batch's graph specs and task identities that the ledger holds already
    (content kept once by digest; asked only when the batch has some)."""
    out: set = set()
    for table, digests in (
        ("graph_specs", [digest_text(ev.spec) for ev, _ in events if isinstance(ev, GraphRecorded)]),
        ("task_identities", [ev.fingerprint for ev, _ in events if isinstance(ev, TaskIdentified)]),
    ):
        if digests:
            found = lookup_by_key(con, table, "dkey", [key64(d) for d in digests], "digest")
            if found is not None:
                out |= set(found.column("digest").to_pylist()) & set(digests)
    return out


def _execution_finished(batch: _Batch, ev: ExecutionFinished, start) -> None:
    at = utc_naive(ev.ended_at)
    batch.artifacts_and_edges(ev.execution_id, OUTPUTS_STEP, 0, "consumed", ev.outputs, at, ev.sources)
    # The state row comes last, so an execution's rows all lie between its first and
    # last execution_log rows (queries use that seq range to skip the rest of the file).
    batch.add(EXECUTION_LOG, execution_id=ev.execution_id, state=ev.status, changed_at=at, error=ev.error)


def _registry_event(batch: _Batch, ev, start) -> None:
    registry.add_rows(batch, ev, utc_naive(ev.at))


def _retention_event(batch: _Batch, ev, start) -> None:
    retention.add_rows(batch, ev, utc_naive(ev.at))


# The one table of what the ledger records: event type -> the function adding its rows to a
# flush. The recorder accepts exactly these types (`Ledger.record` refuses any other).
ROWS = {
    ExecutionStarted: _execution_started,
    GraphRecorded: _graph_recorded,
    TaskIdentified: _task_identified,
    StepStarted: _step_started,
    StepFinished: _step_finished,
    StepLogged: _step_logged,
    MetricLogged: _metric_logged,
    ExecutionFinished: _execution_finished,
    ModelRegistered: _registry_event,
    AliasMoved: _registry_event,
    NodeSeen: _node_seen,
    retention.ExecutionTagged: _retention_event,
    retention.ObjectCollected: _retention_event,
}


def _add_event(batch: _Batch, ev, start) -> None:
    rows = ROWS.get(type(ev))
    if rows is None:
        raise UnknownEvent(f"the ledger does not know how to record {type(ev).__name__}")
    rows(batch, ev, start)


def _insert(con, batch: _Batch, head_seq: int, head_hash: bytes) -> bytes:
    """Insert the batch's rows after the head; returns the new head's hash."""
    import pyarrow as pa
    parts = []
    for t in CHAINED_TABLES:
        rows = batch.rows[t.name]
        if rows:
            columns = list(zip(*rows))
            parts.append((t, pa.table([pa.array(col, c.arrow) for col, c in zip(columns, t.columns)],
                                      schema=t.arrow_schema)))
    return insert_chained(con, parts, head_seq, head_hash)[-1]


def insert_chained(con, parts: list, head_seq: int, head_hash: bytes) -> list:
    """Insert rows numbered head_seq + 1, head_seq + 2, ... (their `seq` column), chained after
    head_hash: each row's hash covers its content and the hash of the row before it in seq order.

    `parts` is [(ChainedTable, Arrow table of its content columns)]. Returns the new row
    hashes in seq order. The one place rows enter the chain (flushes and imports alike).
    """
    import pyarrow as pa
    n = sum(data.num_rows for _, data in parts)
    encodings: list = [None] * n
    for t, data in parts:
        for seq, enc in zip(data.column("seq").to_pylist(), chain.encode_rows(t, data)):
            encodings[seq - head_seq - 1] = enc
    hashes = chain.chain(head_hash, encodings)
    prevs = [head_hash] + hashes[:-1]
    for t, data in parts:
        idx = [s - head_seq - 1 for s in data.column("seq").to_pylist()]
        data = data.append_column("prev_hash", pa.array([prevs[i] for i in idx], pa.binary()))
        data = data.append_column("row_hash", pa.array([hashes[i] for i in idx], pa.binary()))
        insert_rows(con, t, data)
    return hashes


def insert_rows(con, t, data) -> None:
    """Insert an Arrow table of whole rows of t (content and chain columns) as they are, in bulk."""
    con.register("_rows", data)
    try:
        cols = ", ".join(t.column_names + ("prev_hash", "row_hash"))
        con.execute(f"INSERT INTO {t.name} ({cols}) SELECT {cols} FROM _rows").fetchall()
    finally:
        con.unregister("_rows")


def process_start_of(ev) -> str | None:
    """The start token to record with an event (only ExecutionStarted needs one)."""
    if isinstance(ev, ExecutionStarted):
        return liveness.process_start(ev.pid)
    return None

