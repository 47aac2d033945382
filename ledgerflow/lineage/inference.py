"""The graph of an execution recorded before the ledger kept graphs (schema < 4), guessed.

    inferred_graph(detail) -> RecordedGraph(..., inferred=True)

Only for an `ExecutionDetail` whose `graph` is None. Such a ledger holds each step's
inputs and outputs by digest but not which step fed which, so the edges here are a
reconstruction, and wrong wherever two values coincide (the same float, `True`, equal
bytes): every reader that shows them says they are inferred. An execution recorded since
schema 4 has its graph as built (`detail.graph`) and never comes here.

The reconstruction, from the ledger's facts alone:

- step A feeds step B's input when B consumed an artifact (by digest) that A produced,
  A had finished before B started (or, without times, came first in the ledger), the
  most recent such A; map elements are never producers (their outputs feed only their
  map step); an input whose digest is one of the parameters' is fed by the parameters;
- map elements `train[0]`, `train[1]`, ... feed their map step `train` (its inputs named
  "[0]", "[1]", ...); an element's input that no step produced is traced to the list it
  was cut from, when a step's (or parameter's) recorded list value has it at the
  element's index for every element at once: an edge into the map, and an "element"
  edge from the map to each element, as the runner records them today;
- a step skipped by `when(...)` records only the condition's value (and, in later
  versions, the deciding step's name in its message): a "guard" edge from that step,
  or else from the latest boolean-producing step before it that produced that value;
- the workflow's outputs are fed by the latest step (or parameter) that produced them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from ledgerflow.lineage.values import GraphEdge, GraphNode, RecordedGraph
from ledgerflow.engine.status import Status

PARAMS = "@params"
OUTPUTS = "@outputs"

_MAP_ELEMENT = re.compile(r"^(?P<base>.+)\[(?P<i>\d+)\]$")
_MAP_INPUT = re.compile(r"^\[(\d+)\]$")
# The runner writes "condition (output of step 'gate') was False; ..."; older records lack the step.
_CONDITION = re.compile(r"condition(?: \(output of step '(?P<step>.+?)'\))? was (?P<value>True|False)")


def _ts(value) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _json_value(artifact):
    if artifact.value is None:
        return None, False
    try:
        return json.loads(artifact.value), True
    except (TypeError, ValueError):
        return None, False


class _Facts:
    """What the reconstruction asks of one execution's steps: order in time and who made what."""

    def __init__(self, detail):
        self.detail = detail
        self.steps = list(detail.steps)
        names = {s.step: i for i, s in enumerate(self.steps)}
        self.parent_of: dict = {}  # element index -> its map step's index
        for i, s in enumerate(self.steps):
            m = _MAP_ELEMENT.match(s.step)
            if m and m.group("base") in names and (s.map_index is None or s.map_index == int(m.group("i"))):
                self.parent_of[i] = names[m.group("base")]
        self.children: dict = {}  # map index -> {element's map index: element index}
        for e, p in self.parent_of.items():
            self.children.setdefault(p, {})[self.index_in_map(e)] = e
        self.producers: dict = {}  # digest -> [step index] (map elements excluded)
        for i, s in enumerate(self.steps):
            if i not in self.parent_of:
                for b in s.outputs:
                    self.producers.setdefault(b.artifact.digest, []).append(i)
        self.param_names: dict = {}  # digest -> [parameter names]
        for b in detail.inputs:
            self.param_names.setdefault(b.artifact.digest, []).append(b.name)

    def index_in_map(self, e: int) -> int:
        s = self.steps[e]
        return s.map_index if s.map_index is not None else int(_MAP_ELEMENT.match(s.step).group("i"))

    def before(self, p: int, c: int) -> bool:
        """Could step p's outputs have been available when step c started?"""
        pe, cs = _ts(self.steps[p].ended_at), _ts(self.steps[c].started_at)
        if pe is not None and cs is not None:
            return pe <= cs and p != c
        return p < c

    def latest(self, candidates):
        return max(candidates, key=lambda p: (_ts(self.steps[p].ended_at) or float("-inf"), p))

    def slot(self, p: int, digest: str) -> str:
        """The name of step p's output with this digest (its first, if several)."""
        return next((b.name for b in self.steps[p].outputs if b.artifact.digest == digest), "return")


def inferred_graph(detail) -> RecordedGraph:
    """The graph of a pre-schema-4 execution, reconstructed as the module docstring says."""
    f = _Facts(detail)
    steps = f.steps
    nodes = []
    for i, s in enumerate(steps):
        if i in f.parent_of:
            nodes.append(GraphNode(s.step, s.task or "", None, "element", steps[f.parent_of[i]].step,
                                   f.index_in_map(i)))
        else:
            nodes.append(GraphNode(s.step, s.task or "", None, "map" if i in f.children else "task"))

    edges: dict = {}  # GraphEdge -> None, in the order found

    def link(*args) -> None:
        edges.setdefault(GraphEdge(*args), None)

    list_sources: dict = {}  # (map index, input name) -> (source step or PARAMS, slot) or None
    for c, s in enumerate(steps):
        for b in s.inputs:
            digest = b.artifact.digest
            m = _MAP_INPUT.fullmatch(b.name)
            if m and c in f.children and int(m.group(1)) in f.children[c]:
                link(steps[f.children[c][int(m.group(1))]].step, "return", s.step, b.name, "data")
                continue
            source = _source_of(f, c, b)
            if c in f.parent_of:  # an element: its inputs come through its map, as recorded today
                parent = f.parent_of[c]
                if source is None and s.map_index is not None:
                    key = (parent, b.name)
                    if key not in list_sources:
                        list_sources[key] = _list_source(f, parent, b.name)
                    source = list_sources[key]
                if source is not None:
                    link(source[0], source[1], steps[parent].step, b.name, "data")
                    link(steps[parent].step, b.name, s.step, b.name, "element")
            elif source is not None:
                link(source[0], source[1], s.step, b.name, "guard" if b.name.startswith("when=") else "data")
        if s.status == Status.SKIPPED and not s.inputs and s.condition:
            guard = _guard_source(f, c, s.condition)
            if guard is not None:
                value = _CONDITION.search(s.condition).group("value")
                wanted = "False" if value == "True" else "True"
                link(steps[guard].step, _bool_slot(steps[guard]), s.step, f"when={wanted}", "guard")
    for b in detail.outputs:
        digest = b.artifact.digest
        candidates = f.producers.get(digest, ())
        if candidates:
            p = f.latest(candidates)
            link(steps[p].step, f.slot(p, digest), OUTPUTS, b.name, "data")
        elif digest in f.param_names:
            link(PARAMS, f.param_names[digest][0], OUTPUTS, b.name, "data")
    return RecordedGraph(tuple(nodes), tuple(edges), inferred=True)


def _source_of(f: _Facts, c: int, b) -> tuple | None:
    """(step or PARAMS, slot) that fed input `b` of step c, by digest and time; None if none did."""
    digest = b.artifact.digest
    names = f.param_names.get(digest, ())
    candidates = [p for p in f.producers.get(digest, ()) if f.before(p, c)]
    if b.name in names:
        return PARAMS, b.name
    if names and not candidates:
        return PARAMS, names[0]
    if candidates:
        p = f.latest(candidates)
        return f.steps[p].step, f.slot(p, digest)
    return None


def _list_source(f: _Facts, parent: int, name: str) -> tuple | None:
    """(step or PARAMS, slot) whose recorded list holds, for every element of map `parent`,
    that element's input `name` at the element's index; None if none does.

    Asking it of all the elements at once keeps a constant argument (the same for every
    element) from matching some list by coincidence.
    """
    steps = f.steps
    elements = sorted(f.children[parent].values())
    pairs = []
    for e in elements:
        for b in steps[e].inputs:
            if b.name == name:
                value, ok = _json_value(b.artifact)
                pairs.append((steps[e].map_index, b.artifact.digest, value, ok))
    if not pairs:
        return None
    first = min(elements, key=lambda e: (_ts(steps[e].started_at) or float("inf"), e))

    def holds(artifact) -> bool:
        value, parsed = _json_value(artifact)
        if not parsed or not isinstance(value, list):
            return False
        for i, digest, element, ok in pairs:
            if i is None or i >= len(value) or not ((ok and value[i] == element) or value[i] == digest):
                return False
        return True

    candidates = [(p, b.name) for p, s in enumerate(steps)
                  if p not in elements and f.before(p, first) and not _MAP_ELEMENT.match(s.step)
                  for b in s.outputs if holds(b.artifact)]
    if candidates:
        p = f.latest({p for p, _ in candidates})
        return steps[p].step, next(slot for q, slot in candidates if q == p)
    held = next((b.name for b in f.detail.inputs if holds(b.artifact)), None)
    return (PARAMS, held) if held is not None else None


def _guard_source(f: _Facts, c: int, condition: str) -> int | None:
    m = _CONDITION.search(condition)
    if not m:
        return None
    if m.group("step"):
        named = [p for p, s in enumerate(f.steps) if s.step == m.group("step")]
        if named:
            return named[0]
    wanted = m.group("value").lower()  # the JSON form of the recorded bool
    candidates = [p for p, s in enumerate(f.steps) if f.before(p, c) and s.status != Status.SKIPPED
                  and any((o.artifact.type == "bool" and o.artifact.value == wanted) for o in s.outputs)]
    return f.latest(candidates) if candidates else None


def _bool_slot(step) -> str:
    """The output of a deciding step that holds its bool ("return" unless a tuple's element is)."""
    return next((b.name for b in step.outputs if b.artifact.type == "bool"), "return")
