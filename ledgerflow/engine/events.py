"""What the runner reports while it works, and the Recorder protocol that receives it.

The runner knows nothing of DuckDB: it emits these frozen events to a `Recorder`. The
ledger (`ledgerflow.lineage`) is one; `MemoryRecorder` is another, for tests and for runs
with no home. Events are plain values so they can cross process boundaries unchanged.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol, Union, runtime_checkable

import attrs

from ledgerflow.engine.status import Status

# Execution and step states (engine/status.py). A state change is a new event, never an edit of an old one.
RUNNING = Status.RUNNING
SUCCEEDED = Status.SUCCEEDED
FAILED = Status.FAILED
CACHED = Status.CACHED
SKIPPED = Status.SKIPPED
TIMEOUT = Status.TIMEOUT
CANCELLED = Status.CANCELLED
INTERRUPTED = Status.INTERRUPTED  # the process recording it died before it finished

# How an input reached the step that consumed it (`Origin.how`).
FROM_STEP = "step"  # an output of a step of the same execution
FROM_PARAM = "param"  # a parameter of the execution
FROM_ELEMENT = "element"  # one element of a list occurrence, taken by a map element
FROM_CACHE = "cache"  # a cache hit's output: the occurrence it reuses
FROM_REFERENCE = "reference"  # a handle passed into the run that carries the occurrence it came from
FROM_REPLAY = "replay"  # a replay's parameter: the original execution's
FROM_DIGEST = "digest"  # a handle named by its digest: the first occurrence of those bytes, chosen by content


@attrs.frozen
class ArtifactRef:
    """One artifact as the ledger sees it: a handle in the store, or a plain value inline.

    `value` holds the canonical JSON of a plain value (small, so it lives in the ledger);
    handles leave it None and point at the store with `uri`.
    """

    digest: str
    kind: str  # "value" | "file" | "directory" | "dataset" | "model"
    type: str  # the declared type as written, e.g. "Dataset[Digits]" or "dict[str, float]"
    size: int
    uri: str | None = None
    value: str | None = None


Binding = tuple[tuple[str, ArtifactRef], ...]  # (parameter or output name, artifact), in order


@attrs.frozen
class Origin:
    """The occurrence an input came from: output `name` of `step` in `execution_id`, and how.

    An occurrence is one output of one step of one execution; `step` is "@params" for an
    execution's parameters. Lineage follows origins, never equal digests.
    """

    execution_id: str
    step: str
    name: str
    how: str  # FROM_STEP | FROM_PARAM | FROM_ELEMENT | FROM_CACHE | FROM_REFERENCE | FROM_REPLAY | FROM_DIGEST

    @property
    def ref(self) -> str:
        """`EXEC:step.slot`, the form handles carry in `origin` and the CLI accepts."""
        return f"{self.execution_id}:{self.step}.{self.name}"

    def nested(self, path: str) -> "Origin":
        """The origin of a handle found at `path` inside the value this origin names."""
        return attrs.evolve(self, name=self.name + path)


Sources = tuple[tuple[str, Origin], ...]  # (input name, where it came from), for inputs that came from somewhere


@attrs.frozen
class ExecutionStarted:
    execution_id: str
    workflow: str  # "module:function"
    workflow_fingerprint: str
    params: str  # canonical JSON object of the parameters as run (defaults filled in)
    inputs: Binding  # the parameters as artifacts, so lineage reaches them
    executor: str
    started_at: datetime
    host: str
    pid: int
    code_digest: str | None = None
    environment: str = "{}"  # JSON: python, platform, packages, gpus
    replay_of: str | None = None
    sources: Sources = ()  # parameters that came from another execution (by reference, or replayed)


@attrs.frozen
class GraphRecorded:
    """The graph as built, or a part of it decided at run time (a map's elements).

    `spec` is JSON: {"nodes": [[step, task, site, kind, parent, map_index], ...],
    "edges": [[source, slot, target, param, kind], ...]} (see `engine/blueprint.py`).
    """

    execution_id: str
    part: str  # "workflow" for the graph as built; "map:STEP" for a map's elements
    spec: str
    at: datetime


@attrs.frozen
class TaskIdentified:
    """What a task's results depended on in one execution, besides its inputs (`Task.identity`).

    `fingerprint` (the steps' `task_fingerprint`) is the digest of `parts`, so the ledger keeps
    each distinct identity once and `lineage why` can say what changed between two runs.
    """

    execution_id: str
    task: str
    fingerprint: str
    parts: str


@attrs.frozen
class StepStarted:
    execution_id: str
    step: str
    task: str  # "module:function"
    task_fingerprint: str
    attempt: int  # 1-based
    started_at: datetime
    cache_key: str | None = None
    resources: str = "{}"  # JSON of what the step asked for
    map_index: int | None = None
    forced: str | None = None  # why it runs although cached: "recompute" | "no-cache" | "unusable"


@attrs.frozen
class StepFinished:
    """The end of one attempt of a step (or of a step that never ran: cached, skipped)."""

    execution_id: str
    step: str
    task: str
    task_fingerprint: str
    attempt: int
    status: str  # SUCCEEDED | FAILED | CACHED | SKIPPED | TIMEOUT | CANCELLED
    started_at: datetime
    ended_at: datetime
    inputs: Binding = ()
    outputs: Binding = ()
    cache_key: str | None = None
    cached_from: str | None = None  # "EXECUTION_ID:step" that produced the reused outputs
    resources: str = "{}"
    node: str | None = None  # where it ran: hostname or Ray node id
    error: str | None = None  # one line: exception type and message
    traceback: str | None = None
    map_index: int | None = None
    condition: str | None = None  # for a skipped step: why (the condition's value, or the failed step)
    sources: Sources = ()  # where each consumed input came from
    blocked_by: str | None = None  # for a step skipped because an upstream step failed: that step
    forced: str | None = None  # why it ran although cached: "recompute" | "no-cache" | "unusable"


@attrs.frozen
class StepLogged:
    """What one attempt of a step wrote to one stream (stdout, stderr with its `logging`
    records), stored by content in the store (see `engine/capture.py`). Recorded before the
    attempt's StepFinished; a stream the step never wrote to is not recorded."""

    execution_id: str
    step: str
    attempt: int
    stream: str  # "stdout" | "stderr"
    digest: str
    size: int
    lines: int
    at: datetime


@attrs.frozen
class MetricLogged:
    execution_id: str
    step: str
    name: str
    value: float
    at: datetime
    index: int | None = None  # a training step or epoch, when the metric is a series
    reused_from: str | None = None  # "EXECUTION_ID:step" that logged it, when a cache hit reuses that step


@attrs.frozen
class ExecutionFinished:
    execution_id: str
    status: str  # SUCCEEDED | FAILED | CANCELLED
    ended_at: datetime
    outputs: Binding = ()
    error: str | None = None
    sources: Sources = ()  # where each output of the workflow came from


@attrs.frozen
class ModelRegistered:
    """A new version of a named model; the ledger numbers versions 1, 2, ... per name.

    With `alias`, the alias (e.g. "production") moves to the new version in the same write.
    """

    name: str
    model: ArtifactRef
    at: datetime
    who: str  # user@host
    execution_id: str | None = None  # None when registered outside a run
    step: str | None = None
    alias: str | None = None
    metrics: str = "{}"  # JSON object of name -> number
    why: str | None = None


@attrs.frozen
class AliasMoved:
    """An alias of a named model pointed at another version (promote, rollback)."""

    name: str
    alias: str
    version: int
    at: datetime
    who: str
    why: str | None = None
    action: str = "promote"  # "promote" | "rollback": a rollback pops the alias's history


@attrs.frozen
class NodeSeen:
    """The environment of a node (a Ray worker's machine) that ran steps of an execution."""

    execution_id: str
    node: str
    environment: str  # JSON, as ExecutionStarted.environment
    at: datetime


Event = Union[ExecutionStarted, GraphRecorded, TaskIdentified, StepStarted, StepFinished, StepLogged, MetricLogged,
              ExecutionFinished, ModelRegistered, AliasMoved, NodeSeen]


@runtime_checkable
class Recorder(Protocol):
    """Receives the runner's events. `record` must be cheap: batch, don't write per event."""

    def record(self, event: Event) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@attrs.frozen
class CacheEntry:
    """What an earlier step with the same cache key produced."""

    step_ref: str  # "EXECUTION_ID:step"
    outputs: Binding
    metrics: tuple = ()  # of (name, value, index): what the step logged, recorded again for each reuse


@runtime_checkable
class ActionCache(Protocol):
    """Cache key -> outputs of the step that first produced them (Bazel's action cache)."""

    def lookup(self, cache_key: str) -> CacheEntry | None: ...


@attrs.define
class MemoryRecorder:
    """Keeps events in a list: for tests, and for runs that keep no ledger.

    >>> rec = MemoryRecorder()
    >>> rec.events
    []
    """

    events: list = attrs.Factory(list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def lookup(self, cache_key: str) -> CacheEntry | None:
        with self._lock:
            for ev in self.events:
                if isinstance(ev, StepFinished) and ev.cache_key == cache_key and ev.status == SUCCEEDED:
                    metrics = tuple((m.name, m.value, m.index) for m in self.events if isinstance(m, MetricLogged)
                                    and (m.execution_id, m.step) == (ev.execution_id, ev.step))
                    return CacheEntry(step_ref=f"{ev.execution_id}:{ev.step}", outputs=ev.outputs, metrics=metrics)
        return None


@attrs.frozen
class Tee:
    """Sends every event to several recorders; cache lookups go to the first that can answer."""

    recorders: tuple

    def record(self, event: Event) -> None:
        for r in self.recorders:
            r.record(event)

    def flush(self) -> None:
        for r in self.recorders:
            r.flush()

    def close(self) -> None:
        for r in self.recorders:
            r.close()

    def lookup(self, cache_key: str) -> CacheEntry | None:
        for r in self.recorders:
            if isinstance(r, ActionCache):
                return r.lookup(cache_key)
        return None
