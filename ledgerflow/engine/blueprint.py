"""The graph as built, flattened into the record the ledger keeps: nodes and typed edges.

Readers of the ledger (show, graph, diff, OpenLineage) draw what was built from this
record alone; nothing downstream reconstructs an edge from equal digests or timestamps.

A node is `[step, task, site, kind, parent, map_index]`; kind is "task", "map" (a
`map_task` node) or "element" (one element of a map, added when the map expands).
An edge is `[source, slot, target, param, kind]`:

- source is a step, or "@params" with slot the parameter's name; target is a step, or
  "@outputs" for what the workflow returns;
- slot is the producer's output ("return", "return[1]" for a tuple's element, "return.model"
  for a field of a record);
- param is the consumer's parameter; a list written in the body binds "xs[0]", "xs[1]",
  and a tuple passed whole binds "p[0]", "p[1]", one edge per element;
- kind is "data", "guard" (the source decides whether the target runs: param is
  "when=True" or "when=False"), "condition"/"then"/"otherwise" (a `when(...)` used as a
  value), "element" (a map hands element i of its input to element step i), or "order"
  (`a >> b`: the target runs after the source succeeded; no data, slot "", param "after").

A map's elements are recorded when it expands, as `{"map": [step, count, params]}`.
"""

from __future__ import annotations

import json
from typing import Iterator

from ledgerflow.engine.failure import HANDLER_STEP
from ledgerflow.engine.graph import Choice, FromInput, FromStep, Gather, Graph, Node, Source

PARAMS = "@params"
OUTPUTS = "@outputs"

DATA, GUARD, ELEMENT, ORDER = "data", "guard", "element", "order"


def is_whole_tuple(node: Node, index: int | None, field: str | None = None) -> bool:
    """A tuple output consumed whole (`use(p=pair())`): lineage binds it element by element."""
    return index is None and field is None and len(node.task.outputs) > 1 and not node.mapped


def _edges(nodes: dict, src: Source, target: str, param: str, kind: str) -> Iterator[list]:
    if isinstance(src, FromInput):
        yield [PARAMS, src.name, target, param, kind]
    elif isinstance(src, FromStep):
        producer = nodes.get(src.step)
        if producer is not None and is_whole_tuple(producer, src.index, src.field):
            for i in range(len(producer.task.outputs)):
                yield [src.step, f"return[{i}]", target, f"{param}[{i}]", kind]
        else:
            yield [src.step, src.slot, target, param, kind]
    elif isinstance(src, Gather):
        for i, item in enumerate(src.items):
            yield from _edges(nodes, item, target, f"{param}{src.label(i)}", kind)
    elif isinstance(src, Choice):
        yield from _edges(nodes, src.condition, target, param, "condition")
        yield from _edges(nodes, src.then, target, param, "then")
        yield from _edges(nodes, src.otherwise, target, param, "otherwise")
    # A Constant was written in the body: it came from no step and no parameter.


def _node_row(node: Node, parent: str | None = None) -> list:
    kind = "map" if node.mapped and node.map_index is None else "task"
    return [node.name, node.task.qualname, node.site, kind, parent, None]


def _node_edges(nodes: dict, node: Node) -> Iterator[list]:
    """Every edge into `node`: its inputs, the conditions guarding it, the steps ordered before it."""
    for param, src in node.inputs:
        yield from _edges(nodes, src, node.name, param, DATA)
    for guard in node.guards:
        yield from _edges(nodes, guard.condition, node.name, f"when={guard.expected}", GUARD)
    for earlier in node.after:
        yield [earlier, "", node.name, "after", ORDER]


def workflow_spec(graph: Graph, on_failure=None, site: str | None = None) -> str:
    """The record of a traced graph, as compact JSON.

    >>> from ledgerflow.engine.graph import Graph
    >>> workflow_spec(Graph(name="empty", params=(), nodes=(), output=None, output_type=None))
    '{"edges":[],"nodes":[]}'
    """
    nodes = {n.name: n for n in graph.nodes}
    edges = [edge for node in graph.nodes for edge in _node_edges(nodes, node)]
    out = graph.output
    if isinstance(out, tuple):
        for i, src in enumerate(out):
            edges.extend(_edges(nodes, src, OUTPUTS, f"return[{i}]", DATA))
    elif out is not None:
        edges.extend(_edges(nodes, out, OUTPUTS, "return", DATA))
    rows = [_node_row(n) for n in graph.nodes]
    if on_failure is not None:  # the failure handler: built with the workflow, run only if a step fails for good
        rows.append([HANDLER_STEP, on_failure.qualname, site, "task", None, None])
    return _dumps(rows, edges)


def part_spec(nodes: list, output: Source, parent: str) -> str:
    """The steps a dynamic step's body added while the run ran, their edges, and the edge from
    what the body returned into the dynamic step (param "return"); merged with the graph as built."""
    by_name = {n.name: n for n in nodes}
    edges = [edge for node in nodes for edge in _node_edges(by_name, node)]
    edges.extend(_edges(by_name, output, parent, "return", DATA))
    return _dumps([_node_row(n, parent) for n in nodes], edges)


def map_spec(parent: Node, count: int) -> str:
    """The part of the graph a map adds when it expands: `count` elements, `parent[i]`, each
    fed every parameter of the map and feeding its result back into the map's list as `[i]`.
    Recorded as the map and its count, which say all of that (readers expand it)."""
    return json.dumps({"map": [parent.name, count, [name for name, _ in parent.inputs]]}, separators=(",", ":"))


def _dumps(nodes: list, edges: list) -> str:
    return json.dumps({"nodes": nodes, "edges": edges}, separators=(",", ":"), sort_keys=True)

