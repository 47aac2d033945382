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
once, by its `seq` range (zone maps skip the rest of the file), into Arrow; steps and
occurrences become integers (one dictionary), and a walk is a breadth-first search over
numpy arrays, one vector operation per level for every node at that depth. Links into
other executions are found by one query per round, over rows whose src_execution_id is
set, which is NULL in nearly every row group. The result is columnar too (`Lineage`
holds Arrow tables; its `nodes` and `edges` are built only when asked for).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledgerflow.engine.events import FROM_CACHE
from ledgerflow.errors import QueryError
from ledgerflow.lineage.refs import Resolved
from ledgerflow.lineage.rows import MANY_EXECUTIONS, ExecutionRanges, lookup_by_key, read_executions, spans
from ledgerflow.lineage.schema import OUTPUTS_STEP, PARAMS_STEP, key64
from ledgerflow.lineage.values import EDGE_SCHEMA, NODE_SCHEMA, Lineage
from ledgerflow.types.kinds import VALUE_KIND

_PSEUDO = (PARAMS_STEP, OUTPUTS_STEP)
INFERRED = "inferred"  # how an edge of an execution recorded before schema 4 was found
# No attempt column: a retry repeats its step's inputs, which DISTINCT folds into one row.
_EDGE_COLS = "DISTINCT execution_id, step, direction, name, digest, src_execution_id, src_step, src_name, how"
_NAME_SEP = "\x1f"  # between a step's ref and an output name in an occurrence key (names may hold ':')
_FAR = np.iinfo(np.int64).max  # the depth of a node not reached


def producers_of(con, digest: str) -> list:
    """Every occurrence that produced `digest`, anywhere in the ledger: (e, step, name)."""
    return _occurrences(_digest_rows(con, digest), "produced")


def consumers_of(con, digest: str) -> list:
    """Every step (or execution output) that consumed `digest`, anywhere: (e, step, name)."""
    return _occurrences(_digest_rows(con, digest), "consumed")


def _digest_rows(con, digest: str) -> pa.Table:
    """(execution_id, step, direction, name) of every edge of `digest`: one index lookup by its key."""
    cols = "execution_id, step, direction, name, digest"
    found = lookup_by_key(con, "edges", "dkey", [key64(digest)], cols)
    if found is None:
        return pa.table({c: pa.array([], pa.string()) for c in cols.split(", ")})
    return found.filter(pc.equal(found.column("digest"), digest))  # a 64-bit key may collide


def _occurrences(rows: pa.Table, direction: str) -> list:
    rows = rows.filter(pc.equal(rows.column("direction"), direction))
    return list(zip(*(rows.column(c).to_pylist() for c in ("execution_id", "step", "name"))))


def _executions_to_read(con, digest: str, upstream: bool) -> set:
    """The executions a walk from `digest` starts in: upstream, those that produced it;
    downstream, those that consumed it or took it as a parameter."""
    rows = _digest_rows(con, digest)
    produced = pc.equal(rows.column("direction"), "produced")
    keep = produced if upstream else pc.or_(pc.invert(produced), pc.equal(rows.column("step"), PARAMS_STEP))
    return set(pc.unique(rows.filter(keep).column("execution_id")).to_pylist())


class _Edges:
    """The edges of the executions a walk has read, as flat arrays over one dictionary of keys.

    A step's key is its ref `EXECUTION_ID:step`; an occurrence's is that ref, a separator and
    the output name. Each row has the id of its step, of its own occurrence (produced rows)
    and of the occurrence it came from (rows with a source; -1 otherwise).
    """

    def __init__(self, con):
        self.con = con
        self.ranges = ExecutionRanges(con)
        self.loaded: set = set()
        self.asked_into: set = set()
        self._parts: list = []
        self._built = False

    def load(self, execution_ids) -> bool:
        """Read the edges of the executions not read yet; True if there were any."""
        todo = sorted({e for e in execution_ids if e not in self.loaded})
        if not todo:
            return False
        self.loaded.update(todo)
        recorded = {e for (e,) in self.con.execute(
            "SELECT DISTINCT execution_id FROM graph_log WHERE execution_id IN (SELECT unnest(?))", [todo]).fetchall()}
        table = read_executions(self.con, self.ranges, "edges", _EDGE_COLS, todo)
        old = [e for e in todo if e not in recorded]
        if old:
            table = pa.concat_tables([table, _inferred_sources(table, old)])
        self._parts.append(table)
        self._built = False
        return True

    def load_links_into(self, execution_ids) -> bool:
        """Read the executions that recorded taking something from these (cache hits of their
        steps, handles passed on by reference, replays); True if that read anything new."""
        todo = [e for e in set(execution_ids) if e not in self.asked_into]
        if not todo:
            return False
        self.asked_into.update(todo)
        found = {r[0] for r in self.con.execute(
            "SELECT DISTINCT execution_id FROM edges WHERE src_execution_id IN (SELECT unnest(?))", [todo]).fetchall()}
        return self.load(found)

    def build(self) -> None:
        """The arrays the search runs on, for every row read so far."""
        if self._built:
            return
        t = pa.concat_tables(self._parts)
        self.table = t
        e, step, name = t.column("execution_id"), t.column("step"), t.column("name")
        step_ref = pc.binary_join_element_wise(e, step, ":")
        occ = pc.binary_join_element_wise(step_ref, name, _NAME_SEP)
        src_e = pc.coalesce(t.column("src_execution_id"), e)
        src = pc.binary_join_element_wise(pc.binary_join_element_wise(src_e, t.column("src_step"), ":"),
                                          t.column("src_name"), _NAME_SEP)  # null where no source
        n = len(t)
        keys = pc.dictionary_encode(pa.chunked_array(step_ref.chunks + occ.chunks + src.chunks)).combine_chunks()
        self.keys = keys.dictionary
        ids = np.asarray(pc.fill_null(keys.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        self.step_id, self.occ_id, self.src_id = ids[:n], ids[n:2 * n], ids[2 * n:]
        digests = pc.dictionary_encode(t.column("digest")).combine_chunks()
        self.digests = digests.dictionary
        self.digest_id = np.asarray(digests.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        self.produced = np.asarray(pc.equal(t.column("direction"), "produced").to_numpy(zero_copy_only=False))
        self.params = np.asarray(pc.equal(step, PARAMS_STEP).to_numpy(zero_copy_only=False))
        self.outputs = np.asarray(pc.equal(step, OUTPUTS_STEP).to_numpy(zero_copy_only=False))
        self.cache = np.asarray(pc.fill_null(pc.equal(t.column("how"), FROM_CACHE), False)
                                .to_numpy(zero_copy_only=False))
        hows = pc.dictionary_encode(pc.fill_null(t.column("how"), "")).combine_chunks()
        self.how_code = np.asarray(hows.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        # occurrence id -> the row that produced it (a retried step's outputs: its last attempt's)
        self.maker = np.full(len(self.keys), -1, dtype=np.int64)
        rows = np.nonzero(self.produced)[0]
        self.maker[self.occ_id[rows]] = rows
        self.real = ~(self.params | self.outputs)
        self._built = True

    def id_of(self, key: str) -> int:
        return pc.index(self.keys, key).as_py()  # -1 when absent


def _inferred_sources(table: pa.Table, executions: list) -> pa.Table:
    """Pre-schema-4 rows name no source: take an input to come from the steps of the same
    execution that produced its digest (marked inferred; never across executions)."""
    mine = table.filter(pc.is_in(table.column("execution_id"), pa.array(executions)))
    consumed = mine.filter(pc.and_(pc.equal(mine.column("direction"), "consumed"), pc.is_null(mine.column("src_step"))))
    produced = mine.filter(pc.equal(mine.column("direction"), "produced")).select(
        ["execution_id", "digest", "step", "name"]).rename_columns(["execution_id", "digest", "p_step", "p_name"])
    joined = consumed.select(["execution_id", "step", "direction", "name", "digest"]).join(
        produced, ["execution_id", "digest"], join_type="inner")
    joined = joined.filter(pc.not_equal(joined.column("step"), joined.column("p_step")))
    n = len(joined)
    return pa.table({
        "execution_id": joined.column("execution_id"), "step": joined.column("step"),
        "direction": joined.column("direction"), "name": joined.column("name"), "digest": joined.column("digest"),
        "src_execution_id": pa.nulls(n, pa.string()), "src_step": joined.column("p_step"),
        "src_name": joined.column("p_name"), "how": pa.array([INFERRED] * n, pa.string()),
    }).cast(table.schema)


class _Search:
    """One breadth-first search over the edges read so far. Depths are exact shortest hop
    counts: every node at depth d is expanded by the same vector operations, d = 0, 1, ..."""

    def __init__(self, g: _Edges, upstream: bool, depth: int | None):
        g.build()
        self.g = g
        self.upstream = upstream
        self.limit = depth
        self.step_dist = np.full(len(g.keys), _FAR, dtype=np.int64)  # by key id (steps)
        self.occ_dist = np.full(len(g.keys), _FAR, dtype=np.int64)  # by key id (occurrences), downstream
        self.art_dist = np.full(len(g.digests), _FAR, dtype=np.int64)
        self.executions: dict = {}  # execution id -> depth (its parameters, or its outputs)
        self.edges: list = []  # (kind, rows, extra): see `edge_table`
        self.missing: set = set()  # executions a source lies in that are not read yet

    # -- seeding ------------------------------------------------------------------------
    def start_at_steps(self, key_ids) -> None:
        self.step_dist[np.asarray(key_ids, dtype=np.int64)] = 0

    def start_at_digest(self, digest: str) -> None:
        g = self.g
        found = pc.index(g.digests, digest).as_py()
        if found < 0:
            return
        rows = np.nonzero(g.digest_id == found)[0]
        self.art_dist[found] = 0
        if self.upstream:
            self.came_from(rows[g.produced[rows]], rows[g.produced[rows]], 0)
        else:
            self.taken_by(rows[~g.produced[rows] & g.real[rows]], 0)
            self.taken_by_outputs(rows[~g.produced[rows] & g.outputs[rows]], 0)
            # An execution that took these bytes as a parameter: what it made of them.
            params = rows[g.produced[rows] & g.params[rows]]
            self.executions_at(params, 1)
            self.occurrences_reached(g.occ_id[params], 0)

    # -- the search ---------------------------------------------------------------------
    def run(self) -> None:
        d = 0
        while True:
            if self.limit is not None and d >= self.limit:
                break
            frontier = self.step_dist == d
            if not frontier.any() and not (self.step_dist[self.step_dist < _FAR] > d).any() \
                    and not (self.occ_dist[self.occ_dist < _FAR] > d).any():
                break
            if self.upstream:
                self.up_level(d)
            else:
                self.down_level(d)
            d += 1

    def up_level(self, d: int) -> None:
        g = self.g
        at = self.step_dist[g.step_id] == d
        consumed = np.nonzero(at & ~g.produced & g.real)[0]
        self.art_dist[g.digest_id[consumed]] = np.minimum(self.art_dist[g.digest_id[consumed]], d + 1)
        self.edges.append(("in", consumed, None))
        sourced = consumed[g.src_id[consumed] >= 0]
        makers = g.maker[g.src_id[sourced]]
        self.note_missing(sourced[makers < 0])
        self.came_from(makers[makers >= 0], sourced[makers >= 0], d + 1)
        # A cache hit ran nothing: the step whose outputs it reused made them, from its inputs.
        hits = np.nonzero(at & g.produced & g.cache & (g.src_id >= 0))[0]
        originals = g.maker[g.src_id[hits]]
        self.note_missing(hits[originals < 0])
        hits, originals = hits[originals >= 0], originals[originals >= 0]
        self.lower(self.step_dist, g.step_id[originals], d + 1)
        self.edges.append(("cache", originals, hits))

    def came_from(self, makers, consumers, d: int) -> None:
        """Upstream: the rows `consumers` took occurrences made by rows `makers`, reached at depth
        d (the artifact's); their steps are at d + 1, an execution's parameters end the walk."""
        g = self.g
        while len(makers):
            self.edges.append(("made", makers, consumers))
            self.art_dist[g.digest_id[makers]] = np.minimum(self.art_dist[g.digest_id[makers]], d)
            steps = makers[~g.params[makers]]
            self.lower(self.step_dist, g.step_id[steps], d + 1)
            params = makers[g.params[makers]]
            self.executions_at(params, d + 1)
            # A parameter that came from another execution (a handle passed on, a replay).
            onward = params[g.src_id[params] >= 0]
            nxt = g.maker[g.src_id[onward]]
            self.note_missing(onward[nxt < 0])
            makers, consumers = nxt[nxt >= 0], onward[nxt >= 0]

    def down_level(self, d: int) -> None:
        g = self.g
        made = np.nonzero((self.step_dist[g.step_id] == d) & g.produced & g.real)[0]
        self.art_dist[g.digest_id[made]] = np.minimum(self.art_dist[g.digest_id[made]], d + 1)
        self.edges.append(("out", made, None))
        self.occurrences_reached(g.occ_id[made], d + 1)

    def occurrences_reached(self, occ_ids, d: int) -> None:
        """Downstream: these occurrences were reached at depth d; so is everything recorded as taking them."""
        g = self.g
        while len(occ_ids):
            new = occ_ids[self.occ_dist[occ_ids] > d]
            if not len(new):
                return
            self.occ_dist[new] = d
            reached = np.zeros(len(g.keys), dtype=bool)
            reached[new] = True
            takers = np.nonzero((g.src_id >= 0) & reached[np.maximum(g.src_id, 0)])[0]
            self.taken_by(takers[g.real[takers]], d)
            self.taken_by_outputs(takers[g.outputs[takers]], d)
            passed = takers[g.params[takers]]  # passed into another run as a parameter
            self.executions_at(passed, d + 1)
            self.edges.append(("passed", passed, None))
            occ_ids = g.occ_id[passed]

    def taken_by(self, rows, d: int) -> None:
        """Steps whose rows took an artifact reached at depth d (consumed it, or reused it as a cache hit)."""
        self.lower(self.step_dist, self.g.step_id[rows], d + 1)
        self.edges.append(("taken", rows, None))

    def taken_by_outputs(self, rows, d: int) -> None:
        self.executions_at(rows, d + 1)
        self.edges.append(("returned", rows, None))

    # -- bookkeeping ----------------------------------------------------------------------
    @staticmethod
    def lower(dist, ids, d: int) -> None:
        if len(ids):
            np.minimum.at(dist, ids, d)

    def executions_at(self, rows, d: int) -> None:
        for e in self.g.table.column("execution_id").take(pa.array(rows, pa.int64())).to_pylist():
            self.executions[e] = min(self.executions.get(e, d), d)

    def note_missing(self, rows) -> None:
        if len(rows):
            t = self.g.table.take(pa.array(rows, pa.int64()))
            src = pc.coalesce(t.column("src_execution_id"), t.column("execution_id"))
            self.missing.update(e for e in src.to_pylist() if e not in self.g.loaded)

    # -- results --------------------------------------------------------------------------
    def step_refs(self, reached) -> pa.Array:
        return self.g.keys.take(pa.array(np.nonzero(reached)[0], pa.int64()))

    def edge_table(self) -> pa.Table:
        """(source, target, name, how) of every edge the search crossed, in data-flow direction.

        Edges are kept as row numbers while searching and become text once here, each once:
        duplicates (an occurrence taken by several steps, a row reached twice) are dropped
        on integers first."""

        g, t = self.g, self.g.table
        refs = pc.binary_join_element_wise(t.column("execution_id"), t.column("step"), ":")
        digests, how, names, exec_of = t.column("digest"), t.column("how"), t.column("name"), t.column("execution_id")
        by_kind: dict = {}
        for kind, rows, extra in self.edges:
            if len(rows):
                by_kind.setdefault(kind, []).append((rows, rows if extra is None else extra))
        parts = []

        def add(source, target, name, how_) -> None:
            parts.append(pa.table({"source": source, "target": target, "name": name, "how": how_},
                                  schema=EDGE_SCHEMA))

        def take(col, rows):
            return col.take(pa.array(rows, pa.int64()))

        for kind, pairs in by_kind.items():
            rows = np.concatenate([r for r, _ in pairs])
            extra = np.concatenate([x for _, x in pairs])
            if kind == "made":  # one edge per (making row, how it was taken)
                _, first = np.unique(rows * 8 + g.how_code[extra], return_index=True)
            else:
                _, first = np.unique(rows.astype(np.int64) * (len(t) + 1) + extra, return_index=True)
            rows, extra = rows[first], extra[first]
            if kind == "in":  # artifact -> consuming step
                add(take(digests, rows), take(refs, rows), take(names, rows), take(how, rows))
            elif kind == "made":  # making step (or execution's parameters) -> artifact
                source = pc.if_else(pa.array(g.params[rows]), take(exec_of, rows), take(refs, rows))
                add(source, take(digests, rows), take(names, rows), take(how, extra))
            elif kind == "cache":  # original step -> the cache hit reusing it
                add(take(refs, rows), take(refs, extra), pa.array(["cache"] * len(rows)),
                    pa.array([FROM_CACHE] * len(rows)))
            elif kind == "out":  # step -> artifact it made
                add(take(refs, rows), take(digests, rows), take(names, rows), pa.nulls(len(rows), pa.string()))
            else:  # "taken", "returned", "passed": the artifact made by the source -> the taker
                src = g.src_id[rows]
                made = np.where(src >= 0, g.maker[np.maximum(src, 0)], -1)
                made = np.where(made >= 0, made, rows)
                target = take(refs, rows) if kind == "taken" else take(exec_of, rows)
                add(take(digests, made), target, take(names, rows), take(how, rows))
        if not parts:
            return EDGE_SCHEMA.empty_table()
        return pa.concat_tables(parts)


def traverse(con, root: Resolved, direction: str, depth: int | None = None, same_content: bool = False) -> Lineage:
    """Everything upstream (what `root` came from) or downstream (what was made from it),
    following recorded provenance only (see the module docstring).

    With `same_content`, the result also lists, apart and unwalked, other steps anywhere
    that produced the same bytes as a handle the walk reached.
    """
    if depth is not None and depth < 0:
        raise QueryError("depth must be >= 0")
    upstream = direction == "upstream"
    g = _Edges(con)
    seeds: list = []
    if root.kind == "artifact":
        g.load(_executions_to_read(con, root.digest, upstream))
    elif root.kind == "step":
        g.load([root.execution_id])
        seeds = [f"{root.execution_id}:{root.step}"]
    else:
        g.load([root.execution_id])
        seeds = [f"{root.execution_id}:{s}" for s in _steps_of(con, g, root.execution_id)]
    while True:
        search = _Search(g, upstream, depth) if g._parts else None
        if search is None:
            break
        if root.kind == "artifact":
            search.start_at_digest(root.digest)
        else:
            search.start_at_steps([i for i in (g.id_of(s) for s in seeds) if i >= 0])
        search.run()
        if upstream:
            if not g.load(search.missing):
                break
        else:
            reached = {r.split(":", 1)[0] for r in search.step_refs(search.step_dist < _FAR).to_pylist()}
            if not g.load_links_into(reached | set(search.executions)):
                break
    return _result(con, g, search, root, direction, depth, seeds, same_content)


def _steps_of(con, g: _Edges, execution_id: str) -> list:
    rows = read_executions(con, g.ranges, "step_log", "step", [execution_id]).column("step").to_pylist()
    return sorted(set(rows) - set(_PSEUDO))


def _result(con, g, search, root, direction, depth, seeds, same_content) -> Lineage:

    nodes: list = []  # (kind, ref, depth) tables
    if search is not None:
        steps = search.step_dist < _FAR
        steps_refs = search.step_refs(steps)
        nodes.append(("step", steps_refs, search.step_dist[steps]))
        arts = search.art_dist < _FAR
        nodes.append(("artifact", g.digests.take(pa.array(np.nonzero(arts)[0], pa.int64())), search.art_dist[arts]))
        executions = dict(search.executions)
        edges = search.edge_table()
    else:
        executions, edges = {}, EDGE_SCHEMA.empty_table()
    # Steps recorded with no edges (skipped, failed before consuming anything) are still nodes.
    known = set(nodes[0][1].to_pylist()) if nodes else set()
    extra = [s for s in seeds if s not in known]
    if extra:
        nodes.append(("step", pa.array(extra, pa.string()), np.zeros(len(extra), dtype=np.int64)))
    if root.kind == "artifact" and (search is None or root.digest not in _reached_digests(g, search, root.digest)):
        nodes.append(("artifact", pa.array([root.digest]), np.zeros(1, dtype=np.int64)))
    if root.kind == "execution":
        executions[root.execution_id] = 0
    if direction == "upstream":
        code_nodes, code_edges = _code_snapshots(con, nodes, executions)
        nodes += code_nodes
        edges = pa.concat_tables([edges, code_edges]) if len(code_edges) else edges
    if executions:
        nodes.append(("execution", pa.array(list(executions), pa.string()),
                      np.array(list(executions.values()), dtype=np.int64)))
    table = pa.concat_tables([pa.table({"kind": pa.array([kind] * len(refs), pa.string()), "ref": refs.cast(pa.string()),
                                        "depth": pa.array(dist, pa.int64())}) for kind, refs, dist in nodes]) \
        if nodes else pa.table({"kind": pa.array([], pa.string()), "ref": pa.array([], pa.string()),
                                "depth": pa.array([], pa.int64())})
    if depth is not None:
        table = table.filter(pc.less_equal(table.column("depth"), depth))
        inside = pa.chunked_array([table.column("ref")]).combine_chunks()
        edges = edges.filter(pc.and_(pc.is_in(edges.column("source"), inside), pc.is_in(edges.column("target"), inside)))
    table = _describe(con, g, table)
    lineage = Lineage(root=root.ref, direction=direction, depth_limit=depth, node_table=table, edge_table=edges)
    if same_content:
        lineage = Lineage(root=lineage.root, direction=direction, depth_limit=depth, node_table=table,
                          edge_table=lineage.edge_table, same_content=_same_content(con, g, lineage))
    return lineage


def _reached_digests(g: _Edges, search: _Search, digest: str) -> set:
    at = pc.index(g.digests, digest).as_py()
    return {digest} if at >= 0 and search.art_dist[at] < _FAR else set()


def _code_snapshots(con, nodes: list, executions: dict) -> tuple:
    """Upstream of anything a step made is the code that step ran: each execution reached
    brings its code snapshot (a Directory in the store) in, one hop past its nearest step."""

    nearest: dict = dict(executions)
    for kind, refs, dist in nodes:
        if kind == "step":
            for ref, d in zip(refs.to_pylist(), dist.tolist()):
                e = ref.split(":", 1)[0]
                nearest[e] = min(nearest.get(e, d), d)
    if not nearest:
        return [], EDGE_SCHEMA.empty_table()
    rows = con.execute(
        "SELECT execution_id, any_value(code_digest) FROM execution_log "
        "WHERE execution_id IN (SELECT unnest(?)) AND code_digest IS NOT NULL GROUP BY 1",
        [list(nearest)],
    ).fetchall()
    depth_of: dict = {}  # one node per snapshot: runs of unchanged code share one
    for e, code in rows:
        executions[e] = min(executions.get(e, nearest[e] + 1), nearest[e] + 1)
        depth_of[code] = min(depth_of.get(code, nearest[e] + 2), nearest[e] + 2)
    code_nodes = [("code", pa.array(list(depth_of), pa.string()), np.array(list(depth_of.values()), dtype=np.int64))]
    edges = pa.table({"source": [code for _, code in rows], "target": [e for e, _ in rows],
                      "name": ["code"] * len(rows), "how": pa.nulls(len(rows), pa.string())}, schema=EDGE_SCHEMA)
    return code_nodes, edges


def _describe(con, g: _Edges, table: pa.Table) -> pa.Table:
    """The node table with labels, statuses and artifact details, sorted by depth, kind, ref.

    Columnar throughout: each kind's details are read as Arrow and matched to the nodes by
    `index_in` (first match), never one Python object per node.
    """

    kind, ref = table.column("kind").combine_chunks(), table.column("ref").combine_chunks()
    n = len(table)
    is_art, is_step = pc.equal(kind, "artifact"), pc.equal(kind, "step")
    is_exec, is_code = pc.equal(kind, "execution"), pc.equal(kind, "code")
    cols = "digest, kind, type, size, uri, value"
    digests = ref.filter(is_art)
    parts = []
    if len(digests) and g.loaded and len(g.loaded) <= MANY_EXECUTIONS:
        # Most artifacts of a walk were first recorded by the executions it read: read theirs
        # by seq range (zone maps) instead of a join over every artifact.
        for lo, hi in spans(g.ranges.get(g.loaded).values()):
            found = con.sql(f"SELECT {cols} FROM artifacts WHERE seq BETWEEN {int(lo)} AND {int(hi)}").to_arrow_table()
            parts.append(found.filter(pc.is_in(found.column("digest"), value_set=digests)))
    have = pa.concat_tables(parts).column("digest").combine_chunks() if parts else pa.array([], pa.string())
    rest = digests.filter(pc.invert(pc.is_in(digests, value_set=have))).to_pylist()
    found = lookup_by_key(con, "artifacts", "dkey", [key64(d) for d in rest], cols)
    if found is not None:
        parts.append(found.filter(pc.is_in(found.column("digest"), value_set=digests)))
    arts = pa.concat_tables(parts) if parts else pa.table({c.strip(): pa.array([], t) for c, t in zip(
        cols.split(","), (pa.string(), pa.string(), pa.string(), pa.int64(), pa.string(), pa.string()))})
    at = pc.if_else(is_art, pc.index_in(ref, value_set=arts.column("digest").combine_chunks()), None)
    known = pc.fill_null(pc.is_valid(at), False)

    def art(col):
        return arts.column(col).combine_chunks().take(at)

    # Steps: the last row of each (seq order), found first in the reversed rows.
    step_execs = sorted({r.split(":", 1)[0] for r in ref.filter(is_step).to_pylist()})
    steps = read_executions(con, g.ranges, "step_log", "execution_id, step, task, state", step_execs)
    steps = steps.take(pa.array(np.arange(len(steps) - 1, -1, -1), pa.int64()))
    step_refs = pc.binary_join_element_wise(steps.column("execution_id"), steps.column("step"), ":")
    st = pc.if_else(is_step, pc.index_in(ref, value_set=step_refs.combine_chunks()), None)
    exec_ids = ref.filter(is_exec).to_pylist()
    execs = con.sql(
        "SELECT execution_id, any_value(workflow) FILTER (WHERE workflow IS NOT NULL) AS workflow, "
        "arg_max(state, seq) AS state FROM execution_log WHERE execution_id IN (SELECT unnest(?)) GROUP BY 1",
        params=[exec_ids or [""]]).to_arrow_table()
    ex = pc.if_else(is_exec, pc.index_in(ref, value_set=execs.column("execution_id").combine_chunks()), None)
    label = pc.coalesce(
        pc.if_else(is_art, pc.coalesce(art("type"), art("kind"), ""), None),
        pc.if_else(is_step, steps.column("task").combine_chunks().take(st), None),
        pc.if_else(is_exec, execs.column("workflow").combine_chunks().take(ex), None),
        pc.if_else(is_code, "code snapshot (Directory of the source files)", None),
        "")
    status = pc.coalesce(steps.column("state").combine_chunks().take(st),
                         execs.column("state").combine_chunks().take(ex))
    out = pa.table({"kind": kind, "ref": ref, "depth": table.column("depth"), "label": label,
                    "status": status.cast(pa.string()) if n else pa.array([], pa.string()), "known": known,
                    "a_kind": art("kind"), "a_type": art("type"), "a_size": art("size"), "a_uri": art("uri"),
                    "a_value": art("value")}, schema=NODE_SCHEMA)
    return out


def _same_content(con, g: _Edges, lineage: Lineage) -> tuple:
    """Steps anywhere that produced the bytes of a handle in `lineage` without a recorded link to it."""

    walked = {n.ref for n in lineage.nodes if n.kind == "step"}
    out: dict = {}
    for node in lineage.nodes:
        if node.kind != "artifact" or node.artifact is None or node.artifact.kind in (None, VALUE_KIND):
            continue
        for e, s, _ in producers_of(con, node.ref):
            ref = f"{e}:{s}"
            if s not in _PSEUDO and ref not in walked:
                out[ref] = min(out.get(ref, node.depth + 1), node.depth + 1)
    if not out:
        return ()
    table = pa.table({"kind": ["step"] * len(out), "ref": list(out), "depth": pa.array(list(out.values()), pa.int64())})
    return Lineage.nodes_of(_describe(con, g, table))
