"""Store retention: tags that keep executions, and `gc`, which removes what nothing kept needs.

The store only grows: every run adds its outputs and a code snapshot. `gc` removes the
objects that no *kept* execution references, and records each removal in the ledger
(`gc_log`), so a later replay can say "collected by lineage gc on DATE" instead of
guessing. The ledger itself is never trimmed: lineage of a collected object stays
queryable; only its bytes are gone.

Kept, under a policy `keep_last=N, older_than_days=D`:

- the N newest executions, and every execution started less than D days ago (so an
  execution is collected only when it is both beyond the newest N and older than D days);
- executions tagged `keep` (`lineage tag ID keep`), and executions still running;
- every registered model version (`ledgerflow.register`);
- everything those reference: each artifact their steps consumed or produced, handles
  inside plain values (a `list[Model]`), the code snapshot, and for a Directory or Model
  (a manifest) every file it lists.

Objects no execution references at all (orphans: a run that crashed after writing an
object but before recording it) are removed too, unless younger than an hour: a run may
be writing them right now and record them in a moment.

A removal is recorded (journaled) before its bytes go, never after: a gc killed at any point
leaves the home valid (`verify` passes: a recorded removal whose object is still there is
fine), and the next gc removes what is left without recording it twice.

    >>> from ledgerflow import Ledger, run
    >>> first, second = run(pipeline, params={"n": 10}), run(pipeline, params={"n": 20})
    >>> report = Ledger().gc(keep_last=10, older_than_days=30, dry_run=True)   # both kept
    >>> len(report.kept_executions), report.removed
    (2, ())
    >>> report = Ledger().gc(keep_last=1, older_than_days=0, dry_run=True)     # only the newest
    >>> report.unkept_executions == (first.id,), len(report.removed), report.bytes_removed
    (True, 1, 20)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import attrs

from ledgerflow.errors import DigestError, IntegrityError, ManifestError, ObjectNotFound, RetentionError, UnknownEvent
from ledgerflow import liveness
from ledgerflow.lineage.registry import check_name
from ledgerflow.lineage.schema import GC_LOG, TAG_LOG, key64, missing_tables
from ledgerflow.lineage.values import CollectedObject, GcReport
from ledgerflow.store import Manifest
from ledgerflow.types.kinds import Storage, VALUE_KIND, storage_of
from ledgerflow.engine.status import Status


KEEP = "keep"
ADD, REMOVE = "add", "remove"
UNKEPT, ORPHAN = "unkept", "orphan"
ORPHAN_MIN_AGE_S = 3600.0


@attrs.frozen
class ExecutionTagged:
    """A tag added to (or removed from) an execution: one `tag_log` row."""

    execution_id: str
    tag: str
    action: str  # ADD | REMOVE
    at: datetime
    who: str
    why: str | None = None


@attrs.frozen
class ObjectCollected:
    """A store object `gc` removed: one `gc_log` row."""

    digest: str
    size: int | None
    reason: str  # UNKEPT | ORPHAN
    at: datetime
    who: str
    policy: str  # canonical JSON of the Policy


def add_rows(batch, ev, at) -> None:
    """Append the row of an ExecutionTagged or ObjectCollected event to the flush's `batch`."""
    if isinstance(ev, ExecutionTagged):
        batch.add(TAG_LOG, execution_id=ev.execution_id, tag=ev.tag, action=ev.action, tagged_at=at, who=ev.who,
                  why=ev.why)
    elif isinstance(ev, ObjectCollected):
        batch.add(GC_LOG, digest=ev.digest, dkey=batch.key(ev.digest), size=ev.size, reason=ev.reason,
                  removed_at=at, who=ev.who, policy=ev.policy)
    else:
        raise UnknownEvent(f"not a retention event: {type(ev).__name__}")


# -- tags ---------------------------------------------------------------------------------


def current_tags(con, execution_id: str) -> tuple:
    """The tags `execution_id` carries now, sorted."""
    if "tag_log" in missing_tables(con):
        return ()
    rows = con.execute("SELECT tag FROM tags WHERE execution_id = ? ORDER BY tag", [execution_id]).fetchall()
    return tuple(r[0] for r in rows)


def tag_event(execution_id: str, tag: str, current: tuple, *, remove: bool, who: str,
              why: str | None) -> ExecutionTagged | None:
    """The event that adds or removes `tag`, None when there is nothing to change.

    Adding a tag already there changes nothing; removing one that isn't there is an error
    (likely a typo, which a silent no-op would hide).
    """
    check_name("tag", tag)
    if remove and tag not in current:
        have = f" (its tags: {', '.join(current)})" if current else " (it has no tags)"
        raise RetentionError(f"execution {execution_id} is not tagged {tag!r}{have}")
    if not remove and tag in current:
        return None
    return ExecutionTagged(execution_id, tag, REMOVE if remove else ADD, datetime.now(timezone.utc), who, why)


# -- gc ----------------------------------------------------------------------------------


_REMOVAL_BATCH = 256  # removals journaled at once, before their objects are removed
MAX_AGE_DAYS = 365_000  # a thousand years: any age a ledger can hold, and within what datetime can count


@attrs.frozen
class Policy:
    """What gc keeps; see the module docstring. Recorded with every removal, as JSON."""

    keep_last: int | None = None
    older_than_days: float | None = None
    keep_tag: str = KEEP
    orphan_min_age_s: float = ORPHAN_MIN_AGE_S

    def __attrs_post_init__(self):
        if self.keep_last is None and self.older_than_days is None:
            raise RetentionError("gc needs a policy: --keep-last N and/or --older-than DAYS "
                                 "(an execution is collected only when it is outside both)")
        if self.keep_last is not None and (isinstance(self.keep_last, bool) or self.keep_last < 0):
            raise RetentionError(f"keep_last must be a number >= 0, not {self.keep_last!r}")
        if self.older_than_days is not None and not (
                isinstance(self.older_than_days, (int, float)) and not isinstance(self.older_than_days, bool)
                and 0 <= self.older_than_days <= MAX_AGE_DAYS):  # (NaN fails both comparisons)
            raise RetentionError(f"older_than_days must be a number of days from 0 to {MAX_AGE_DAYS:,}, "
                                 f"not {self.older_than_days!r}")

    def to_json(self) -> dict:
        return attrs.asdict(self)

    def text(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


@attrs.frozen
class _References:
    """Per execution, the store objects it references directly; manifests listed apart."""

    by_execution: dict  # execution id -> set of digests
    manifests: set  # digests known to be directory manifests (directories, models, code snapshots)


def _references(con) -> _References:
    from ledgerflow.types.codec import handles_inside

    by_execution: dict = {}
    manifests: set = set()
    rows = con.execute(
        "SELECT DISTINCT e.execution_id, a.digest, a.kind, CASE WHEN a.kind = 'value' THEN a.value END "
        "FROM edges e JOIN artifacts a ON a.dkey = e.dkey AND a.digest = e.digest "
        "WHERE a.kind <> 'value' OR a.value LIKE '%\"$$handle\"%'"
    ).fetchall()
    for eid, digest, kind, value in rows:
        refs = by_execution.setdefault(eid, set())
        if kind != VALUE_KIND:  # plain values live in the ledger, not the store
            refs.add(digest)
            if storage_of(kind) is Storage.MANIFEST:
                manifests.add(digest)
        for _, inner_kind, inner, _ in handles_inside(value):
            refs.add(inner)
            if storage_of(inner_kind) is Storage.MANIFEST:
                manifests.add(inner)
    for eid, code in con.execute(
        "SELECT execution_id, code_digest FROM executions WHERE code_digest IS NOT NULL"
    ).fetchall():
        by_execution.setdefault(eid, set()).add(code)
        manifests.add(code)
    if "step_streams" not in missing_tables(con):  # what steps wrote (their logs) goes with their execution
        for eid, digest in con.execute("SELECT DISTINCT execution_id, digest FROM step_streams").fetchall():
            by_execution.setdefault(eid, set()).add(digest)
    return _References(by_execution, manifests)


def _entries(store, digest: str, *, must: bool) -> list:
    """Digests of the files a manifest lists; [] if it is gone. With `must`, refuse an unreadable one.

    A manifest kept by the policy must be read, or gc would take its files for orphans.
    """
    try:
        return [e.digest for e in Manifest.from_bytes(store.get_bytes(digest, verify=False)).entries]
    except ObjectNotFound:
        return []
    except (IntegrityError, ManifestError, DigestError) as e:
        if must:
            raise RetentionError(f"cannot read the manifest {digest}, which is kept: {e}; "
                                 "nothing was removed (run `lineage verify`)") from e
        return []


def _closure(store, digests: set, manifests: set, *, must: bool) -> set:
    out = set(digests)
    for d in sorted(digests & manifests):
        out.update(_entries(store, d, must=must))
    return out


def collect(ledger, policy: Policy, *, dry_run: bool = False, who: str | None = None,
            now: datetime | None = None) -> GcReport:
    """Remove (or, with `dry_run`, list) the store objects `policy` does not keep; record each removal."""
    from ledgerflow.engine.runner import who as whoami
    from ledgerflow.store import Store

    store = Store.open(ledger.home.store_url)
    now = now or datetime.now(timezone.utc)
    now_naive = now.astimezone(timezone.utc).replace(tzinfo=None)
    who = who or whoami()
    kept_ids: list = []
    unkept_ids: list = []
    refs = _References({}, set())
    registered: set = set()
    collected_before: set = set()  # removals recorded already (by a gc that may have been killed)
    if ledger.has_file():  # (moves what is journaled first)
        with ledger.reader(fresh=False) as con:
            absent = missing_tables(con)
            execs = con.execute(
                "SELECT execution_id, started_at, status, host, pid, process_start FROM executions "
                "ORDER BY started_at DESC, start_seq DESC"
            ).fetchall()
            tagged = set()
            if "tag_log" not in absent:
                tagged = {r[0] for r in con.execute("SELECT execution_id FROM tags WHERE tag = ?",
                                                    [policy.keep_tag]).fetchall()}
            if "model_versions" not in absent:
                registered = {r[0] for r in con.execute("SELECT DISTINCT digest FROM model_versions").fetchall()}
            if "gc_log" not in absent:
                collected_before = {r[0] for r in con.execute("SELECT DISTINCT digest FROM gc_log").fetchall()}
            refs = _references(con)
        cutoff = None if policy.older_than_days is None else now_naive - timedelta(days=policy.older_than_days)
        for i, (eid, started, status, host, pid, start) in enumerate(execs):
            keep = (
                (policy.keep_last is not None and i < policy.keep_last)
                or (cutoff is not None and started is not None and started >= cutoff)
                or eid in tagged
                # A running execution may be about to read what it referenced: never pull it away.
                or (status == Status.RUNNING and liveness.is_alive(host, pid, start) is not False)
            )
            (kept_ids if keep else unkept_ids).append(eid)
    kept = set(registered)
    for eid in kept_ids:
        kept |= refs.by_execution.get(eid, set())
    referenced = set(registered)
    for ds in refs.by_execution.values():
        referenced |= ds
    manifests = refs.manifests | registered  # a registered model is a manifest
    kept = _closure(store, kept, manifests, must=True)
    referenced = _closure(store, referenced - kept, manifests, must=False) | kept

    seen = kept_count = young = 0
    doomed: list = []
    epoch_now = now.timestamp()
    for digest in store.iter_digests():
        seen += 1
        if digest in kept:
            kept_count += 1
            continue
        reason = UNKEPT if digest in referenced else ORPHAN
        if reason == ORPHAN:
            modified = store.modified_at(digest)
            # Unknown age counts as young: an object a live run is writing must never go.
            if modified is None or epoch_now - modified < policy.orphan_min_age_s:
                young += 1
                continue
        doomed.append((digest, reason))

    removed: list = []
    policy_text = policy.text()
    # Each removal is journaled (durable against a kill) before its bytes go: a gc killed in
    # between leaves a recorded removal whose object is still there, which the next gc removes
    # without recording it twice; never an object gone with no record of why.
    for start in range(0, len(doomed), _REMOVAL_BATCH):
        batch = []
        for digest, reason in doomed[start:start + _REMOVAL_BATCH]:
            try:
                size = store.size(digest)
            except ObjectNotFound:
                continue  # another gc got there first
            if dry_run:
                removed.append(CollectedObject(digest, size, reason))
                continue
            at = datetime.now(timezone.utc)
            batch.append(CollectedObject(digest, size, reason, at.replace(tzinfo=None), who, policy.to_json()))
            if digest not in collected_before:
                ledger.record(ObjectCollected(digest, size, reason, at, who, policy_text))
        if not batch:
            continue
        ledger.flush()
        for item in batch:
            if store.remove(item.digest):
                removed.append(item)
    return GcReport(
        policy=policy.to_json(),
        dry_run=dry_run,
        store=store.url,
        kept_executions=tuple(kept_ids),
        unkept_executions=tuple(unkept_ids),
        objects_seen=seen,
        objects_kept=kept_count,
        removed=tuple(removed),
        bytes_removed=sum(r.size or 0 for r in removed),
        young_orphans=young,
    )


def collected(con, digest: str) -> CollectedObject | None:
    """The newest gc removal recorded for `digest`, or None."""
    if "gc_log" in missing_tables(con):
        return None
    rows = con.execute(
        "SELECT digest, size, reason, removed_at, who, policy FROM gc_log WHERE dkey = ? AND digest = ? "
        "ORDER BY seq DESC LIMIT 1",
        [key64(digest), digest],
    ).fetchall()
    if not rows:
        return None
    d, size, reason, at, who, policy = rows[0]
    try:
        policy_doc = json.loads(policy) if policy else None
    except ValueError:
        policy_doc = {"_unparsed": policy}
    return CollectedObject(d, size, reason, at, who, policy_doc)
