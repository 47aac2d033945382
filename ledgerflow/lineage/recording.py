"""`run`: a workflow on an executor, with its execution recorded in the ledger."""

from __future__ import annotations

import os
from typing import Any

from ledgerflow import store as cas
from ledgerflow.engine import environment, snapshot
from ledgerflow.engine.events import Recorder, Tee
from ledgerflow.engine.progress import Progress
from ledgerflow.engine.runner import Execution, execute
from ledgerflow.engine.workflow import Workflow
from ledgerflow.executors import resolve
from ledgerflow.home import Home
from ledgerflow.lineage.ledger import Ledger
from ledgerflow.store import Store


def run(workflow: Workflow, params: dict[str, Any] | None = None, *, executor: Any = "local",
        cache: bool = True, home: str | os.PathLike | None = None, recorder: Recorder | None = None,
        progress: bool | None = None, replay_of: str | None = None) -> Execution:
    """Run a workflow and record it in the ledger of `home` (default: $LEDGERFLOW_HOME or ./.ledgerflow).

    `executor` is "local" (in this process), "ray", or an executor instance. `cache=False`
    runs every step even where a cached result exists. `progress` shows a live line on a
    terminal (None: only when stderr is one); log lines go to the `ledgerflow` logger either way.
    Raises ExecutionFailed (with `.execution`) when a step fails for good.

    >>> ex = run(pipeline, params={"n": 10})          # doctest: +SKIP
    >>> ex.id, ex.status, ex.outputs                  # doctest: +SKIP
    """
    where = Home.resolve(home)
    store = Store.open(where.store_url)
    ledger = recorder if recorder is not None else Ledger(where)
    runner = resolve(executor)
    display = Progress(len(workflow.graph.nodes), live=progress)
    try:
        with cas.using(store):
            code = snapshot.take(workflow, store)
            return execute(workflow, params, executor=runner, recorder=Tee((ledger, display)), store=store,
                           cache=cache, code_digest=code.digest, environment=environment.capture_json(),
                           replay_of=replay_of, home=str(where.path))
    finally:
        runner.close()
        display.close()
        if recorder is None:
            ledger.close()
