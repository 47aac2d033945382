"""What the ledger's queries return: frozen values, and their stable JSON form.

Every value has `to_json()` giving plain dicts/lists/strings (datetimes as ISO 8601 UTC
with a trailing "Z"), which is exactly what the CLI's `--json` prints.
"""

from __future__ import annotations

from datetime import datetime

import functools

import attrs

from ledgerflow.lineage.chain import ChainProblem


def jsonable(value):
    """Plain JSON-ready data from a ledger value (attrs classes, tuples, datetimes).

    >>> jsonable(MetricPoint(step="train", name="loss", value=0.5, index=None, at=None))
    {'step': 'train', 'name': 'loss', 'value': 0.5, 'index': None, 'at': None, 'reused_from': None}
    """
    if isinstance(value, _Json) and type(value).to_json is not _Json.to_json:
        return value.to_json()  # a value with a JSON form of its own (Lineage: columnar inside)
    if attrs.has(type(value)):
        return {f.name: jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + "Z"  # stored as naive UTC
    if isinstance(value, bytes):
        return value.hex()
    return value


class _Json:
    def to_json(self):
        return jsonable(self)


@attrs.frozen
class ExecutionSummary(_Json):
    """One line of `lineage list`."""

    id: str
    workflow: str
    status: str  # running | succeeded | failed | cancelled | interrupted
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    executor: str | None
    host: str | None
    pid: int | None
    replay_of: str | None
    error: str | None


@attrs.frozen
class ArtifactInfo(_Json):
    digest: str
    kind: str | None  # value | file | directory | dataset | model
    type: str | None
    size: int | None
    uri: str | None
    value: str | None  # canonical JSON of a plain value


@attrs.frozen
class StepLog(_Json):
    """What one attempt of a step wrote to one stream (`stdout`, or `stderr` with its `logging`
    records), as `Ledger.logs` returns it: the record, and the text read from the store (None
    when the store no longer holds it: collected, or another machine's store). `digest` is None
    for the text so far of an attempt still running (`spooled=True`)."""

    execution_id: str
    step: str
    attempt: int
    stream: str
    digest: str | None
    size: int
    lines: int
    text: str | None


@attrs.frozen
class Bound(_Json):
    """An artifact bound to a parameter or output name, and where it came from.

    `source` is the occurrence it came from ("EXECUTION_ID:step.slot"; step "@params" for
    a parameter) and `how` says how (step, param, element, cache, reference, replay, or
    "inferred" for an execution recorded before schema 4, whose sources were not kept).
    """

    name: str
    artifact: ArtifactInfo
    source: str | None = None
    how: str | None = None


@attrs.frozen
class MetricPoint(_Json):
    step: str
    name: str
    value: float
    index: int | None
    at: datetime | None
    reused_from: str | None = None  # "EXECUTION_ID:step" that logged it, for a cache hit


@attrs.frozen
class AttemptInfo(_Json):
    attempt: int
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    node: str | None
    error: str | None
    traceback: str | None


@attrs.frozen
class StepInfo(_Json):
    step: str
    task: str | None
    task_fingerprint: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    attempts: tuple  # of AttemptInfo, in order
    cache_key: str | None
    cache_hit: bool
    cached_from: str | None  # "EXECUTION_ID:step" whose outputs were reused
    inputs: tuple  # of Bound
    outputs: tuple  # of Bound
    metrics: tuple  # of MetricPoint
    resources: str | None
    node: str | None
    error: str | None
    map_index: int | None
    condition: str | None
    blocked_by: str | None = None  # a step skipped because this upstream step failed
    forced: str | None = None  # why it ran although cached: "recompute", "no-cache" or "unusable"


@attrs.frozen
class GraphNode(_Json):
    """A node of the graph as built: a task call, a map, or one element of a map."""

    step: str
    task: str
    site: str | None
    kind: str  # "task" | "map" | "element"
    parent: str | None = None  # an element's map step
    map_index: int | None = None

    @property
    def scope(self) -> str:
        """The sub-workflow the step belongs to ("" at the top level): `sub` for `sub.train`."""
        return self.step.split("[", 1)[0].rpartition(".")[0]


@attrs.frozen
class GraphEdge(_Json):
    """`source`'s output `slot` flows into `target`'s parameter `param` (see engine/blueprint.py).

    source "@params" is the workflow's parameter `slot`; target "@outputs" is what the
    workflow returns. kind: "data", "guard" (param "when=True"/"when=False": the source
    decides whether the target runs), "condition"/"then"/"otherwise", "element".
    """

    source: str
    slot: str
    target: str
    param: str
    kind: str = "data"


@attrs.frozen
class RecordedGraph(_Json):
    """The graph of one execution as it was built, with the parts decided at run time.

    `inferred` is True only for an execution recorded before the ledger kept graphs
    (schema < 4): its edges were reconstructed and may be wrong where values coincide.
    """

    nodes: tuple  # of GraphNode, in the order they were built
    edges: tuple  # of GraphEdge
    inferred: bool = False

    @classmethod
    def from_specs(cls, specs) -> "RecordedGraph":
        """The graph from its recorded parts (graph_specs.spec of each graph_log row, in seq
        order): JSON of {"nodes": [[step, task, site, kind, parent, map_index]], "edges":
        [[source, slot, target, param, kind]]}, or {"map": [step, count, params]} for a map's elements.

        >>> g = RecordedGraph.from_specs(['{"nodes":[["a","m:a","m.py:3","task",null,null]],'
        ...                               '"edges":[["@params","n","a","n","data"]]}'])
        >>> g.edges_into("a")[0].source
        '@params'
        """
        import json

        nodes, edges = [], []
        for spec in specs:
            part = json.loads(spec)
            nodes.extend(GraphNode(*row) for row in part.get("nodes", ()))
            edges.extend(GraphEdge(*row) for row in part.get("edges", ()))
            if "map" in part:  # a map's elements, recorded as the map and its count
                name, count, params = part["map"]
                parent = next((n for n in nodes if n.step == name), None)
                for i in range(count):
                    element = f"{name}[{i}]"
                    nodes.append(GraphNode(element, parent.task if parent else "", parent.site if parent else None,
                                           "element", name, i))
                    edges.extend(GraphEdge(name, p, element, p, "element") for p in params)
                    edges.append(GraphEdge(element, "return", name, f"[{i}]", "data"))
        return cls(tuple(nodes), tuple(edges))

    def node(self, step: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.step == step), None)

    def edges_into(self, step: str) -> tuple:
        return tuple(e for e in self.edges if e.target == step)

    def edges_from(self, step: str) -> tuple:
        return tuple(e for e in self.edges if e.source == step)


@attrs.frozen
class ExecutionDetail(_Json):
    """Everything recorded about one execution (`lineage show`)."""

    summary: ExecutionSummary
    workflow_fingerprint: str | None
    params: dict  # name -> value as recorded (parsed JSON)
    inputs: tuple  # of Bound: the parameters as artifacts
    outputs: tuple  # of Bound
    steps: tuple  # of StepInfo, in the order they started
    code_digest: str | None
    environment: dict
    nodes: dict = attrs.Factory(dict)  # node -> environment, for each remote node that ran steps
    graph: RecordedGraph | None = None  # None for an execution recorded before the ledger kept graphs

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def status(self) -> str:
        return self.summary.status


@attrs.frozen
class LineageNode(_Json):
    """A node reached by an upstream/downstream walk.

    kind "artifact": ref is the digest and `artifact` describes it. kind "step": ref is
    "EXECUTION_ID:step". kind "execution": ref is the execution id, standing for its
    parameters (upstream ends there) or its outputs (downstream ends there).
    """

    kind: str
    ref: str
    depth: int
    label: str  # task, workflow, or artifact type, for people
    status: str | None = None
    artifact: ArtifactInfo | None = None


@attrs.frozen
class LineageEdge(_Json):
    """`source` flows into `target` (in data-flow direction), as parameter/output `name`."""

    source: str
    target: str
    name: str
    how: str | None = None  # how the value got there (Bound.how); "inferred" for pre-schema-4 executions


# A walk's result is columnar: one row per node, one per edge. NODE_SCHEMA and EDGE_SCHEMA
# are built on first use (PEP 562 `__getattr__` below), so importing this module does not
# import pyarrow.
@functools.cache
def _schemas() -> tuple:
    import pyarrow as pa

    node = pa.schema([
        ("kind", pa.string()), ("ref", pa.string()), ("depth", pa.int64()), ("label", pa.string()),
        ("status", pa.string()), ("known", pa.bool_()),  # known: an artifact the ledger has a row for
        ("a_kind", pa.string()), ("a_type", pa.string()), ("a_size", pa.int64()), ("a_uri", pa.string()),
        ("a_value", pa.string()),
    ])
    edge = pa.schema([("source", pa.string()), ("target", pa.string()), ("name", pa.string()),
                      ("how", pa.string())])
    return node, edge


def __getattr__(name: str):
    if name == "NODE_SCHEMA":
        return _schemas()[0]
    if name == "EDGE_SCHEMA":
        return _schemas()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@attrs.frozen(slots=False)
class Lineage(_Json):
    """The result of a walk. `node_table` and `edge_table` are Arrow tables (NODE_SCHEMA,
    EDGE_SCHEMA), for analysis at scale; `nodes` and `edges` give the same as values."""

    root: str
    direction: str  # "upstream" | "downstream"
    depth_limit: int | None
    node_table: pa.Table  # one row per node, in no particular order
    edge_table: pa.Table  # one row per edge, in no particular order
    # With `same_content`: steps elsewhere that produced the same bytes as a handle reached,
    # with no recorded link to this lineage (LineageNode of kind "step"; listed, not walked).
    same_content: tuple = ()

    @functools.cached_property
    def nodes(self) -> tuple:
        """LineageNode values, by depth then kind then ref."""
        return self.nodes_of(self.node_table.sort_by([("depth", "ascending"), ("kind", "ascending"),
                                                      ("ref", "ascending")]))

    @functools.cached_property
    def edges(self) -> tuple:
        """LineageEdge values, by source, target, name."""
        t = self.edge_table.sort_by([("source", "ascending"), ("target", "ascending"), ("name", "ascending")])
        return tuple(LineageEdge(*row) for row in zip(*(t.column(c).to_pylist() for c in _schemas()[1].names)))

    @staticmethod
    def nodes_of(table: pa.Table) -> tuple:
        out = []
        for kind, ref, depth, label, status, known, *art in zip(*(table.column(c).to_pylist()
                                                                  for c in _schemas()[0].names)):
            artifact = ArtifactInfo(ref, *art) if known else None
            out.append(LineageNode(kind, ref, depth, label, status, artifact))
        return tuple(out)

    def of_kind(self, kind: str) -> tuple:
        return tuple(n for n in self.nodes if n.kind == kind)

    def to_json(self):
        return {"root": self.root, "direction": self.direction, "depth_limit": self.depth_limit,
                "nodes": jsonable(self.nodes), "edges": jsonable(self.edges),
                "same_content": jsonable(self.same_content)}


@attrs.frozen
class ObjectProblem(_Json):
    digest: str
    detail: str

    def __str__(self) -> str:
        return f"store object {self.digest}: {self.detail}"


@attrs.frozen
class SchemaProblem(_Json):
    """A view (or macro) of the ledger file that is not what this code defines.

    `what` is "changed" (a view's definition differs), "removed" (a view is missing) or
    "unexpected" (a view or macro the engine never creates).
    """

    kind: str  # "view" or "macro"
    name: str
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.what}: {self.detail}"


@attrs.frozen
class VerifyReport(_Json):
    """What `verify` found. `ok` is True when the chain, the file's views and every store
    object check out.

    `head_seq`/`head_hash` identify the whole chain: keep them somewhere else and compare
    later to catch the removal of the newest rows, which a chain alone can't show.
    `schema_problems` name views redefined (or macros added) behind the engine's back;
    `store_note` also says when objects recorded under the home's old path (a moved home)
    were checked in its current store.
    """

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    problems: tuple  # of ChainProblem, in seq order
    objects_checked: int
    object_problems: tuple  # of ObjectProblem
    store: str | None  # the store checked, or None with `store_note` saying why not
    store_note: str | None = None
    schema_problems: tuple = ()  # of SchemaProblem

    @property
    def first_problem(self) -> ChainProblem | SchemaProblem | ObjectProblem | None:
        if self.problems:
            return self.problems[0]
        if self.schema_problems:
            return self.schema_problems[0]
        return self.object_problems[0] if self.object_problems else None


# -- model registry -----------------------------------------------------------------


@attrs.frozen
class ModelVersion(_Json):
    """One registered version of a named model (`Ledger.model`, `lineage models`).

    Versions are numbered 1, 2, 3, ... per name, in the order they were registered; the
    same model (digest) registered again under a name is the version it already has.
    `aliases` are the aliases pointing at this version now.
    """

    name: str
    version: int
    digest: str
    type: str | None  # the declared type, e.g. "Model['sklearn']"
    flavor: str | None
    size: int | None
    uri: str | None  # the store holding it
    execution_id: str | None  # the execution whose step registered it; None outside a run
    step: str | None
    registered_at: datetime
    who: str | None  # user@host
    why: str | None
    metrics: dict  # name -> number, as registered
    aliases: tuple = ()  # of str, sorted


@attrs.frozen
class AliasMove(_Json):
    """An alias of a model pointing at a version: by `register(alias=...)`, a promote or a rollback."""

    name: str
    alias: str
    version: int
    previous_version: int | None  # where the alias pointed before (None: it was new)
    action: str  # "register" | "promote" | "rollback"
    at: datetime
    who: str | None
    why: str | None


@attrs.frozen
class RegisteredModel(_Json):
    """A name in the registry: its versions (oldest first), current aliases and their history."""

    name: str
    versions: tuple  # of ModelVersion, by version
    aliases: dict  # alias -> version, now
    history: tuple  # of AliasMove, oldest first

    @property
    def latest(self) -> ModelVersion:
        return self.versions[-1]


# -- retention ------------------------------------------------------------------------


@attrs.frozen
class CollectedObject(_Json):
    """A store object `lineage gc` removed (or, in a dry run, would remove).

    `reason`: "unkept" (only executions outside the keep policy referenced it) or
    "orphan" (nothing in the ledger referenced it: left by a write that never got recorded).
    """

    digest: str
    size: int | None
    reason: str
    removed_at: datetime | None = None  # None in a dry run
    who: str | None = None
    policy: dict | None = None


@attrs.frozen
class GcReport(_Json):
    """What one `gc` did: the policy, the executions it kept, and each object removed."""

    policy: dict  # keep_last, older_than_days, keep_tag, orphan_min_age_s
    dry_run: bool
    store: str
    kept_executions: tuple  # of execution ids, newest first
    unkept_executions: tuple  # of execution ids whose objects were not kept, newest first
    objects_seen: int  # objects in the store before gc
    objects_kept: int
    removed: tuple  # of CollectedObject, in digest order
    bytes_removed: int
    young_orphans: int  # orphans left alone because they are younger than orphan_min_age_s


@attrs.frozen
class KeyChange(_Json):
    """One part of a step's cache key that differs from the earlier run it is compared with.

    `part`: "code" (a function's or class's normalised source; `diff` is a unified diff of it
    between the two runs' code snapshots, or `note` says why there is none), "read" (a global,
    closure variable or default value the code reads, as canonical JSON), "input" (an input's
    digest; `before_value`/`after_value` hold plain values), "cache_version", "signature",
    "engine". `before`/`after` is None where the part was absent on that side.
    """

    part: str
    name: str
    before: str | None
    after: str | None
    before_value: str | None = None
    after_value: str | None = None
    diff: str | None = None
    note: str | None = None

    def text(self) -> str:
        """One line, as a person reads it: `FACTOR: 2 -> 5`, `input data: 0.99 -> 0.98`."""
        def side(digest, value):
            if digest is None:
                return "(none)"
            return value if value is not None and len(value) <= 40 else digest
        if self.part == "code":
            what = "changed" if self.before and self.after else "added" if self.after else "no longer used"
            return f"code of {self.name} {what}"
        if self.part == "input":
            return f"input {self.name}: {side(self.before, self.before_value)} -> {side(self.after, self.after_value)}"
        label = self.name if self.part == "read" else self.part
        return f"{label}: {'(not read)' if self.before is None else self.before} -> " \
               f"{'(not read)' if self.after is None else self.after}"


@attrs.frozen
class StepWhy(_Json):
    """Why a step ran or was reused (`Ledger.why`).

    `verdict`: "cache-hit" (reused `cached_from`, which ran at `cached_from_at`), "changed"
    (a part of the key differs from `previous`, the most recent earlier run of the same task:
    `changes`), "first-run" (no earlier run of the task in this ledger), "cache-off" (the task
    is not cached: no key), "same-key" (the key equals `previous`'s, yet the step ran: the
    cache was bypassed by --no-cache / --recompute, or the earlier result could not be used),
    "skipped", or "unknown" (the ledger holds no key parts for one side). `reason` is one line.
    """

    ref: str  # EXECUTION_ID:step
    task: str | None
    status: str
    verdict: str
    reason: str
    cache_key: str | None
    cached_from: str | None = None
    cached_from_at: datetime | None = None
    previous: str | None = None  # EXECUTION_ID:step compared with
    previous_at: datetime | None = None
    changes: tuple = ()  # of KeyChange
