"""`run`: the one call that wires a workflow to an executor, the store and the ledger."""

from __future__ import annotations

import os
from typing import Any

from ledgerflow import store as cas
from ledgerflow.engine.events import Recorder
from ledgerflow.engine.runner import Execution, execute
from ledgerflow.engine.workflow import Workflow
from ledgerflow.executors import resolve
from ledgerflow.home import Home
from ledgerflow.store import Store


def run(workflow: Workflow, params: dict[str, Any] | None = None, *, executor: Any = "local",
        cache: bool = True, home: str | os.PathLike | None = None, recorder: Recorder | None = None) -> Execution:
    """Run a workflow and record it in the ledger of `home` (default: $LEDGERFLOW_HOME or ./.ledgerflow).

    Raises ExecutionFailed (with `.execution`) when a step fails for good.

    >>> ex = run(pipeline, params={"n": 10})          # doctest: +SKIP
    >>> ex.id, ex.status, ex.outputs                  # doctest: +SKIP
    """
    where = Home.resolve(home)
    store = Store.open(where.store_url)
    own_recorder = recorder is None
    if own_recorder:
        from ledgerflow.lineage import Ledger

        recorder = Ledger(where)
    runner = resolve(executor)
    try:
        with cas.using(store):
            return execute(workflow, params, executor=runner, recorder=recorder, store=store, cache=cache)
    finally:
        runner.close()
        if own_recorder:
            recorder.close()
