"""The action cache (Bazel's term): cache key -> the outputs of the step that first produced them.

Misses, the common case, are answered from memory: the 64-bit keys of every succeeded
step are loaded once and topped up (rows newer than the last look) every couple of
seconds, so a run doesn't open the file once per step. What this process recorded is
answered before it is even flushed, and what other processes journaled but nobody has
moved into the file yet is read from their journals (a run never moves them itself: it
must not wait for the file).

A lookup never fails a run: if the file stays locked, it answers from the journals and
memory alone, and a miss only means the step runs again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from ledgerflow.engine.events import SUCCEEDED, ArtifactRef, CacheEntry, MetricLogged, StepFinished
from ledgerflow.errors import LedgerBusy
from ledgerflow.lineage import journal
from ledgerflow.lineage.schema import key64

log = logging.getLogger("ledgerflow")


class CacheIndex:
    """Cache lookups over one ledger file; `open_reader()` opens it read-only for one query."""

    def __init__(self, path, open_reader, journal_dir=None, own_journal=None):
        self.path = path
        self._open = open_reader
        self._journal_dir = journal_dir
        self._own_journal = own_journal
        self._read_to: dict = {}  # journal path -> offset read up to
        self._journaled: dict = {}  # cache_key -> CacheEntry from another process's journal
        self._journal_metrics: dict = defaultdict(list)
        self._recent: dict = {}  # cache_key -> CacheEntry recorded by this process
        self._logged: dict = defaultdict(list)  # (execution, step) -> metrics of a step not finished yet
        self._keys: set | None = None  # ckeys of succeeded steps in the file
        self._watermark = (0, 0.0)  # (seq, monotonic time) of that snapshot

    def remember(self, event) -> None:
        """Note what this process records, so a later step of the same run hits without a read."""
        if isinstance(event, MetricLogged):
            self._logged[(event.execution_id, event.step)].append((event.name, event.value, event.index))
        elif isinstance(event, StepFinished) and event.status == SUCCEEDED and event.cache_key:
            self._recent.setdefault(
                event.cache_key, CacheEntry(f"{event.execution_id}:{event.step}", event.outputs,
                                            tuple(self._logged.pop((event.execution_id, event.step), ())))
            )

    def lookup(self, cache_key: str) -> CacheEntry | None:
        """The outputs of the first successful step with this cache key, or None.

        Misses, the common case, are answered from memory: the 64-bit keys of every
        succeeded step are loaded once and topped up (rows newer than the last look)
        every couple of seconds, so a run doesn't open the file once per step.
        """
        if cache_key in self._recent:
            return self._recent[cache_key]
        k = key64(cache_key)
        seq, when = self._watermark
        if self._keys is None or time.monotonic() - when > 2.0:
            # Journals first, then the file: a journal moved and removed in between is in the file.
            self._read_journals()
            try:
                self._top_up(seq)
            except LedgerBusy as exc:
                log.warning("cache lookups answered without the ledger file, which stayed locked: %s", exc)
                self._keys = self._keys or set()
                self._watermark = (seq, time.monotonic())
        if k not in self._keys:
            return self._journaled.get(cache_key)
        try:
            return self._from_file(k, cache_key) or self._journaled.get(cache_key)
        except LedgerBusy:
            return self._journaled.get(cache_key)

    def _top_up(self, seq: int) -> None:
        if not self.path.exists():
            self._keys = self._keys or set()
            self._watermark = (seq, time.monotonic())
            return
        with self._open() as con:
            rows = con.execute(
                "SELECT ckey, seq FROM step_log WHERE seq > ? AND state = ? AND ckey IS NOT NULL",
                [seq, SUCCEEDED],
            ).fetchall()
        keys = self._keys or set()
        keys.update(r[0] for r in rows)
        self._keys = keys
        self._watermark = (max([seq] + [r[1] for r in rows]), time.monotonic())

    def _read_journals(self) -> None:
        """Note the successful steps other processes journaled since the last look."""
        if self._journal_dir is None:
            return
        for path in journal.journals(self._journal_dir):
            if path == self._own_journal:
                continue
            offset = self._read_to.get(path)
            if offset is None:
                header = journal.read_header(path)
                if header is None:
                    continue
                offset = header.end
            chunk = journal.read(path, offset)
            self._read_to[path] = chunk.end
            for _, record in chunk.records:
                kind = record.get("t")
                if kind == "MetricLogged":
                    self._journal_metrics[(record["execution_id"], record["step"])].append(
                        (record["name"], record["value"], record.get("index")))
                elif kind == "StepFinished" and record.get("status") == SUCCEEDED and record.get("cache_key"):
                    event, _ = journal.decode(record)
                    self._journaled.setdefault(event.cache_key, CacheEntry(
                        f"{event.execution_id}:{event.step}", event.outputs,
                        tuple(self._journal_metrics.pop((event.execution_id, event.step), ()))))

    def _from_file(self, k: int, cache_key: str) -> CacheEntry | None:
        # A hit: load every cached result of the same task in one read, so that a rerun of a
        # thousand cached steps opens the file once per task, not once per step.
        with self._open() as con:
            rows = con.execute(
                """
                WITH task AS (
                    SELECT task_fingerprint FROM step_log
                    WHERE ckey = ? AND cache_key = ? AND state = ? LIMIT 1
                ), hits AS (
                    SELECT execution_id, step, attempt, cache_key FROM step_log
                    WHERE task_fingerprint = (SELECT task_fingerprint FROM task)
                      AND state = ? AND cache_key IS NOT NULL
                    QUALIFY row_number() OVER (PARTITION BY cache_key ORDER BY seq) = 1
                )
                SELECT h.cache_key, h.execution_id, h.step, e.name, a.digest, a.kind, a.type, a.size, a.uri, a.value
                FROM hits h
                JOIN edges e ON e.execution_id = h.execution_id AND e.step = h.step AND e.attempt = h.attempt
                             AND e.direction = 'produced'
                JOIN (SELECT * FROM artifacts QUALIFY row_number() OVER (PARTITION BY digest ORDER BY seq) = 1) a
                  ON a.digest = e.digest
                ORDER BY h.cache_key, e.seq
                """,
                [k, cache_key, SUCCEEDED, SUCCEEDED],
            ).fetchall()
            metrics: dict = defaultdict(list)
            producers = list(dict.fromkeys((r[1], r[2]) for r in rows))
            if producers:
                # What those steps logged comes with their outputs: a cache hit records it again.
                for execution_id, step, name, value, idx in con.execute(
                    """
                    SELECT m.execution_id, m.step, m.name, m.value, m.idx FROM metrics m
                    JOIN (SELECT unnest(?) AS e, unnest(?) AS s) p ON m.execution_id = p.e AND m.step = p.s
                    ORDER BY m.seq
                    """,
                    [[e for e, _ in producers], [s for _, s in producers]],
                ).fetchall():
                    metrics[(execution_id, step)].append((name, value, idx))
        outputs: dict = {}
        for key, execution_id, step, name, digest, kind, type_, size, uri, value in rows:
            entry = outputs.setdefault(key, (f"{execution_id}:{step}", [], metrics.get((execution_id, step), ())))
            entry[1].append((name, ArtifactRef(digest=digest, kind=kind, type=type_, size=size, uri=uri, value=value)))
        for key, (ref, binding, logged) in outputs.items():
            self._recent.setdefault(key, CacheEntry(step_ref=ref, outputs=tuple(binding), metrics=tuple(logged)))
        return self._recent.get(cache_key)
