"""Upstream and downstream walks over the lineage graph, by recorded provenance.

The ledger records occurrences: each output a step produced (execution, step, output
name, digest), and for each input a step consumed, the occurrence it came from (table
`edges`, columns src_*; see docs/ledger.md). A walk follows those records and nothing
else: two steps that happen to produce the same bytes (the value `True`, an accuracy of
0.99) are never joined by a walk. Executions are linked only where the ledger recorded a
link: a cache hit and the step whose outputs it reused, a handle passed into a run that
carries the occurrence it came from, a replay and its original.

The one content question is the root: upstream of a digest starts at every occurrence
that produced those bytes, downstream of a digest at every step that consumed them.

Depth counts hops: from an artifact, its producing steps are at depth 1 and their inputs
at depth 2; from a step, its inputs (or outputs) are at depth 1.

Executions recorded before schema 4 have no sources: inside such an execution an input
is linked to the steps of the same execution that produced its digest, and the edge is
marked "inferred"; such links never cross executions.

How it stays fast on a large ledger (1M steps, 3M edges): each execution's edges are read
once, by its `seq` range (zone maps skip the rest of the file), and every hop inside it
is then a dictionary lookup. Links into other executions are found by one query per
round, over rows whose src_execution_id is set, which is NULL in nearly every row group.
"""

from __future__ import annotations

import gc
from collections import defaultdict, deque


import attrs

from ledgerflow.engine.events import FROM_CACHE
from ledgerflow.lineage.refs import Resolved
from ledgerflow.lineage.schema import OUTPUTS_STEP, PARAMS_STEP, key64
from ledgerflow.lineage.values import ArtifactInfo, Lineage, LineageEdge, LineageNode
from ledgerflow.lineage.rows import _MANY, ExecutionRanges, lookup_by_key, rows_of_executions

_PSEUDO = (PARAMS_STEP, OUTPUTS_STEP)
INFERRED = "inferred"  # how an edge of an execution recorded before schema 4 was found
_INLINE_KEYS = 500  # lookup_by_key's own threshold for an inline IN list


_EDGE_COLS = "step, direction, name, digest, src_execution_id, src_step, src_name, how"


class _Edges:
    """The edges of the executions a walk has read, indexed by step and by source occurrence."""

    def __init__(self, con):
        self.con = con
        self.ranges = ExecutionRanges(con)
        self.inputs: dict = {}  # (e, step) -> {(name, digest): origin or None}, origin = (e, step, name, how)
        self.outputs: dict = {}  # (e, step) -> {(name, digest): origin or None} (a cache hit's, a reference's)
        self.consumers: dict = defaultdict(list)  # occurrence (e, step, name) -> [(e2, step2, name2, direction, how)]
        self.produced_by: dict = {}  # e -> digest -> [(step, name)], for executions without recorded sources
        self.loaded: set = set()
        self.asked_into: set = set()  # executions whose inbound cross-execution links were asked for

    def load(self, execution_ids) -> None:
        todo = {e for e in execution_ids if e not in self.loaded}
        if not todo:
            return
        self.loaded.update(todo)
        recorded = {e for e, rows in rows_of_executions(self.con, self.ranges, "graph_log", "part", todo).items()
                    if rows}
        for e, rows in rows_of_executions(self.con, self.ranges, "edges", _EDGE_COLS, todo).items():
            self._index(e, rows, inferred=e not in recorded)

    def _index(self, e, rows, inferred: bool) -> None:
        inputs, outputs, consumers = self.inputs, self.outputs, self.consumers
        for step, direction, name, digest, se, ss, sn, how in rows:
            origin = None if ss is None else (se or e, ss, sn, how)
            table = inputs if direction == "consumed" else outputs
            slot = table.get((e, step))
            if slot is None:
                slot = table[(e, step)] = {}
            slot[(name, digest)] = origin  # a retry repeats its inputs: one entry each
            if origin is not None:
                consumers[origin[:3]].append((e, step, name, direction, how))
        if inferred:
            # Pre-schema-4 rows name no source: an input is taken to come from the steps of
            # the same execution that produced its digest (marked inferred, never across runs).
            by_digest: dict = defaultdict(list)
            for step, direction, name, digest, *_ in rows:
                if direction == "produced":
                    by_digest[digest].append((step, name))
            self.produced_by[e] = by_digest
            for step, direction, name, digest, _, ss, _, _ in rows:
                if direction == "consumed" and ss is None:
                    for p_step, p_name in by_digest.get(digest, ()):
                        if p_step != step:
                            consumers[(e, p_step, p_name)].append((e, step, name, "consumed", INFERRED))

    def sources(self, e, step, name, digest, origin) -> list:
        """The occurrences an input came from: its recorded origin, or the inferred producers."""
        if origin is not None:
            return [origin]
        by_digest = self.produced_by.get(e)
        if not by_digest:
            return []
        return [(e, p_step, p_name, INFERRED) for p_step, p_name in by_digest.get(digest, ()) if p_step != step]

    def load_links_into(self, execution_ids) -> set:
        """Rows of other executions whose source lies in these executions (cache hits of their
        steps, handles passed on by reference, replays): index them; return their executions."""
        todo = [e for e in set(execution_ids) if e not in self.asked_into]
        if not todo:
            return set()
        self.asked_into.update(todo)
        rows = self.con.execute(
            "SELECT DISTINCT execution_id FROM edges WHERE src_execution_id IN (SELECT unnest(?))", [todo]
        ).fetchall()
        found = {r[0] for r in rows} - self.loaded
        self.load(found)
        return found

    def steps_of(self, execution_id: str) -> list:
        self.load([execution_id])
        steps = {s for (e, s) in list(self.inputs) + list(self.outputs) if e == execution_id and s not in _PSEUDO}
        for (step,) in rows_of_executions(self.con, self.ranges, "step_log", "step", [execution_id])[execution_id]:
            steps.add(step)
        return sorted(steps)


def producers_of(con, digest: str) -> list:
    """Every occurrence that produced `digest`, anywhere in the ledger: (e, step, name)."""
    found = lookup_by_key(con, "edges", "dkey", [key64(digest)], "execution_id, step, direction, name, digest")
    if found is None:
        return []
    return [(e, s, n) for e, s, d, n, g in zip(*(found.column(i).to_pylist() for i in range(5)))
            if g == digest and d == "produced"]


def consumers_of(con, digest: str) -> list:
    """Every step (or execution output) that consumed `digest`, anywhere: (e, step, name)."""
    found = lookup_by_key(con, "edges", "dkey", [key64(digest)], "execution_id, step, direction, name, digest")
    if found is None:
        return []
    return [(e, s, n) for e, s, d, n, g in zip(*(found.column(i).to_pylist() for i in range(5)))
            if g == digest and d == "consumed"]


def _step_node_ref(execution_id: str, step: str) -> tuple:
    if step in _PSEUDO:
        return ("execution", execution_id)
    return ("step", f"{execution_id}:{step}")


def walk(con, root: Resolved, direction: str, depth: int | None = None, same_content: bool = False) -> Lineage:
    """Everything upstream (what `root` came from) or downstream (what was made from it),
    following recorded provenance only (see the module docstring).

    With `same_content`, the result also lists, apart and unwalked, other steps anywhere
    that produced the same bytes as a handle the walk reached.
    """
    if depth is not None and depth < 0:
        raise ValueError("depth must be >= 0")
    # A big walk makes tens of thousands of small objects that all live until it returns:
    # the cyclic GC would scan them again and again for nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        walker = _Walk(con, direction, depth)
        lineage = walker.run(root)
        if same_content:
            lineage = attrs.evolve(lineage, same_content=walker.same_content(lineage))
        return lineage
    finally:
        if enabled:
            gc.enable()


class _Walk:
    """One breadth-first walk. Depths are exact shortest hop counts: a node first reached by
    a long path and later by a shorter one gets the shorter depth and is visited again."""

    def __init__(self, con, direction: str, depth: int | None):
        self.con = con
        self.g = _Edges(con)
        self.upstream = direction == "upstream"
        self.direction = direction
        self.depth = depth
        self.dist: dict = {}  # node key -> depth
        self.edges: set = set()  # (source key, target key, name, how), in data-flow direction
        self.queue: deque = deque()
        self.occurrences: dict = {}  # downstream: occurrence reached -> (artifact key, depth)

    def reach(self, key, d) -> None:
        if key in self.dist and self.dist[key] <= d:
            return
        self.dist[key] = d
        if self.depth is None or d < self.depth:
            self.queue.append(key)

    def end_at(self, key, d) -> None:
        """A node the walk shows but does not go past (an execution's parameters or outputs)."""
        self.dist[key] = min(self.dist.get(key, d), d)

    def link(self, source, target, name, how) -> None:
        self.edges.add((source, target, name, how))

    def run(self, root: Resolved) -> Lineage:
        con, g = self.con, self.g
        if root.kind == "artifact":
            akey = ("artifact", root.digest)
            self.dist[akey] = 0
            if self.upstream:
                found = producers_of(con, root.digest)
                g.load({e for e, _, _ in found})
                for e, s, n in found:
                    self.came_from(akey, (e, s, n, None), 0)
            else:
                found = consumers_of(con, root.digest)
                g.load({e for e, _, _ in found})
                for e, s, n in found:
                    self.consumed(akey, (e, s, n, "consumed", None), 0)
                # An execution that took these bytes as a parameter: what it made of them.
                for e, s, n in producers_of(con, root.digest):
                    if s == PARAMS_STEP:
                        g.load([e])
                        self.occurrence((e, s, n), akey, 0)
        elif root.kind == "step":
            g.load([root.execution_id])
            self.reach(_step_node_ref(root.execution_id, root.step), 0)
        else:
            self.dist[("execution", root.execution_id)] = 0
            for s in g.steps_of(root.execution_id):
                self.reach(("step", f"{root.execution_id}:{s}"), 0)
        while True:
            while self.queue:
                self.visit(self.queue.popleft())
            if self.upstream or not self.more_links():
                break
        if self.upstream:
            _add_code_snapshots(con, self.dist, self.edges)
        dist, edges = self.dist, self.edges
        if self.depth is not None:
            dist = {k: v for k, v in dist.items() if v <= self.depth}
            edges = {x for x in edges if x[0] in dist and x[1] in dist}
        return Lineage(
            root=root.ref,
            direction=self.direction,
            depth_limit=self.depth,
            nodes=_describe(con, self.g, dist),
            edges=tuple(LineageEdge(s, t, n, h) for s, t, n, h in
                        sorted(((s[1], t[1], n, h) for s, t, n, h in edges), key=lambda x: x[:3])),
        )

    def visit(self, key) -> None:
        kind, ref = key
        if kind != "step":
            return
        d = self.dist[key]
        e, s = ref.split(":", 1)
        self.g.load([e])
        if self.upstream:
            for (name, digest), origin in self.g.inputs.get((e, s), {}).items():
                akey = ("artifact", digest)
                self.link(akey, key, name, origin[3] if origin else None)
                self.reach(akey, d + 1)
                for source in self.g.sources(e, s, name, digest, origin):
                    self.came_from(akey, source, d + 1)
            # A cache hit ran nothing: the step whose outputs it reused made them, from its inputs.
            for (name, digest), origin in self.g.outputs.get((e, s), {}).items():
                if origin is not None and origin[3] == FROM_CACHE:
                    self.g.load([origin[0]])
                    original = _step_node_ref(origin[0], origin[1])
                    self.link(original, key, "cache", FROM_CACHE)
                    self.reach(original, d + 1)
        else:
            for (name, digest), _ in self.g.outputs.get((e, s), {}).items():
                akey = ("artifact", digest)
                self.link(key, akey, name, None)
                self.reach(akey, d + 1)
                self.occurrence((e, s, name), akey, d + 1)

    def came_from(self, akey, source, d) -> None:
        """Upstream: `akey` is the occurrence `source` (e, step, name, how); walk on to its maker."""
        e, s, n, how = source
        self.g.load([e])
        if s == PARAMS_STEP:
            ekey = ("execution", e)
            self.link(ekey, akey, n, how)
            self.end_at(ekey, d + 1)
            # A parameter that came from another execution (a handle passed on, a replay).
            for (name, _), origin in self.g.outputs.get((e, s), {}).items():
                if name == n and origin is not None:
                    self.came_from(akey, origin, d + 1)
            return
        skey = ("step", f"{e}:{s}")
        self.link(skey, akey, n, how)
        self.reach(skey, d + 1)

    def occurrence(self, occ, akey, d) -> None:
        """Downstream: `akey` was produced as occurrence `occ`; reach everything recorded as taking it."""
        known = self.occurrences.get(occ)
        if known is not None and known[1] <= d:
            return
        self.occurrences[occ] = (akey, d)
        for consumer in self.g.consumers.get(occ, ()):
            self.consumed(akey, consumer, d)

    def consumed(self, akey, consumer, d) -> None:
        e, s, n, direction, how = consumer
        if s == OUTPUTS_STEP:
            ekey = ("execution", e)
            self.link(akey, ekey, n, how)
            self.end_at(ekey, d + 1)
        elif s == PARAMS_STEP:
            # Passed into another run as a parameter: what that run made of it is downstream too.
            ekey = ("execution", e)
            self.link(akey, ekey, n, how)
            self.end_at(ekey, d + 1)
            self.occurrence((e, s, n), akey, d)
        else:
            skey = ("step", f"{e}:{s}")
            self.link(akey, skey, n, how)
            self.reach(skey, d + 1)

    def more_links(self) -> bool:
        """Downstream: load the executions that recorded a link into those reached so far; True
        if that reached anything new."""
        reached = {occ[0] for occ in self.occurrences}
        if not self.g.load_links_into(reached):
            return False
        for occ, (akey, d) in list(self.occurrences.items()):
            for consumer in self.g.consumers.get(occ, ()):
                if consumer[0] != occ[0]:
                    self.consumed(akey, consumer, d)
        return True

    def same_content(self, lineage: Lineage) -> tuple:
        """Steps anywhere that produced the bytes of a handle in `lineage` without a recorded link to it."""
        walked = {n.ref for n in lineage.nodes if n.kind == "step"}
        out = {}
        for node in lineage.nodes:
            if node.kind != "artifact" or node.artifact is None or node.artifact.kind in (None, "value"):
                continue
            for e, s, _ in producers_of(self.con, node.ref):
                ref = f"{e}:{s}"
                if s not in _PSEUDO and ref not in walked:
                    out[ref] = node.depth + 1
        steps = _describe(self.con, self.g, {("step", ref): d for ref, d in out.items()})
        return steps


def _add_code_snapshots(con, dist: dict, edges: set) -> None:
    """Upstream of anything a step made is the code that step ran: each execution reached
    brings its code snapshot (a Directory in the store) in, one hop past its nearest step."""
    nearest: dict = {}
    for (kind, ref), d in dist.items():
        if kind in ("step", "execution"):
            e = ref.split(":", 1)[0]
            nearest[e] = min(nearest.get(e, d), d)
    if not nearest:
        return
    rows = con.execute(
        "SELECT execution_id, any_value(code_digest) FROM execution_log "
        "WHERE execution_id IN (SELECT unnest(?)) AND code_digest IS NOT NULL GROUP BY 1",
        [list(nearest)],
    ).fetchall()
    for e, code in rows:
        ekey, ckey = ("execution", e), ("code", code)
        dist[ekey] = min(dist.get(ekey, nearest[e] + 1), nearest[e] + 1)
        dist[ckey] = min(dist.get(ckey, nearest[e] + 2), nearest[e] + 2)
        edges.add((ckey, ekey, "code", None))


def _describe(con, g: _Edges, nodes: dict) -> tuple:
    """Attach labels, statuses and artifact details to the nodes found."""
    digests = [ref for (kind, ref) in nodes if kind == "artifact"]
    info: dict = {}
    cols = "digest, kind, type, size, uri, value"
    if len(digests) > _INLINE_KEYS and len(g.loaded) <= _MANY:
        # Most artifacts of a big walk were first recorded by the executions it loaded:
        # read theirs by seq range (zone maps) instead of a join over every artifact.
        wanted = set(digests)
        for e, (lo, hi) in g.ranges.get(g.loaded).items():
            for row in con.execute(f"SELECT {cols} FROM artifacts WHERE seq BETWEEN ? AND ?", [lo, hi]).fetchall():
                if row[0] in wanted and row[0] not in info:
                    info[row[0]] = ArtifactInfo(*row)
        digests = [d for d in digests if d not in info]
    found = lookup_by_key(con, "artifacts", "dkey", [key64(d) for d in digests], cols)
    if found is not None:
        for row in zip(*(found.column(i).to_pylist() for i in range(6))):
            if row[0] not in info:
                info[row[0]] = ArtifactInfo(*row)
    step_execs = {ref.split(":", 1)[0] for (kind, ref) in nodes if kind == "step"}
    steps: dict = {}
    for e, rows in rows_of_executions(con, g.ranges, "step_log", "step, task, state", step_execs).items():
        for step, task, state in rows:
            steps[f"{e}:{step}"] = (task, state)  # seq order: the last row wins
    exec_ids = [ref for (kind, ref) in nodes if kind == "execution"]
    execs = {}
    if exec_ids:
        for e, wf, state in con.execute(
            """
            SELECT execution_id, any_value(workflow) FILTER (WHERE workflow IS NOT NULL),
                   arg_max(state, seq)
            FROM execution_log WHERE execution_id IN (SELECT unnest(?)) GROUP BY 1
            """,
            [exec_ids],
        ).fetchall():
            execs[e] = (wf, state)
    out = []
    for (kind, ref), depth in sorted(nodes.items(), key=_node_order):
        if kind == "artifact":
            a = info.get(ref)
            out.append(LineageNode(kind, ref, depth, (a.type or a.kind or "") if a else "", None, a))
        elif kind == "step":
            task, state = steps.get(ref, (None, None))
            out.append(LineageNode(kind, ref, depth, task or "", state))
        elif kind == "code":
            out.append(LineageNode(kind, ref, depth, "code snapshot (Directory of the source files)", None))
        else:
            wf, state = execs.get(ref, (None, None))
            out.append(LineageNode(kind, ref, depth, wf or "", state))
    return tuple(out)


def _node_order(item):
    (kind, ref), depth = item
    return depth, kind, ref

