"""One execution as recorded: its rows (each list in seq order) assembled into an ExecutionDetail."""

from __future__ import annotations

import json
from collections import defaultdict

from ledgerflow.engine.events import INTERRUPTED, RUNNING
from ledgerflow.lineage.rows import lookup_by_key
from ledgerflow.lineage.schema import OUTPUTS_STEP, PARAMS_STEP, key64
from ledgerflow.lineage.values import (
    ArtifactInfo,
    AttemptInfo,
    Bound,
    ExecutionDetail,
    MetricPoint,
    RecordedGraph,
    StepInfo,
)


def read_graph(con, execution_id: str) -> RecordedGraph | None:
    """The graph an execution was built into, with its parts decided at run time; None for an
    execution recorded before the ledger kept graphs. Both reads are index lookups."""
    digests = [d for (d,) in con.execute(
        "SELECT spec_digest FROM graph_log WHERE execution_id = ? ORDER BY seq", [execution_id]).fetchall()]
    if not digests:
        return None
    found = lookup_by_key(con, "graph_specs", "dkey", [key64(d) for d in digests], "digest, spec")
    specs = dict(zip(found.column("digest").to_pylist(), found.column("spec").to_pylist()))
    return RecordedGraph.from_specs([specs[d] for d in digests if d in specs])


def parse_json(text: str | None) -> dict:
    """A JSON column (params, environment) as a dict; a damaged one is kept, as `_unparsed`."""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"_unparsed": text}


def assemble(summary, fingerprint, params, code_digest, environment, step_rows, edge_rows, metric_rows, arts):
    """Build an ExecutionDetail from one execution's rows, each list in seq order."""

    def bound(name, digest, source=None):
        info = arts.get(digest) or ArtifactInfo(digest, None, None, None, None, None)
        if source is None or source[1] is None:
            return Bound(name, info)
        e, s, n, how = source
        return Bound(name, info, f"{e or summary.id}:{s}.{n}", how)

    edges_by = defaultdict(list)  # (step, attempt) -> [(direction, name, digest, source)]
    for step, attempt, direction, name, digest, *source in edge_rows:
        edges_by[(step, attempt)].append((direction, name, digest, tuple(source)))
    metrics_by = defaultdict(list)
    for step, name, value, idx, at, reused_from in metric_rows:
        metrics_by[step].append(MetricPoint(step, name, value, idx, at, reused_from))

    attempts: dict = {}  # step -> {attempt: latest row}
    for row in step_rows:
        attempts.setdefault(row[0], {})[row[1]] = row
    interrupted = summary.status == INTERRUPTED
    steps = []
    for step, by_attempt in attempts.items():
        infos = []
        for n in sorted(by_attempt):
            r = by_attempt[n]
            state = INTERRUPTED if interrupted and r[2] == RUNNING else r[2]
            dur = (r[8] - r[7]).total_seconds() if r[7] and r[8] else None
            infos.append(AttemptInfo(n, state, r[7], r[8], dur, r[10], r[11], r[12]))
        last = by_attempt[max(by_attempt)]
        first = by_attempt[min(by_attempt)]
        io = edges_by.get((step, last[1])) or next(
            (edges_by[(step, a)] for a in sorted(by_attempt, reverse=True) if (step, a) in edges_by), []
        )
        started = first[7]
        ended = last[8]
        steps.append(
            StepInfo(
                step=step,
                task=last[3],
                task_fingerprint=last[4],
                status=infos[-1].status,
                started_at=started,
                ended_at=ended,
                duration_s=(ended - started).total_seconds() if started and ended else None,
                attempts=tuple(infos),
                cache_key=last[5],
                cache_hit=last[2] == "cached" or last[6] is not None,
                cached_from=last[6],
                inputs=tuple(bound(n, d, src) for dirn, n, d, src in io if dirn == "consumed"),
                outputs=tuple(bound(n, d, src) for dirn, n, d, src in io if dirn == "produced"),
                metrics=tuple(metrics_by.get(step, ())),
                resources=last[9],
                node=last[10],
                error=last[11],
                map_index=last[13],
                condition=last[14],
                blocked_by=last[15],
                forced=last[16],
            )
        )
    inputs = tuple(bound(n, d, src) for dirn, n, d, src in edges_by.get((PARAMS_STEP, 0), ()) if dirn == "produced")
    outputs = tuple(bound(n, d, src) for dirn, n, d, src in edges_by.get((OUTPUTS_STEP, 0), ()) if dirn == "consumed")
    env = parse_json(environment)
    return ExecutionDetail(
        summary=summary,
        workflow_fingerprint=fingerprint,
        params=parse_json(params),
        inputs=inputs,
        outputs=outputs,
        steps=tuple(steps),
        code_digest=code_digest,
        environment=env,
    )
