"""Draw one execution's step graph: Mermaid, Graphviz DOT, or a self-contained HTML page.

    render(detail, "mermaid" | "dot" | "html") -> str

`detail` is what `Ledger.execution(ID)` returns. The drawing is the graph the ledger
recorded as built (`detail.graph`, see engine/blueprint.py), with each step's status,
duration, cache hit and artifacts laid over it. Nothing here reconstructs an edge from
digests, timestamps or messages:

- one arrow per (source, target), labelled with every parameter it feeds and the digest
  the target received there (`accuracy · 8650d21c`); the workflow's parameters are one
  source node, what the workflow returns one sink node (`@outputs`);
- a guard (`when(...)`: the source's output decides whether the target runs) is a dashed
  arrow labelled `when=True` / `when=False`, drawn whether or not the branch ran;
- a map's elements `train[0]`, `train[1]`, ... are fed by whatever feeds the map's list
  (the element edges of the record, followed back one hop) and feed their map step, whose
  inputs are named "[0]", "[1]", ...;
- a step the graph has but the ledger has no record of (the execution stopped first) is
  drawn as "not run" ("pending" while the execution runs); a step skipped because an
  upstream step failed says which step blocked it.

An execution recorded before the ledger kept graphs (schema < 4) has no `detail.graph`:
its graph is reconstructed (`lineage.inference.inferred_graph`) and every format says so.

The HTML page needs no network: CSS and JS are inline, the layout (layers by longest path
from the sources, orders within a layer by barycentre sweeps) is computed here, and the
data rides in a `<script type="application/json">` block with `<`, `>`, `&` and the JS line
separators escaped, so no artifact value or step name can close the script or inject
markup. The page writes every string with textContent, never innerHTML.
"""

from __future__ import annotations

import html as _html
import json
import re
from datetime import datetime

import attrs

from ledgerflow.errors import UnknownFormat
from ledgerflow.engine.status import UNKNOWN, Status
from ledgerflow.app.display import format_duration, format_size
from ledgerflow.lineage.inference import inferred_graph
from ledgerflow.lineage.values import StepInfo

FORMATS = ("mermaid", "dot", "html")
PARAMS_ID = "@parameters"  # a step is named after a Python identifier, so these can't clash
OUTPUTS_ID = "@outputs"
_PARAMS, _OUTPUTS = "@params", "@outputs"  # the record's names for the two (engine/blueprint.py)
INFERRED_NOTE = ("graph inferred: recorded before the ledger kept graphs (schema 4); its edges were "
                 "reconstructed from digests and times and may be wrong where values coincide")

_STATUS_COLOURS = {s.value: s.display.fill for s in Status}  # status -> (fill, stroke, text)
_UNKNOWN_COLOURS = UNKNOWN.fill
_PARAMS_COLOURS = ("#e0f2fe", "#0284c7", "#0c4a6e")
_VALUE_PREVIEW = 2000  # characters of an artifact's plain value carried into the HTML page


# ---------------------------------------------------------------------------- the graph


@attrs.frozen
class Node:
    id: str  # a safe id: "p" parameters, "o" outputs, "s0", "s1", ... steps (ledger order, then the unrun)
    step: str  # the step's name, or PARAMS_ID / OUTPUTS_ID
    index: int | None  # position in detail.steps; None for p, o and a step the ledger has no record of
    kind: str = "step"  # "params" | "outputs" | "step"
    info: StepInfo | None = None  # the step's record (a stand-in, status "not run", when it has none)


@attrs.frozen
class Feed:
    """One recorded edge drawn on an arrow: the target's `param` from the source's `slot`."""

    param: str  # "data", "xs[0]", "[2]" (a map's element), "when=True" (a guard), "return" (@outputs)
    slot: str  # "return", "return[1]", or the parameter's name for the parameters node
    kind: str  # the record's kind: data, guard, condition, then, otherwise
    digest: str | None = None  # what the target received as `param` (None: a guard, or not recorded)


@attrs.frozen
class Edge:
    source: str  # node id
    target: str  # node id
    feeds: tuple  # of Feed, in the record's order

    @property
    def guard(self) -> bool:
        """Only decides whether the target runs (drawn dashed)."""
        return all(f.kind == "guard" for f in self.feeds)


@attrs.frozen
class StepGraph:
    nodes: tuple  # of Node: parameters, steps in ledger order, steps never run, outputs
    edges: tuple  # of Edge, one per (source, target)
    inferred: bool = False  # reconstructed for a pre-schema-4 execution (see lineage/inference.py)


def _short(digest: str | None) -> str:
    if not digest:
        return "?"
    return digest.split(":", 1)[-1][:8]


def _unrun(detail, step: str, task: str | None = None, map_index: int | None = None) -> StepInfo:
    """A stand-in record for a step of the graph the ledger has none for."""
    status = "pending" if detail.summary.status == Status.RUNNING else "not run"
    return StepInfo(step=step, task=task or None, task_fingerprint=None, status=status, started_at=None,
                    ended_at=None, duration_s=None, attempts=(), cache_key=None, cache_hit=False, cached_from=None,
                    inputs=(), outputs=(), metrics=(), resources=None, node=None, error=None, map_index=map_index,
                    condition=None)


def _feeds_element(param: str, list_param: str, i: int | None) -> bool:
    """Whether an edge into a map's `param` carries (part of) element i's `list_param`: the
    whole list (`x`), or item i of a list written in the body (`x[i]`, `x[i][0]`)."""
    if param == list_param:
        return True
    item = f"{list_param}[{i}]"
    return i is not None and (param == item or param.startswith(item + "["))


def build_graph(detail) -> StepGraph:
    """The drawing of one execution's recorded graph, as described in the module's docstring."""
    recorded = detail.graph if detail.graph is not None else inferred_graph(detail)
    steps = detail.steps
    nodes: list = []
    id_of: dict = {}  # step name (or the record's @params/@outputs) -> node id

    def add_step(name: str, index: int | None, info) -> None:
        if name not in id_of:
            id_of[name] = f"s{len(nodes) - (_PARAMS in id_of)}"  # "o" comes last, after every step
            nodes.append(Node(id_of[name], name, index, "step", info))

    if detail.inputs or detail.params or any(e.source == _PARAMS for e in recorded.edges):
        id_of[_PARAMS] = "p"
        nodes.append(Node("p", PARAMS_ID, None, "params"))
    for i, s in enumerate(steps):
        add_step(s.step, i, s)
    for n in recorded.nodes:  # in the graph, never recorded as a step
        if n.step not in id_of:
            add_step(n.step, None, _unrun(detail, n.step, n.task, n.map_index))
    for e in recorded.edges:  # an end the graph names but has no node for (never expected)
        for name in (e.source, e.target):
            if name not in (_PARAMS, _OUTPUTS) and name not in id_of:
                add_step(name, None, _unrun(detail, name))
    if detail.outputs or any(e.target == _OUTPUTS for e in recorded.edges):
        id_of[_OUTPUTS] = "o"
        nodes.append(Node("o", OUTPUTS_ID, None, "outputs"))

    received: dict = {}  # (step, param) -> the digest it consumed under that name
    for s in steps:
        for b in s.inputs:
            received.setdefault((s.step, b.name), b.artifact.digest)
    for b in detail.outputs:
        received.setdefault((_OUTPUTS, b.name), b.artifact.digest)

    elements: dict = {}  # map step -> {element step: its index}
    for n in recorded.nodes:
        if n.kind == "element" and n.parent is not None:
            elements.setdefault(n.parent, {})[n.step] = n.map_index
    feeding: dict = {}  # map step -> the edges that feed its lists (not its elements' results, not guards)
    for e in recorded.edges:
        if e.target in elements and e.kind != "guard" and e.source not in elements[e.target]:
            feeding.setdefault(e.target, []).append(e)

    arrows: dict = {}  # (source id, target id) -> [Feed]

    def link(source: str, target: str, feed: Feed) -> None:
        feeds = arrows.setdefault((id_of[source], id_of[target]), [])
        if feed not in feeds:
            feeds.append(feed)

    for e in recorded.edges:
        if e.kind == "element":  # the map hands element i its share of what feeds the map
            i = elements.get(e.source, {}).get(e.target)
            for x in feeding.get(e.source, ()):
                if _feeds_element(x.param, e.slot, i):
                    digest = received.get((e.target, e.param)) if x.kind == "data" else None
                    link(x.source, e.target, Feed(e.param, x.slot, x.kind, digest))
            continue
        if e.target in elements and e.kind != "guard" and e.source not in elements[e.target]:
            continue  # drawn into each element instead
        digest = received.get((e.target, e.param)) if e.kind == "data" else None
        link(e.source, e.target, Feed(e.param, e.slot, e.kind, digest))

    edges = tuple(Edge(src, dst, tuple(feeds)) for (src, dst), feeds in arrows.items())
    return StepGraph(tuple(nodes), edges, recorded.inferred)


# ---------------------------------------------------------------------------- labels


def _status_class(step) -> str:
    return step.status if step.status in _STATUS_COLOURS else "other"


def _step_lines(step) -> list:
    lines = [step.step, f"{step.status} · {format_duration(step.duration_s)}"]
    if step.cache_hit and step.status != Status.CACHED:
        lines.append("cache hit")
    if step.blocked_by:
        lines.append(f"blocked by {step.blocked_by}")
    return lines


def _params_lines(detail) -> list:
    names = [b.name for b in detail.inputs] or list(detail.params)
    return ["parameters", ", ".join(names) if names else "(none)"]


def _outputs_lines(detail, graph: StepGraph) -> list:
    names = [b.name for b in detail.outputs]
    if not names:  # not returned (yet): what the graph says it returns
        names = sorted({f.param for e in graph.edges if e.target == "o" for f in e.feeds})
    return ["outputs", ", ".join(names) if names else "(none)"]


def _feed_text(f: Feed) -> str:
    if f.kind == "guard":
        return f.param
    if f.kind != "data":  # a when(...) used as a value: its condition and both branches
        return f"{f.param} ({f.kind})"
    return f.param if f.digest is None else f"{f.param} · {_short(f.digest)}"


def _edge_text(edge: Edge) -> str:
    return ", ".join(_feed_text(f) for f in edge.feeds)


# ---------------------------------------------------------------------------- mermaid


# Control characters and what Unicode counts as line breaks (a line-based reader would split there).
_ODD_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_MERMAID_SAFE = str.maketrans({
    '"': "'", "`": "'", "<": "\u2039", ">": "\u203a", "#": "\uff03", "&": "\uff06",
    "\r": " ", "\n": " ", "\t": " ",
})


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label.

    Brackets, braces, parentheses, pipes and semicolons are literal inside quotes. Mermaid's
    own escapes (`#quot;`, `#91;`) are not decoded by every renderer (Mermaid 11.17's
    `run` shows them raw), so the few characters that could end the quote, start an
    entity, or be read as HTML become look-alikes instead: " -> ', < -> \u2039, > -> \u203a,
    # -> \uff03, & -> \uff06. Step and parameter names (Python identifiers, `[i]`) never
    contain them; only hostile or odd text is touched.
    """
    return _ODD_BREAKS.sub(" ", str(text).translate(_MERMAID_SAFE))


def _end_lines(detail, graph: StepGraph, node: Node) -> list:
    return _params_lines(detail) if node.kind == "params" else _outputs_lines(detail, graph)


def to_mermaid(detail, graph: StepGraph | None = None) -> str:
    graph = graph or build_graph(detail)
    s = detail.summary
    lines = [f"%% ledgerflow execution {_mermaid_text(s.id)} of {_mermaid_text(s.workflow)}: {_mermaid_text(s.status)}"]
    if graph.inferred:
        lines.append(f"%% {_mermaid_text(INFERRED_NOTE)}")
    lines.append("flowchart LR")
    classes: dict = {}
    cached = []
    for node in graph.nodes:
        if node.info is None:  # the parameters or the outputs
            label = "<br/>".join(_mermaid_text(t) for t in _end_lines(detail, graph, node))
            lines.append(f'  {node.id}(["{label}"]):::{node.kind}')
            continue
        step = node.info
        label = "<br/>".join(_mermaid_text(t) for t in _step_lines(step))
        cls = "st_" + _status_class(step).replace(" ", "_")
        classes[cls] = _STATUS_COLOURS.get(_status_class(step), _UNKNOWN_COLOURS)
        lines.append(f'  {node.id}["{label}"]:::{cls}')
        if step.cache_hit:
            cached.append(node.id)
    for edge in graph.edges:
        arrow = "-.->" if edge.guard else "-->"
        lines.append(f'  {edge.source} {arrow}|"{_mermaid_text(_edge_text(edge))}"| {edge.target}')
    fill, stroke, text = _PARAMS_COLOURS
    for kind in ("params", "outputs"):
        if any(n.kind == kind for n in graph.nodes):
            lines.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:{text}")
    for cls, (fill, stroke, text) in sorted(classes.items()):
        lines.append(f"  classDef {cls} fill:{fill},stroke:{stroke},color:{text}")
    if cached:
        lines.append("  classDef cachehit stroke-dasharray:5 3,stroke-width:2px")
        lines.append(f"  class {','.join(cached)} cachehit")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- dot


def _dot_string(text: str) -> str:
    """A quoted DOT string (an escString in labels: backslashes doubled, \\n for newlines)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"' + _ODD_BREAKS.sub(" ", text) + '"'


def to_dot(detail, graph: StepGraph | None = None) -> str:
    graph = graph or build_graph(detail)
    s = detail.summary
    ids = {n.id: n.step for n in graph.nodes}
    title = f"{s.workflow} · {s.id} · {s.status}" + (" · graph inferred" if graph.inferred else "")
    lines = [f"digraph {_dot_string('ledgerflow ' + s.id)} {{"]
    if graph.inferred:
        lines.append(f"  // {_ODD_BREAKS.sub(' ', INFERRED_NOTE)}")
    lines += [
        f"  label={_dot_string(title)};",
        '  labelloc="t"; rankdir="LR"; fontname="Helvetica";',
        '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11", penwidth="1.5"];',
        '  edge [fontname="Helvetica", fontsize="9", color="#64748b", fontcolor="#475569"];',
    ]
    for node in graph.nodes:
        if node.info is None:  # the parameters or the outputs
            fill, stroke, text = _PARAMS_COLOURS
            label = "\n".join(_end_lines(detail, graph, node))
            lines.append(f'  {_dot_string(node.step)} [label={_dot_string(label)}, shape="ellipse", style="filled", '
                         f'fillcolor="{fill}", color="{stroke}", fontcolor="{text}"];')
            continue
        step = node.info
        fill, stroke, text = _STATUS_COLOURS.get(_status_class(step), _UNKNOWN_COLOURS)
        style = "rounded,filled,dashed" if step.cache_hit else "rounded,filled"
        lines.append(f"  {_dot_string(step.step)} [label={_dot_string(chr(10).join(_step_lines(step)))}, "
                     f'style="{style}", fillcolor="{fill}", color="{stroke}", fontcolor="{text}"];')
    for edge in graph.edges:
        attrs_ = f"label={_dot_string(_edge_text(edge))}"
        if edge.guard:
            attrs_ += ', style="dashed"'
        lines.append(f"  {_dot_string(ids[edge.source])} -> {_dot_string(ids[edge.target])} [{attrs_}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- layout


NODE_W, NODE_H = 184, 60


def layout(graph: StepGraph) -> dict:
    """node id -> (layer, order): layer by longest path from the sources, order within the
    layer by barycentre sweeps (fewer crossings). The page turns these into coordinates,
    left to right or top to bottom, whichever fits the window better."""
    ids = [n.id for n in graph.nodes]
    preds: dict = {i: [] for i in ids}
    succs: dict = {i: [] for i in ids}
    for e in graph.edges:
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)

    layer: dict = {}
    state: dict = {}

    def depth(n) -> int:  # iterative longest path; a back edge (never expected) is ignored
        stack = [(n, iter(preds[n]))]
        state[n] = 1
        best = {n: 0}
        while stack:
            cur, it = stack[-1]
            for p in it:
                if p in layer:
                    best[cur] = max(best[cur], layer[p] + 1)
                elif state.get(p) != 1:
                    state[p] = 1
                    best[p] = 0
                    stack.append((p, iter(preds[p])))
                    break
            else:
                stack.pop()
                layer[cur] = best[cur]
                state[cur] = 2
                if stack:
                    parent = stack[-1][0]
                    best[parent] = max(best[parent], layer[cur] + 1)
        return layer[n]

    for i in ids:
        if i not in layer:
            depth(i)

    layers: dict = {}
    for i in ids:  # ledger order as the first guess
        layers.setdefault(layer[i], []).append(i)
    position = {i: k for lst in layers.values() for k, i in enumerate(lst)}

    def sweep(order, neighbours):
        for lay in order:
            lst = layers[lay]
            def key(n):
                ps = [position[p] for p in neighbours[n]]
                return (sum(ps) / len(ps)) if ps else position[n]
            lst.sort(key=lambda n: (key(n), position[n]))
            for k, n in enumerate(lst):
                position[n] = k

    order = sorted(layers)
    for _ in range(4):
        sweep(order[1:], preds)
        sweep(list(reversed(order[:-1])), succs)
    sweep(order[1:], preds)

    return {n: (lay, k) for lay, lst in layers.items() for k, n in enumerate(lst)}


# ---------------------------------------------------------------------------- html


_HOW = {"cache": "cache hit", "reference": "passed by reference", "replay": "replayed", "element": "one element",
        "digest": "found by its digest"}


def source_text(source: str | None, how: str | None, execution_id: str, prefix: int = 12) -> str | None:
    """Where a bound artifact came from, for people: `split.return[0]` in the same execution,
    `01JD3Q8ZKX7V:split.return[0]` from another, with how when it says more than "a step's
    output" (`(cache hit)`, `(passed by reference)`, `(replayed)`, `(one element)`).

    >>> source_text("01JD3Q8ZKX7V2M5N:split.return[0]", "step", "01JD3Q8ZKX7V2M5N")
    'split.return[0]'
    >>> source_text("01JC0000AAAABBBB:train.return", "cache", "01JD3Q8ZKX7V2M5N")
    '01JC0000AAAA:train.return (cache hit)'
    """
    if not source:
        return None
    execution, _, where = source.partition(":")
    text = where if execution == execution_id else f"{execution[:prefix]}:{where}"
    note = _HOW.get(how or "")
    return f"{text} ({note})" if note else text


def _artifact_json(bound, execution_id: str, consumers=None, producer=None) -> dict:
    a = bound.artifact
    value = a.value
    truncated = value is not None and len(value) > _VALUE_PREVIEW
    # The graph links a source in this execution; the page spells out any other (a cache hit's
    # original, a handle from another run, a replay's original).
    elsewhere = bound.source is not None and (not bound.source.startswith(execution_id + ":")
                                              or bound.how in ("cache", "reference", "replay", "digest"))
    return {
        "name": bound.name, "digest": a.digest, "kind": a.kind, "type": a.type, "size": a.size,
        "size_h": format_size(a.size), "uri": a.uri,
        "value": value[:_VALUE_PREVIEW] if truncated else value, "value_truncated": truncated,
        "source": bound.source, "how": bound.how,
        "origin": source_text(bound.source, bound.how, execution_id) if elsewhere else None,
        **({"from": producer} if producer is not None else {}),
        **({"to": consumers} if consumers is not None else {}),
    }


def page_data(detail, graph: StepGraph | None = None) -> dict:
    """The JSON the HTML page draws from (also handy for tests)."""
    graph = graph or build_graph(detail)
    pos = layout(graph)
    eid = detail.summary.id
    name_of = {n.id: n.step for n in graph.nodes}
    src_of: dict = {}  # (target id, input name) -> source step name (a node's step, "parameters")
    consumers: dict = {}  # (source id, output slot) -> [target step names]
    for e in graph.edges:
        source = "parameters" if e.source == "p" else name_of[e.source]
        for f in e.feeds:
            if f.kind == "guard":
                continue
            src_of.setdefault((e.target, f.param), source)
            targets = consumers.setdefault((e.source, f.slot), [])
            target = "outputs" if e.target == "o" else name_of[e.target]
            if target not in targets:
                targets.append(target)

    nodes = []
    for node in graph.nodes:
        lay, order = pos[node.id]
        base = {"id": node.id, "layer": lay, "order": order}
        if node.kind == "params":
            nodes.append({**base, "kind": "params", "step": "parameters", "status": "params",
                          "label": ", ".join(b.name for b in detail.inputs) or ", ".join(detail.params),
                          "outputs": [_artifact_json(b, eid, consumers.get((node.id, b.name), []))
                                      for b in detail.inputs]})
            continue
        if node.kind == "outputs":
            nodes.append({**base, "kind": "outputs", "step": "outputs", "status": "outputs",
                          "label": _outputs_lines(detail, graph)[1],
                          "inputs": [_artifact_json(b, eid, producer=src_of.get((node.id, b.name)))
                                     for b in detail.outputs]})
            continue
        s = node.info
        nodes.append({
            **base, "kind": "step", "step": s.step, "task": s.task, "status": s.status,
            "status_class": _status_class(s), "duration": format_duration(s.duration_s), "duration_s": s.duration_s,
            "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at),
            "cache_hit": s.cache_hit, "cached_from": s.cached_from, "cache_key": s.cache_key,
            "task_fingerprint": s.task_fingerprint, "resources": s.resources, "node": s.node,
            "error": s.error, "map_index": s.map_index, "condition": s.condition, "blocked_by": s.blocked_by,
            "attempts": [{"attempt": a.attempt, "status": a.status, "duration": format_duration(a.duration_s),
                          "node": a.node, "error": a.error, "traceback": a.traceback} for a in s.attempts],
            "inputs": [_artifact_json(b, eid, producer=src_of.get((node.id, b.name))) for b in s.inputs],
            "outputs": [_artifact_json(b, eid, consumers.get((node.id, b.name), [])) for b in s.outputs],
            "metrics": [{"name": m.name, "value": m.value, "index": m.index, "reused_from": m.reused_from}
                        for m in s.metrics],
        })
    summary = detail.summary
    steps = [n.info for n in graph.nodes if n.info is not None]
    counts: dict = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    return {
        "execution": {
            "id": summary.id, "workflow": summary.workflow, "status": summary.status,
            "started_at": _iso(summary.started_at), "ended_at": _iso(summary.ended_at),
            "duration": format_duration(summary.duration_s), "executor": summary.executor, "host": summary.host,
            "replay_of": summary.replay_of, "error": summary.error, "code_digest": detail.code_digest,
            "workflow_fingerprint": detail.workflow_fingerprint,
            "params": [_artifact_json(b, eid) for b in detail.inputs],
            "outputs": [_artifact_json(b, eid) for b in detail.outputs],
            "counts": counts, "cache_hits": sum(1 for s in steps if s.cache_hit), "steps": len(steps),
            "graph_inferred": graph.inferred, "graph_note": INFERRED_NOTE if graph.inferred else None,
        },
        "nodes": nodes,
        "edges": [{"source": e.source, "target": e.target, "label": _edge_text(e), "guard": e.guard}
                  for e in graph.edges],
        "node_size": {"w": NODE_W, "h": NODE_H},
        "colours": {k: list(v) for k, v in {**_STATUS_COLOURS, "params": _PARAMS_COLOURS,
                                            "other": _UNKNOWN_COLOURS}.items()},
    }


def _iso(value) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if isinstance(value, datetime) else None


def script_json(data) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' (so no '</script>' or '<!--'), no U+2028/9."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def to_html(detail, graph: StepGraph | None = None) -> str:
    data = page_data(detail, graph)
    s = detail.summary
    title = _html.escape(f"{s.workflow} · {s.id} — Ledgerflow lineage", quote=True)
    return (_PAGE.replace("{{TITLE}}", title)
            .replace("{{CSS}}", _CSS)
            .replace("{{JS}}", _JS)
            .replace("{{DATA}}", script_json(_finite(data))))


def _finite(value):
    """NaN/inf metrics as strings, since JSON has no such numbers."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render(detail, fmt: str) -> str:
    """The step graph of `detail` (an ExecutionDetail) as "mermaid", "dot" or "html" text."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UnknownFormat(f"unknown graph format {fmt!r}: choose one of {', '.join(FORMATS)}")
    graph = build_graph(detail)
    return {"mermaid": to_mermaid, "dot": to_dot, "html": to_html}[fmt](detail, graph)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{{TITLE}}</title>
<style>{{CSS}}</style>
</head>
<body>
<header id="top">
  <div class="brand">Ledgerflow <span>lineage</span></div>
  <div class="title"><span id="wf"></span><code id="exid"></code></div>
  <div id="stats" class="stats"></div>
</header>
<main>
  <section id="canvas" aria-label="step graph">
    <div id="scroll"><div id="sizer"><div id="graph"><svg id="edges" xmlns="http://www.w3.org/2000/svg"></svg></div></div></div>
    <div id="legend" class="legend"></div>
    <div class="zoom"><button id="zoom-out" title="zoom out">&minus;</button><button id="zoom-fit" title="fit to window">fit</button><button id="zoom-in" title="zoom in">+</button><button id="orient" title="switch direction">\u21c4</button></div>
  </section>
  <aside id="panel" aria-live="polite"></aside>
</main>
<script type="application/json" id="ledgerflow-data">{{DATA}}</script>
<script>{{JS}}</script>
</body>
</html>
"""

_CSS = r"""
:root{--bg:#f8fafc;--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--panel:#ffffff;--accent:#4f46e5;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
--sans:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
*{box-sizing:border-box}
html,body{margin:0;height:100%;background:var(--bg);color:var(--fg);font:13px/1.45 var(--sans)}
header{display:flex;align-items:center;gap:24px;padding:12px 20px;background:#0f172a;color:#e2e8f0;
  border-bottom:1px solid #1e293b;height:56px}
.brand{font-weight:700;letter-spacing:.02em;font-size:15px;white-space:nowrap}
.brand span{font-weight:400;color:#94a3b8}
.title{display:flex;align-items:baseline;gap:10px;min-width:0;flex:1;overflow:hidden}
.title #wf{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.title code{font:12px var(--mono);color:#94a3b8;white-space:nowrap}
.stats{display:flex;gap:8px;flex-wrap:nowrap;white-space:nowrap}
.chip{display:inline-flex;align-items:center;gap:6px;padding:2px 9px;border-radius:999px;font-size:12px;
  background:#1e293b;color:#cbd5e1;border:1px solid #334155}
.chip b{color:#f8fafc;font-weight:600}
.dot{width:8px;height:8px;border-radius:50%;display:inline-block;flex:none}
main{display:flex;height:calc(100% - 56px)}
#canvas{position:relative;flex:1;min-width:0;background:
  radial-gradient(circle,#e2e8f0 1px,transparent 1px) 0 0/22px 22px}
#scroll{position:absolute;inset:0;overflow:auto;display:flex;padding-bottom:44px}
#sizer{position:relative;margin:auto;flex:none}
#graph{position:absolute;left:0;top:0;transform-origin:0 0}
.zoom{position:absolute;right:12px;top:12px;display:flex;border:1px solid var(--line);border-radius:8px;overflow:hidden;
  background:#fff;box-shadow:0 1px 3px rgba(15,23,42,.08)}
.zoom button{border:0;background:#fff;color:#334155;font:600 13px var(--sans);padding:5px 11px;cursor:pointer}
.zoom button+button{border-left:1px solid var(--line)}
.zoom button:hover{background:#f1f5f9}
#edges{position:absolute;left:0;top:0;overflow:visible;pointer-events:none}
#edges path{fill:none;stroke:#94a3b8;stroke-width:1.5}
#edges path.guard{stroke-dasharray:5 4}
#edges path.hot{stroke:var(--accent);stroke-width:2.25}
#edges path.dim{opacity:.25}
#edges text{font:10px var(--sans);fill:#334155;paint-order:stroke;stroke:#f8fafc;stroke-width:4px}
.node{position:absolute;border-radius:10px;background:#fff;border:1.5px solid #cbd5e1;padding:8px 12px 8px 16px;
  cursor:pointer;box-shadow:0 1px 2px rgba(15,23,42,.06),0 1px 6px rgba(15,23,42,.05);overflow:hidden;
  transition:box-shadow .12s,transform .12s;user-select:none}
.node:hover{box-shadow:0 4px 14px rgba(15,23,42,.14);transform:translateY(-1px)}
.node:focus{outline:none}
.node.selected{box-shadow:0 0 0 3px rgba(79,70,229,.35),0 4px 14px rgba(15,23,42,.14);border-color:var(--accent)!important}
.node.dim{opacity:.45}
.node .bar{position:absolute;left:0;top:0;bottom:0;width:5px}
.node .name{font-weight:600;font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.node .meta{display:flex;gap:6px;align-items:center;margin-top:5px;color:var(--muted);font-size:11.5px;white-space:nowrap}
.node .badge{font-size:10.5px;padding:0 6px;border-radius:999px;font-weight:600;letter-spacing:.01em}
.node.cachehit{border-style:dashed}
.node.params{border-radius:33px;padding-left:20px}
.chip.inferred{background:#78350f;border-color:#d97706;color:#fef3c7}
.note{background:#fffbeb;border:1px solid #fcd34d;color:#78350f;border-radius:6px;padding:6px 9px;margin-top:10px;font-size:12px}
.legend{position:absolute;left:12px;bottom:12px;display:flex;gap:12px;padding:6px 12px;
  background:rgba(255,255,255,.94);border:1px solid var(--line);border-radius:8px;color:var(--muted);font-size:11.5px}
.legend span{display:inline-flex;align-items:center;gap:5px}
aside{width:420px;flex:none;background:var(--panel);border-left:1px solid var(--line);overflow:auto;padding:18px 20px 40px}
aside h2{margin:0 0 2px;font-size:17px;word-break:break-all}
aside h3{margin:20px 0 8px;font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted)}
aside .sub{color:var(--muted);font-size:12px;word-break:break-all}
.kv{display:grid;grid-template-columns:110px 1fr;gap:4px 10px;margin:10px 0 0}
.kv div:nth-child(odd){color:var(--muted)}
.kv div{word-break:break-all}
.art{border:1px solid var(--line);border-radius:8px;padding:8px 10px;margin:0 0 8px;background:#fcfdfe}
.art .head{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.art .aname{font-weight:600}
.art .atype{font:11.5px var(--mono);color:#0369a1;word-break:break-all;text-align:right}
.digest{font:11px var(--mono);color:#334155;word-break:break-all;margin-top:4px;user-select:all}
.art .foot{display:flex;gap:10px;flex-wrap:wrap;margin-top:4px;color:var(--muted);font-size:11.5px}
.art .value{font:11.5px var(--mono);background:#f1f5f9;border-radius:5px;padding:3px 6px;margin-top:5px;
  white-space:pre-wrap;word-break:break-all;max-height:110px;overflow:auto}
a.step-link{color:var(--accent);text-decoration:none;cursor:pointer}
a.step-link:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:500}
td.num{font-family:var(--mono);text-align:right}
pre.err{background:#fef2f2;color:#7f1d1d;border:1px solid #fecaca;border-radius:6px;padding:8px;
  white-space:pre-wrap;word-break:break-word;font:11.5px var(--mono);max-height:260px;overflow:auto;margin:0}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:11.5px;font-weight:600}
.empty{color:var(--muted);font-style:italic}
.hint{color:var(--muted);font-size:12px;margin-top:14px}
"""

_JS = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("ledgerflow-data").textContent);
  var COL = DATA.colours, NW = DATA.node_size.w, NH = DATA.node_size.h;
  var byId = {}, byStep = {}, elOf = {}, selected = null;
  DATA.nodes.forEach(function (n) { byId[n.id] = n; byStep[n.step] = n; });
  var SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function isEnd(n) { return n.kind === "params" || n.kind === "outputs"; }  // the parameters or the outputs
  function colours(n) { return COL[isEnd(n) ? "params" : (n.status_class || "other")] || COL.other; }
  function pill(status, cls) {
    var c = COL[cls || status] || COL.other, p = el("span", "pill", status);
    p.style.background = c[0]; p.style.color = c[2]; p.style.border = "1px solid " + c[1];
    return p;
  }

  // ---- header
  var X = DATA.execution;
  document.getElementById("wf").textContent = X.workflow;
  document.getElementById("exid").textContent = X.id;
  var stats = document.getElementById("stats");
  function chip(label, value, colour) {
    var c = el("span", "chip");
    if (colour) { var d = el("span", "dot"); d.style.background = colour; c.appendChild(d); }
    c.appendChild(el("span", null, label + " ")); c.appendChild(el("b", null, value));
    stats.appendChild(c);
  }
  chip("status", X.status, (COL[X.status] || COL.other)[1]);
  chip("duration", X.duration);
  chip("steps", X.steps);
  Object.keys(X.counts).sort().forEach(function (k) {
    if (k !== X.status || Object.keys(X.counts).length > 1) chip(k, X.counts[k], (COL[k] || COL.other)[1]);
  });
  chip("cache hits", X.cache_hits, COL.cached[1]);
  if (X.graph_inferred) {
    var inf = el("span", "chip inferred", "graph inferred"); inf.title = X.graph_note; stats.appendChild(inf);
    document.documentElement.setAttribute("data-graph-inferred", "1");
  }

  // ---- graph: nodes as positioned divs, edges as SVG paths; LR or TB, whichever fits better
  var graph = document.getElementById("graph"), svg = document.getElementById("edges");
  var sizer = document.getElementById("sizer"), scroller = document.getElementById("scroll");
  var M = 28, scale = 1, fitted = true, dir = "LR", W = 0, H = 0;
  var counts = {}, nLayers = 0, widest = 0;
  DATA.nodes.forEach(function (n) {
    counts[n.layer] = (counts[n.layer] || 0) + 1;
    nLayers = Math.max(nLayers, n.layer + 1); widest = Math.max(widest, counts[n.layer]);
  });
  var GAP = { LR: { along: 72, across: 18 }, TB: { along: 56, across: 20 } };
  function extent(d) {
    var g = GAP[d];
    if (d === "LR") return { w: 2 * M + nLayers * NW + (nLayers - 1) * g.along, h: 2 * M + widest * NH + (widest - 1) * g.across };
    return { w: 2 * M + widest * NW + (widest - 1) * g.across, h: 2 * M + nLayers * NH + (nLayers - 1) * g.along };
  }
  function place(d) {
    var g = GAP[d], e = extent(d);
    dir = d; W = e.w; H = e.h;
    DATA.nodes.forEach(function (n) {
      var c = counts[n.layer];
      if (d === "LR") {
        n.x = M + n.layer * (NW + g.along);
        n.y = M + ((widest - c) * (NH + g.across)) / 2 + n.order * (NH + g.across);
      } else {
        n.y = M + n.layer * (NH + g.along);
        n.x = M + ((widest - c) * (NW + g.across)) / 2 + n.order * (NW + g.across);
      }
    });
  }
  function fitScale(d) {
    var e = extent(d);
    return Math.min(1, (scroller.clientWidth - 24) / e.w, (scroller.clientHeight - 60) / e.h);
  }
  function zoom(s) {
    scale = Math.max(0.2, Math.min(2, s));
    graph.style.transform = "scale(" + scale + ")";
    sizer.style.width = W * scale + "px"; sizer.style.height = H * scale + "px";
  }
  function fit() { fitted = true; zoom(Math.max(0.6, fitScale(dir))); }

  var edgeEls = [];
  var defs = document.createElementNS(SVGNS, "defs");
  var marker = document.createElementNS(SVGNS, "marker");
  [["id", "arrow"], ["viewBox", "0 0 10 10"], ["refX", "9"], ["refY", "5"], ["markerWidth", "7"], ["markerHeight", "7"],
   ["orient", "auto-start-reverse"]].forEach(function (kv) { marker.setAttribute(kv[0], kv[1]); });
  var tip = document.createElementNS(SVGNS, "path"); tip.setAttribute("d", "M0,0 L10,5 L0,10 z");
  tip.setAttribute("style", "fill:#94a3b8;stroke:none");
  marker.appendChild(tip); defs.appendChild(marker); svg.appendChild(defs);
  DATA.edges.forEach(function (e) {
    var p = document.createElementNS(SVGNS, "path");
    p.setAttribute("marker-end", "url(#arrow)");
    if (e.guard) p.setAttribute("class", "guard");
    var t = document.createElementNS(SVGNS, "title"); t.textContent = byId[e.source].step + " \u2192 " + byId[e.target].step + ": " + e.label;
    p.appendChild(t);
    svg.appendChild(p);
    var label = document.createElementNS(SVGNS, "text");
    label.setAttribute("text-anchor", "middle"); label.textContent = e.label; label.style.display = "none";
    svg.appendChild(label);
    edgeEls.push({ e: e, path: p, label: label });
  });

  DATA.nodes.forEach(function (n) {
    var c = colours(n), d = el("div", "node" + (isEnd(n) ? " params" : "") + (n.cache_hit ? " cachehit" : ""));
    d.style.width = NW + "px"; d.style.height = NH + "px";
    d.style.borderColor = c[1];
    d.setAttribute("data-step", n.step); d.setAttribute("data-status", n.status);
    d.setAttribute("role", "button"); d.setAttribute("tabindex", "0");
    var bar = el("div", "bar"); bar.style.background = c[1]; d.appendChild(bar);
    d.appendChild(el("div", "name", n.step)).title = n.step;
    var meta = el("div", "meta");
    if (isEnd(n)) {
      meta.appendChild(el("span", null, n.label || "(none)"));
    } else {
      var b = el("span", "badge", n.status); b.style.background = c[0]; b.style.color = c[2]; meta.appendChild(b);
      meta.appendChild(el("span", "dur", n.duration));
      if (n.cache_hit && n.status !== "cached") { var ch = el("span", "badge", "cache hit"); ch.style.background = COL.cached[0]; ch.style.color = COL.cached[2]; meta.appendChild(ch); }
      if (n.attempts && n.attempts.length > 1) meta.appendChild(el("span", null, n.attempts.length + " attempts"));
    }
    d.appendChild(meta);
    d.addEventListener("click", function (ev) { ev.stopPropagation(); select(n.id); });
    d.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); d.click(); } });
    graph.appendChild(d);
    elOf[n.id] = d;
  });

  function draw(d) {
    place(d);
    graph.style.width = W + "px"; graph.style.height = H + "px";
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    DATA.nodes.forEach(function (n) { elOf[n.id].style.left = n.x + "px"; elOf[n.id].style.top = n.y + "px"; });
    edgeEls.forEach(function (x) {
      var a = byId[x.e.source], b = byId[x.e.target], x1, y1, x2, y2, path;
      if (d === "LR") {
        x1 = a.x + NW; y1 = a.y + NH / 2; x2 = b.x; y2 = b.y + NH / 2;
        var dx = Math.max(36, (x2 - x1) / 2);
        path = "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2;
      } else {
        x1 = a.x + NW / 2; y1 = a.y + NH; x2 = b.x + NW / 2; y2 = b.y;
        var dy = Math.max(28, (y2 - y1) / 2);
        path = "M" + x1 + "," + y1 + " C" + x1 + "," + (y1 + dy) + " " + x2 + "," + (y2 - dy) + " " + x2 + "," + y2;
      }
      x.path.setAttribute("d", path);
      var at = { x: (x1 + x2) / 2, y: (y1 + y2) / 2 };  // near the target, so siblings' labels part
      try { var len = x.path.getTotalLength(); at = x.path.getPointAtLength(len * 0.72); } catch (err) { /* not laid out */ }
      x.label.setAttribute("x", at.x); x.label.setAttribute("y", at.y - 4);
    });
    if (fitted) fit(); else zoom(scale);
  }
  draw(fitScale("TB") > fitScale("LR") + 0.02 ? "TB" : "LR");
  document.getElementById("zoom-in").addEventListener("click", function (ev) { ev.stopPropagation(); fitted = false; zoom(scale * 1.2); });
  document.getElementById("zoom-out").addEventListener("click", function (ev) { ev.stopPropagation(); fitted = false; zoom(scale / 1.2); });
  document.getElementById("zoom-fit").addEventListener("click", function (ev) { ev.stopPropagation(); fit(); });
  document.getElementById("orient").addEventListener("click", function (ev) { ev.stopPropagation(); draw(dir === "LR" ? "TB" : "LR"); });
  window.addEventListener("resize", function () { if (fitted) fit(); });
  document.documentElement.setAttribute("data-direction", dir);

  document.getElementById("canvas").addEventListener("click", function () { select(null); });

  var legend = document.getElementById("legend");
  ["succeeded", "cached", "failed", "skipped", "running", "cancelled"].forEach(function (k) {
    var s = el("span"), d = el("span", "dot"); d.style.background = COL[k][1]; s.appendChild(d);
    s.appendChild(document.createTextNode(k === "cached" ? "cache hit (dashed)" : k)); legend.appendChild(s);
  });
  var dashed = el("span", null, "\u2504 when(): decides whether it runs"); legend.appendChild(dashed);

  // ---- side panel
  var panel = document.getElementById("panel");
  function kv(rows) {
    var g = el("div", "kv");
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === "") return;
      g.appendChild(el("div", null, r[0]));
      var v = el("div"); if (r[1] instanceof Node) v.appendChild(r[1]); else v.textContent = String(r[1]);
      g.appendChild(v);
    });
    return g;
  }
  function stepLink(name) {
    var a = el("a", "step-link", name); a.href = "#select=" + encodeURIComponent(name);
    a.addEventListener("click", function (ev) { ev.preventDefault(); var n = byStep[name]; if (n) elOf[n.id].click(); });
    return a;
  }
  function artifacts(title, list, dir) {
    panel.appendChild(el("h3", null, title + " (" + list.length + ")"));
    if (!list.length) { panel.appendChild(el("div", "empty", "none")); return; }
    var box = el("div", "artifacts " + dir);
    list.forEach(function (a) {
      var c = el("div", "art"); c.setAttribute("data-digest", a.digest);
      var h = el("div", "head"); h.appendChild(el("span", "aname", a.name)); h.appendChild(el("span", "atype", a.type || a.kind || ""));
      c.appendChild(h);
      c.appendChild(el("div", "digest", a.digest));
      var f = el("div", "foot");
      f.appendChild(el("span", null, (a.kind || "artifact") + " \u00b7 " + a.size_h));
      if (a.from && !a.origin) { var s = el("span", null, "from "); s.appendChild(stepLink(a.from)); f.appendChild(s); }
      if (a.origin) f.appendChild(el("span", "origin", "from " + a.origin));
      if (a.to && a.to.length) {
        var t = el("span", null, "to ");
        a.to.forEach(function (name, i) { if (i) t.appendChild(document.createTextNode(", ")); t.appendChild(stepLink(name)); });
        f.appendChild(t);
      }
      c.appendChild(f);
      if (a.uri) c.appendChild(el("div", "digest", a.uri));
      if (a.value !== null && a.value !== undefined) c.appendChild(el("div", "value", a.value + (a.value_truncated ? " \u2026" : "")));
      box.appendChild(c);
    });
    panel.appendChild(box);
  }
  function showExecution() {
    panel.textContent = "";
    panel.setAttribute("data-selected", "");
    panel.appendChild(el("h2", null, "Execution"));
    panel.appendChild(el("div", "sub", X.id));
    panel.appendChild(kv([["workflow", X.workflow], ["status", pill(X.status)], ["duration", X.duration],
      ["started", X.started_at], ["ended", X.ended_at], ["executor", X.executor], ["host", X.host],
      ["replay of", X.replay_of], ["code", X.code_digest], ["fingerprint", X.workflow_fingerprint]]));
    if (X.graph_inferred) panel.appendChild(el("div", "note", X.graph_note));
    if (X.error) { panel.appendChild(el("h3", null, "Error")); panel.appendChild(el("pre", "err", X.error)); }
    artifacts("Parameters", X.params, "inputs");
    artifacts("Outputs", X.outputs, "outputs");
    panel.appendChild(el("div", "hint", "Click a step to see its inputs, outputs, metrics and attempts."));
  }
  function showStep(n) {
    panel.textContent = "";
    panel.setAttribute("data-selected", n.step);
    panel.appendChild(el("h2", "step-title", n.step));
    if (n.kind === "params") {
      panel.appendChild(el("div", "sub", "the workflow's parameters"));
      artifacts("Parameters", n.outputs, "outputs");
      return;
    }
    if (n.kind === "outputs") {
      panel.appendChild(el("div", "sub", "what the workflow returned"));
      artifacts("Outputs", n.inputs, "inputs");
      return;
    }
    panel.appendChild(el("div", "sub", n.task || ""));
    panel.appendChild(kv([["status", pill(n.status, n.status_class)], ["duration", n.duration],
      ["cache", n.cache_hit ? "hit" + (n.cached_from ? " \u2014 from " + n.cached_from : "") : "miss"],
      ["attempts", n.attempts.length], ["map index", n.map_index], ["blocked by", n.blocked_by],
      ["condition", n.condition]]));
    if (n.error) { panel.appendChild(el("h3", null, "Error")); panel.appendChild(el("pre", "err", n.error)); }
    artifacts("Inputs", n.inputs, "inputs");
    artifacts("Outputs", n.outputs, "outputs");
    panel.appendChild(el("h3", null, "Metrics (" + n.metrics.length + ")"));
    if (!n.metrics.length) panel.appendChild(el("div", "empty", "none"));
    else {
      var t = el("table", "metrics"), hr = el("tr");
      ["name", "index", "value"].forEach(function (h) { hr.appendChild(el("th", null, h)); }); t.appendChild(hr);
      n.metrics.forEach(function (m) {
        var r = el("tr"); r.appendChild(el("td", null, m.name + (m.reused_from ? " (reused from " + m.reused_from + ")" : "")));
        r.appendChild(el("td", "num", m.index === null ? "" : m.index));
        r.appendChild(el("td", "num", typeof m.value === "number" ? +m.value.toPrecision(6) : m.value)); t.appendChild(r);
      });
      panel.appendChild(t);
    }
    panel.appendChild(el("h3", null, "Attempts (" + n.attempts.length + ")"));
    if (!n.attempts.length) panel.appendChild(el("div", "empty", "none"));
    else {
      var at = el("table", "attempts"), ah = el("tr");
      ["#", "status", "duration", "ran on"].forEach(function (h) { ah.appendChild(el("th", null, h)); }); at.appendChild(ah);
      n.attempts.forEach(function (a) {
        var r = el("tr"); r.appendChild(el("td", null, a.attempt)); r.appendChild(el("td", null, a.status));
        r.appendChild(el("td", null, a.duration)); r.appendChild(el("td", null, a.node || "")); at.appendChild(r);
        if (a.error) { var er = el("tr"), td = el("td"); td.colSpan = 4; td.appendChild(el("pre", "err", a.traceback || a.error)); er.appendChild(td); at.appendChild(er); }
      });
      panel.appendChild(at);
    }
    panel.appendChild(el("h3", null, "Details"));
    panel.appendChild(kv([["started", n.started_at], ["ended", n.ended_at], ["ran on", n.node],
      ["resources", n.resources], ["cache key", n.cache_key], ["fingerprint", n.task_fingerprint]]));
  }
  function select(id) {
    selected = id;
    Object.keys(elOf).forEach(function (k) {
      elOf[k].classList.toggle("selected", k === id);
    });
    var near = {};
    edgeEls.forEach(function (x) {
      var hot = id !== null && (x.e.source === id || x.e.target === id);
      if (hot) { near[x.e.source] = near[x.e.target] = true; }
      x.path.classList.toggle("hot", hot); x.path.classList.toggle("dim", id !== null && !hot);
      x.label.style.display = hot ? "" : "none";
    });
    Object.keys(elOf).forEach(function (k) { elOf[k].classList.toggle("dim", id !== null && !near[k] && k !== id); });
    if (id === null) showExecution(); else showStep(byId[id]);
    var want = id === null ? "" : "#select=" + encodeURIComponent(byId[id].step);
    if (location.hash !== want && (want || location.hash)) {
      try { history.replaceState(null, "", want || location.pathname + location.search); } catch (e) { /* file:// */ }
    }
  }
  // #select=STEP opens a step as if it had been clicked (a real click through the node's handler).
  function fromHash() {
    var m = /^#select=(.*)$/.exec(location.hash);
    if (!m) return;
    var name; try { name = decodeURIComponent(m[1]); } catch (e) { return; }
    var n = byStep[name];
    if (n && selected !== n.id) {
      elOf[n.id].dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, view: window }));
      elOf[n.id].scrollIntoView({ block: "center", inline: "center" });
    }
  }
  window.addEventListener("hashchange", fromHash);
  showExecution();
  fromHash();
  document.documentElement.setAttribute("data-ready", "1");
})();
"""
