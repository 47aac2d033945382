"""What each JSON endpoint of `lineage ui` answers, assembled from the Ledger's read API.

Every function takes a `Ledger` and returns plain JSON-ready data (dicts, lists, strings,
finite numbers). Nothing here writes: the one side effect of a read is the ledger's own
bookkeeping (a reader first moves other processes' pending journal records into the file;
with no run going there are none, and the file is left as it was).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from ledgerflow.errors import LedgerflowError, RefError
from ledgerflow.app.display import format_duration
from ledgerflow.lineage.values import jsonable
from ledgerflow.engine.status import Status

EXECUTIONS_LIMIT = 1000  # the list page shows at most this many of the newest executions
METRIC_RUNS = 50  # executions compared on the metrics page, newest of the workflow
DIRECTIONS = ("upstream", "downstream")


def finite(value):
    """`value` with NaN and infinities as strings (JSON has no such numbers), recursively.

    >>> finite({"a": [float("nan"), 1.5]})
    {'a': ['nan', 1.5]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="milliseconds") + "Z" if at else None  # the ledger keeps naive UTC


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def summary_json(s) -> dict:
    """One execution of the list: whole id, workflow, status, times, duration."""
    return {"id": s.id, "workflow": s.workflow, "status": s.status, "started_at": _iso(s.started_at),
            "ended_at": _iso(s.ended_at), "duration_s": s.duration_s, "duration": format_duration(s.duration_s),
            "executor": s.executor, "host": s.host, "replay_of": s.replay_of, "error": s.error}


def executions(ledger, status: str = "", workflow: str = "", q: str = "", limit: int = EXECUTIONS_LIMIT) -> dict:
    """The executions list, newest first, filtered by status, workflow and a search text
    (matched, case-insensitively, against the id, workflow, error and host); with every
    workflow and status seen, for the filters."""
    rows = ledger.executions(limit=limit)
    needle = q.strip().lower()
    shown = [s for s in rows
             if (not status or s.status == status) and (not workflow or s.workflow == workflow)
             and (not needle or any(needle in (x or "").lower() for x in (s.id, s.workflow, s.error, s.host)))]
    return {"executions": [summary_json(s) for s in shown], "total": len(rows),
            "workflows": sorted({s.workflow for s in rows if s.workflow}),
            "statuses": sorted({s.status for s in rows if s.status}),
            "running": sum(1 for s in rows if s.status == Status.RUNNING), "now": _iso(_utcnow())}


def timeline(detail, now: datetime | None = None) -> dict:
    """Each attempt of each step as a bar on its worker's lane: seconds from the execution's
    start; a running attempt ends at `now`. Lanes are the node a step ran on (the driver's
    host for the local executor)."""
    start = detail.summary.started_at
    now = now or _utcnow()
    end_of_run = detail.summary.ended_at or now
    bars = []
    for st in detail.steps:
        for a in st.attempts:
            if a.started_at is None:
                continue
            running = a.ended_at is None and a.status == Status.RUNNING
            ended = a.ended_at or (now if running else a.started_at)
            bars.append({"step": st.step, "attempt": a.attempt, "status": a.status,
                         "lane": a.node or st.node or detail.summary.host or "local", "cache_hit": st.cache_hit,
                         "start": max(0.0, (a.started_at - start).total_seconds()),
                         "end": max(0.0, (ended - start).total_seconds()), "running": running,
                         "duration": format_duration(a.duration_s)})
    span = max([(end_of_run - start).total_seconds()] + [b["end"] for b in bars] + [0.001])
    return {"bars": bars, "span": span, "lanes": sorted({b["lane"] for b in bars})}


def execution(ledger, ref: str) -> dict:
    """One execution: the graph as recorded with each step's status (`render.page_data`, the
    same data `lineage graph --format html` draws), its timeline and its tags."""
    from ledgerflow.app.render import page_data

    detail = ledger.execution(ref)
    data = page_data(detail)
    data["timeline"] = timeline(detail)
    data["tags"] = list(ledger.tags(detail.id))
    data["execution"]["started_at"] = _iso(detail.summary.started_at)
    return finite(data)


def step(ledger, ref: str) -> dict:
    """What the step panel loads on a click: why it ran (`Ledger.why`) and its logs.

    `ref` is "EXECUTION_ID:step". A `why` that cannot be answered (an execution recorded
    before the ledger kept cache-key parts) is given as its error text, not a failure of the panel.
    """
    try:
        why = jsonable(ledger.why(ref))
    except LedgerflowError as exc:
        why = {"error": str(exc).splitlines()[0]}
    return finite({"ref": ref, "why": why, **logs(ledger, ref)})


def logs(ledger, ref: str) -> dict:
    """The step's captured stdout and stderr, every attempt, in the order they ran (`Ledger.logs`).
    A text the store no longer holds (collected, or another machine's store) comes as None."""
    return {"logs": [jsonable(entry) for entry in ledger.logs(ref, spooled=True)]}


def lineage(ledger, ref: str, direction: str, depth: int | None) -> dict:
    """An upstream or downstream walk from `ref` (digest, execution, EXECUTION_ID:step)."""
    walk = ledger.upstream if direction == "upstream" else ledger.downstream
    result = walk(ref, depth)
    return finite(jsonable(result))


def models(ledger) -> dict:
    """Every registered model: versions (metrics, producing execution), aliases, alias history."""
    return finite({"models": [jsonable(m) for m in ledger.models()]})


def metrics(ledger, workflow: str = "", limit: int = METRIC_RUNS) -> dict:
    """Metrics of the newest `limit` executions of `workflow`, oldest first, as one series per
    `step.metric` (a metric's last value in each execution; None where it logged none).
    Without a workflow: the one that ran last."""
    runs = ledger.executions()
    workflows = sorted({s.workflow for s in runs if s.workflow})
    workflow = workflow or (runs[0].workflow if runs else "")
    chosen = [s for s in runs if s.workflow == workflow][:limit][::-1]
    ids = [s.id for s in chosen]
    series: dict = {}
    if ids:
        table = ledger.sql("SELECT execution_id, step, name, value FROM metrics "
                           "WHERE execution_id IN (SELECT unnest(?)) ORDER BY seq", [ids])
        position = {e: i for i, e in enumerate(ids)}
        for e, st, name, value in zip(*(table.column(c).to_pylist()
                                        for c in ("execution_id", "step", "name", "value"))):
            values = series.setdefault(f"{st}.{name}", [None] * len(ids))
            values[position[e]] = value if value is None or math.isfinite(value) else None
    return {"workflow": workflow, "workflows": workflows,
            "executions": [{"id": s.id, "status": s.status, "started_at": _iso(s.started_at)} for s in chosen],
            "series": [{"name": k, "values": v} for k, v in sorted(series.items())]}


def resolve(ledger, ref: str):
    """What `ref` names (`Ledger.resolve`); RefError naming it when nothing or several things."""
    ref = ref.strip()
    if not ref:
        raise RefError("an empty ref names nothing")
    return ledger.resolve(ref)
