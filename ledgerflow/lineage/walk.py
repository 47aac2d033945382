"""Upstream and downstream walks over the lineage graph, across executions.

The graph is bipartite: steps consume and produce artifacts (table `edges`). An artifact
produced by one execution and consumed by another links the two, so a walk follows
digests globally. Depth counts hops: from an artifact, its producing steps are at depth
1 and their inputs at depth 2; from a step, its inputs (or outputs) are at depth 1.

How it stays fast on a large ledger (1M steps, 3M edges): a walk alternates two lookups.
"Which steps produced/consumed these digests?" goes through the ART index on
`edges.dkey` (point lookups; a hash join when the frontier is large). "What did these
steps consume/produce?" loads each execution's edges once, by its `seq` range, which
zone maps answer without reading the rest of the file; after that, hops inside an
execution cost nothing. So a walk costs about one index lookup per level plus one range
scan per execution it touches.
"""

from __future__ import annotations

import gc
from collections import defaultdict, deque

import pyarrow as pa

from ledgerflow.lineage.refs import Resolved
from ledgerflow.lineage.schema import OUTPUTS_STEP, PARAMS_STEP, key64
from ledgerflow.lineage.values import ArtifactInfo, Lineage, LineageEdge, LineageNode
from ledgerflow.lineage.writer import lookup_by_key

_PSEUDO = (PARAMS_STEP, OUTPUTS_STEP)
_INLINE_KEYS = 500  # lookup_by_key's own threshold for an inline IN list
_MANY = 16  # above this many executions at once, one scan beats per-execution range reads


class ExecutionRanges:
    """Each execution's [first, last] seq: every row it wrote lies in between."""

    def __init__(self, con):
        self.con = con
        self._ranges: dict = {}

    def get(self, execution_ids) -> dict:
        missing = [e for e in set(execution_ids) if e not in self._ranges]
        if missing:
            rows = self.con.execute(
                """
                SELECT execution_id, min(seq), max(seq), bool_or(state <> 'running')
                FROM execution_log WHERE execution_id IN (SELECT unnest(?)) GROUP BY 1
                """,
                [missing],
            ).fetchall()
            for e, lo, hi, finished in rows:
                # A running execution may still be writing: no upper bound.
                self._ranges[e] = (lo, hi if finished else 2**62)
        return {e: self._ranges[e] for e in execution_ids if e in self._ranges}


def rows_of_executions(con, ranges: ExecutionRanges, table: str, cols: str, execution_ids) -> dict:
    """execution_id -> list of row tuples (cols) of `table`, in seq order."""
    out: dict = defaultdict(list)
    ids = list(dict.fromkeys(execution_ids))
    if not ids:
        return out
    if len(ids) <= _MANY:
        for e, (lo, hi) in ranges.get(ids).items():
            out[e].extend(con.execute(
                f"SELECT {cols} FROM {table} WHERE seq BETWEEN ? AND ? AND execution_id = ? ORDER BY seq",
                [lo, hi, e],
            ).fetchall())
    else:
        for row in con.execute(
            f"SELECT execution_id, {cols} FROM {table} WHERE execution_id IN (SELECT unnest(?)) ORDER BY seq",
            [ids],
        ).fetchall():
            out[row[0]].append(row[1:])
    return out


class _Graph:
    """The part of the edges table a walk has looked at, indexed both ways."""

    def __init__(self, con):
        self.con = con
        self.ranges = ExecutionRanges(con)
        self.by_step: dict = {}  # (execution_id, step) -> [(direction, name, digest)]
        self.by_digest: dict = defaultdict(set)  # digest -> {(execution_id, step, direction, name)}
        self.loaded: set = set()
        self.by_seq: dict = {}  # seq -> (execution_id, step, direction, name, digest) of the rows loaded

    def _add(self, e, step, direction, name, digest) -> None:
        self.by_step.setdefault((e, step), []).append((direction, name, digest))
        self.by_digest[digest].add((e, step, direction, name))

    def load(self, execution_ids) -> None:
        """Read every edge of these executions (once each), by their seq ranges."""
        todo = {e for e in execution_ids if e not in self.loaded}
        if not todo:
            return
        by_step, by_digest, by_seq = self.by_step, self.by_digest, self.by_seq
        for e, rows in rows_of_executions(self.con, self.ranges, "edges", "seq, step, direction, name, digest", todo).items():
            for seq, step, direction, name, digest in rows:
                by_seq[seq] = (e, step, direction, name, digest)
                key = (e, step)
                lst = by_step.get(key)
                if lst is None:
                    lst = by_step[key] = []
                lst.append((direction, name, digest))
                by_digest[digest].add((e, step, direction, name))
        self.loaded.update(todo)

    def step_edges(self, step: tuple, direction: str) -> list:
        seen, out = set(), []
        for d, name, digest in self.by_step.get(step, ()):
            # Retries repeat a step's inputs: list each (name, digest) once.
            if d == direction and (name, digest) not in seen:
                seen.add((name, digest))
                out.append((name, digest))
        return out

    def steps_of(self, execution_id: str) -> list:
        self.load([execution_id])
        steps = {s for (e, s) in self.by_step if e == execution_id and s not in _PSEUDO}
        for (step,) in rows_of_executions(self.con, self.ranges, "step_log", "step", [execution_id])[execution_id]:
            steps.add(step)
        return sorted(steps)

    def local_edges(self, digest: str, direction: str) -> list:
        """Edges touching `digest` among the executions loaded so far (no query)."""
        return [(e, s, name) for (e, s, d, name) in self.by_digest.get(digest, ()) if d == direction]

    def global_edges(self, digests) -> dict:
        """digest -> [(execution_id, step, direction, name)] over the whole ledger: one query."""
        wanted = set(digests)
        out: dict = {d: [] for d in wanted}
        keys = [key64(d) for d in wanted]
        if len(keys) <= _INLINE_KEYS:
            found = lookup_by_key(self.con, "edges", "dkey", keys, "execution_id, step, direction, name, digest")
            rows = zip(*(found.column(i).to_pylist() for i in range(5))) if found is not None else ()
        else:
            # Many keys: a hash join over the whole table. Join on the key alone (a scan of
            # two integer columns), then read in full only the rows not already loaded;
            # most of them usually are (the hops inside the executions being walked).
            self.con.register("_wanted_keys", pa.table({"k": pa.array(keys, pa.int64())}))
            try:
                seqs = self.con.sql(
                    "SELECT seq FROM edges WHERE dkey IN (SELECT k FROM _wanted_keys)"
                ).to_arrow_table().column(0).to_pylist()
            finally:
                self.con.unregister("_wanted_keys")
            by_seq = self.by_seq
            rows = [by_seq[q] for q in seqs if q in by_seq]
            remote = [q for q in seqs if q not in by_seq]
            if remote:
                found = lookup_by_key(self.con, "edges", "seq", remote, "execution_id, step, direction, name, digest")
                rows += list(zip(*(found.column(i).to_pylist() for i in range(5))))
        for e, s, d, name, digest in rows:
            if digest in wanted:
                out[digest].append((e, s, d, name))
        return out


def _step_node_ref(execution_id: str, step: str) -> tuple:
    if step in _PSEUDO:
        return ("execution", execution_id)
    return ("step", f"{execution_id}:{step}")


def walk(con, root: Resolved, direction: str, depth: int | None = None) -> Lineage:
    """Everything upstream (what `root` came from) or downstream (what was made from it).

    A label-correcting breadth-first search. Hops inside executions already read are
    free; the question "who else, anywhere, produced/consumed these digests?" is asked
    in one batched query whenever the cheap hops run out, so a walk costs a query per
    round of cross-execution links rather than one per level. A node first reached by a
    long path and later by a shorter one gets the shorter depth, and its neighbours are
    revisited, so depths are exact shortest hop counts.
    """
    if depth is not None and depth < 0:
        raise ValueError("depth must be >= 0")
    # A big walk makes tens of thousands of small objects that all live until it returns:
    # the cyclic GC would scan them again and again for nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _walk(con, root, direction, depth)
    finally:
        if enabled:
            gc.enable()


def _walk(con, root: Resolved, direction: str, depth: int | None) -> Lineage:
    g = _Graph(con)
    upstream = direction == "upstream"
    # Upstream, we look for the steps that produced an artifact and then what they consumed.
    to_steps, from_steps = ("produced", "consumed") if upstream else ("consumed", "produced")
    dist: dict = {}  # node key -> depth
    edges: set = set()  # (src key, dst key, name), in data-flow direction
    # Which executions consumed each artifact we reached. An execution's parameters are
    # "produced" by its @params pseudo-step, but only for that execution: upstream of a
    # dataset consumed in E1, E2's receiving it as a parameter is no part of its history.
    consumed_in: dict = defaultdict(set)
    fetched: dict = {}  # digest -> global edges, once asked
    pending: set = set()  # digests whose global edges we still need
    queue: deque = deque()

    def reach(key, d):
        if key in dist and dist[key] <= d:
            return
        dist[key] = d
        if depth is None or d < depth:
            queue.append(key)

    def link_step(e, s, name, digest, d):
        if upstream and s == PARAMS_STEP and digest != root.digest and e not in consumed_in[digest]:
            return
        skey = _step_node_ref(e, s)
        akey = ("artifact", digest)
        edges.add((skey, akey, name) if upstream else (akey, skey, name))
        if s not in _PSEUDO or root.kind == "execution":
            reach(skey, d + 1)
        else:
            dist[skey] = min(dist.get(skey, d + 1), d + 1)  # a pseudo-step ends the walk

    if root.kind == "artifact":
        reach(("artifact", root.digest), 0)
    elif root.kind == "step":
        g.load([root.execution_id])
        reach(_step_node_ref(root.execution_id, root.step), 0)
    else:
        dist[("execution", root.execution_id)] = 0
        for s in g.steps_of(root.execution_id):
            reach(("step", f"{root.execution_id}:{s}"), 0)

    while queue or pending:
        if not queue:
            batch, pending = pending, set()
            fetched.update(g.global_edges(batch))
            # The seq ranges of every execution these edges lead to, in one query rather
            # than one per execution as the walk reaches them.
            g.ranges.get({e for digest in batch for e, _, dirn, _ in fetched[digest] if dirn == to_steps})
            for digest in batch:
                d = dist[("artifact", digest)]
                for e, s, dirn, name in fetched[digest]:
                    if dirn == to_steps:
                        link_step(e, s, name, digest, d)
            continue
        kind, ref = key = queue.popleft()
        d = dist[key]
        if kind == "artifact":
            for e, s, name in g.local_edges(ref, to_steps):
                link_step(e, s, name, ref, d)
            if ref in fetched:
                for e, s, dirn, name in fetched[ref]:
                    if dirn == to_steps:
                        link_step(e, s, name, ref, d)
            else:
                pending.add(ref)
        else:
            e, s = (ref, None) if kind == "execution" else ref.split(":", 1)
            if s is None:
                continue
            if e not in g.loaded:
                g.load([e])
            for name, digest in g.step_edges((e, s), from_steps):
                consumed_in[digest].add(e)
                akey = ("artifact", digest)
                edges.add((akey, key, name) if upstream else (key, akey, name))
                reach(akey, d + 1)

    if upstream:
        _add_code_snapshots(con, dist, edges)
    if depth is not None:
        dist = {k: v for k, v in dist.items() if v <= depth}
        edges = {x for x in edges if x[0] in dist and x[1] in dist}
    return Lineage(
        root=root.ref,
        direction=direction,
        depth_limit=depth,
        nodes=_describe(con, g, dist),
        edges=tuple(LineageEdge(s, d, n) for s, d, n in sorted((s[1], d[1], n) for s, d, n in edges)),
    )


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
        edges.add((ckey, ekey, "code"))


def _describe(con, g: _Graph, nodes: dict) -> tuple:
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

