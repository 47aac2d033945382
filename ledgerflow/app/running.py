"""`run`: a workflow on an executor, with its execution recorded in the ledger."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import attrs

from ledgerflow.engine import environment, snapshot
from ledgerflow.engine.events import FROM_DIGEST, Recorder, Tee
from ledgerflow.app.progress import Progress
from ledgerflow.app.recorders import configured
from ledgerflow.engine.runner import Execution, execute, parse_origin
from ledgerflow.engine.workflow import Workflow
from ledgerflow.executors import resolve
from ledgerflow.home import Home
from ledgerflow.lineage.ledger import Ledger
from ledgerflow.errors import LedgerflowError, ParameterError
from ledgerflow.store import Store
from ledgerflow.store import active as active_store
from ledgerflow.types import type_name
from ledgerflow.types.annotations import is_handle_type
from ledgerflow.types.codec import decode


def run(workflow: Workflow, params: dict[str, Any] | None = None, *, executor: Any = "local",
        cache: bool = True, home: str | os.PathLike | None = None, recorder: Recorder | None = None,
        recorders: Iterable[Recorder] | None = None, progress: bool | None = None, replay_of: str | None = None,
        recompute=(), ledger: str | None = None) -> Execution:
    """Run a workflow and record it in the ledger of `home` (default: $LEDGERFLOW_HOME or ./.ledgerflow).

    `executor` is "local" (in this process), "ray", or an executor instance. `cache=False`
    runs every step even where a cached result exists. `progress` shows a live line on a
    terminal (None: only when stderr is one); log lines go to the `ledgerflow` logger either way.
    `recompute={"train"}` runs the named steps even where a cached result exists. `ledger`: a
    team ledger's postgresql:// URL (default: $LEDGERFLOW_LEDGER; unset, the home's ledger.duckdb).
    `recorder` replaces the ledger (a `MemoryRecorder` in a test); `recorders` are reported to
    beside it, e.g. `[OpenLineageEmitter(client)]` (default: those the environment configures,
    `ledgerflow.app.recorders.configured`; `()` for none). Recorders given are flushed, not closed.
    Raises ExecutionFailed (with `.execution`) when a step fails for good.

    >>> ex = run(pipeline, params={"n": 10})
    >>> print(ex.id, ex.status, ex.outputs)     # doctest: +ELLIPSIS
    01... succeeded 4.5
    >>> {name: step.outputs for name, step in ex.steps.items()}
    {'ingest': {'return': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, 'train': {'return': 4.5}}

    Run again, the steps are cache hits (`cache=False` runs them anyway):

    >>> again = run(pipeline, params={"n": 10})
    >>> {name: str(step.status) for name, step in again.steps.items()}
    {'ingest': 'cached', 'train': 'cached'}
    >>> again.steps["train"].cached_from == f"{ex.id}:train"
    True
    """
    where = Home.resolve(home)
    store = Store.open(where.store_url)
    ledger = recorder if recorder is not None else Ledger(where, ledger=ledger)
    params, found = by_reference(workflow, params, ledger)
    runner = resolve(executor)
    display = Progress(len(workflow.graph.nodes), live=progress)
    others = configured(where) if recorders is None else tuple(recorders)
    try:
        with active_store.using(store):
            code = snapshot.take(workflow, store)
            return execute(workflow, params, executor=runner, recorder=Tee((ledger, *others, display)), store=store,
                           cache=cache, code_digest=code.digest, environment=environment.capture_json(),
                           replay_of=replay_of, home=str(where.path), recompute=recompute, sources=found)
    finally:
        runner.close()
        display.close()
        if recorders is None:  # run closes the recorders it made, not those it was given
            for r in others:
                r.close()
        if recorder is None:
            ledger.close()


def by_reference(workflow: Workflow, params: dict[str, Any] | None, ledger: Any) -> tuple:
    """Handle parameters given as text, `EXECUTION_ID:step.output` or a digest some step produced,
    as the recorded handles, carrying that occurrence as their origin: the new execution's
    lineage then runs back into the one that made them.

    Returns (params, found): `found` names, for a parameter given by digest, the occurrence it
    was linked to with `how="digest"`: the ledger says that link was chosen by content (the
    first run that made or took those bytes), not carried by the handle."""
    if not params or not isinstance(ledger, Ledger):
        return params, {}
    out, found = dict(params), {}
    for p in workflow.params:
        value = out.get(p.name)
        if isinstance(value, str) and is_handle_type(p.type):
            try:
                info, origin = ledger.occurrence(value)
                handle = decode(info.value, p.type)
            except LedgerflowError as e:  # RefError, LedgerError, DecodeError, HandleTypeError
                raise ParameterError(f"workflow {workflow.name!r}, parameter {p.name!r} ({type_name(p.type)}): "
                                     f"{e}") from None
            out[p.name] = attrs.evolve(handle, origin=origin)
            if value.startswith("blake3:"):
                found[p.name] = parse_origin(origin, FROM_DIGEST)
    return out, found
