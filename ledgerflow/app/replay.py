"""Replay: run a past execution again from its recorded code and inputs, and compare bit for bit."""

from __future__ import annotations

import os
from typing import Any

import attrs

from ledgerflow.engine import environment, snapshot
from ledgerflow.engine.loading import LoadError
from ledgerflow.errors import ExecutionFailed, ParameterError
from ledgerflow.home import Home
from ledgerflow.lineage.ledger import Ledger
from ledgerflow.app.running import run
from ledgerflow.store import Store
from ledgerflow.types.codec import decode
from ledgerflow.types.kinds import VALUE_KIND
from ledgerflow.engine.status import Status

IDENTICAL, DIVERGED, FAILED, NOT_REPLAYED = "identical", "diverged", "failed", "could not replay"


@attrs.frozen
class StepDifference:
    """One output of one step that differs between the two executions (None: absent on that side)."""

    step: str
    output: str
    original: str | None
    replayed: str | None


@attrs.frozen
class Replay:
    """The verdict of a replay.

    `verdict` is "identical" (every step's outputs have the same digests), "diverged" (see
    `first_divergence` and `differences`), "failed" (the replay raised; see `reason`) or
    "could not replay" (an input or the code is missing, or the code does not import here).
    """

    original: str
    id: str | None  # the new execution, linked to the original by replay_of
    verdict: str
    differences: tuple[StepDifference, ...] = ()
    reason: str | None = None
    environment_changes: tuple[str, ...] = ()
    steps: int = 0
    artifacts: int = 0

    @property
    def identical(self) -> bool:
        return self.verdict == IDENTICAL

    @property
    def first_divergence(self) -> StepDifference | None:
        return self.differences[0] if self.differences else None

    def summary(self) -> str:
        head = f"replayed {self.original} as {self.id}" if self.id else f"could not replay {self.original}"
        if self.verdict == IDENTICAL:
            return f"{head}: identical ({self.steps} steps, {self.artifacts} artifacts)"
        if self.verdict == DIVERGED:
            d = self.first_divergence
            return (f"{head}: diverged at step {d.step!r} output {d.output!r}: {d.original} -> {d.replayed} "
                    f"({len(self.differences)} outputs differ)")
        return f"{head}: {self.verdict}: {self.reason}"


def compare(original, replayed) -> tuple[tuple[StepDifference, ...], int, int]:
    """Differences between two ExecutionDetails, in the original's step order; and the step and artifact counts."""
    theirs = {s.step: s for s in replayed.steps}
    differences, artifacts = [], 0
    for step in original.steps:
        mine = {b.name: b.artifact.digest for b in step.outputs}
        other = theirs.get(step.step)
        other_outputs = {b.name: b.artifact.digest for b in other.outputs} if other else {}
        artifacts += len(mine)
        for name in sorted(set(mine) | set(other_outputs)):
            if mine.get(name) != other_outputs.get(name):
                differences.append(StepDifference(step.step, name, mine.get(name), other_outputs.get(name)))
        if other is None and not mine and step.status != Status.SKIPPED:
            differences.append(StepDifference(step.step, "(step)", step.status, None))
    return tuple(differences), len(original.steps), artifacts


def replay(execution_id: str, *, executor: Any = "local", home: str | os.PathLike | None = None,
           ledger: str | None = None) -> Replay:
    """Run a recorded execution again, without the cache, as a new execution linked to it.

    The workflow is loaded from the execution's code snapshot, not today's files.

    >>> ex = run(pipeline, params={"n": 10})
    >>> r = replay(ex.id)          # or a unique prefix of it
    >>> r.identical, r.differences
    (True, ())
    """
    where = Home.resolve(home)
    ledger = Ledger(where, ledger=ledger)
    original = ledger.execution(execution_id)
    oid = original.summary.id
    changes = tuple(environment.differences(original.environment or {}, environment.capture()))
    store = Store.open(where.store_url)

    def refuse(reason: str) -> Replay:
        return Replay(oid, None, NOT_REPLAYED, reason=reason, environment_changes=changes)

    def missing(what: str, digest: str) -> str:
        # gc records every removal, so the ledger can say for sure whether gc took it.
        gone = ledger.collected(digest)
        if gone is not None:
            return (f"{what} ({digest}) was collected by `lineage gc` on {gone.removed_at:%Y-%m-%d %H:%M:%S} UTC"
                    f"{f' by {gone.who}' if gone.who else ''}: it is no longer in the store")
        return f"{what} ({digest}) is missing from the store (no `lineage gc` recorded removing it)"

    if not original.code_digest:
        return refuse("the execution recorded no code snapshot")
    if not store.has(original.code_digest):
        return refuse(missing("its code snapshot", original.code_digest))
    for bound in original.inputs:
        art = bound.artifact
        if art.kind not in (None, VALUE_KIND) and not store.has(art.digest):
            return refuse(missing(f"input {bound.name!r}", art.digest))
    new_id, reason = None, None
    try:
        with snapshot.loaded(store, original.code_digest) as wf:
            types = {p.name: p.type for p in wf.params}
            params = {b.name: decode(b.artifact.value, types[b.name]) for b in original.inputs if b.name in types}
            try:
                new_id = run(wf, params, executor=executor, home=where.path, cache=False, replay_of=oid,
                             ledger=None if ledger.server is None else ledger.server.url).id
            except ExecutionFailed as e:
                new_id = e.execution.id if e.execution is not None else None
                reason = str(e)
    except LoadError as e:
        return refuse(str(e))
    except (ParameterError, KeyError, TypeError, ValueError) as e:
        return refuse(f"the recorded parameters do not fit the recorded workflow: {e}")
    replayed = ledger.execution(new_id)
    differences, steps, artifacts = compare(original, replayed)
    verdict = FAILED if reason else DIVERGED if differences else IDENTICAL
    return Replay(oid, new_id, verdict, differences, reason, changes, steps, artifacts)
