"""`a >> b`: ordering between steps without a data dependency (issue 15, point 4, in part),
recorded as an `order` edge of the graph, on both executors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ledgerflow import ExecutionFailed, Ledger, WorkflowTypeError, run, task, workflow


@task
def stamp(label: str, folder: str) -> float:
    time.sleep(0.05)
    (Path(folder) / label).write_text(str(time.time()))
    return time.time()


@task
def fails(folder: str) -> float:
    raise RuntimeError("the first step fails")


@workflow
def ordered(folder: str) -> float:
    load = stamp(label="load", folder=folder)
    notify = stamp(label="notify", folder=folder)  # called first in the body, ordered last
    clean = stamp(label="clean", folder=folder)
    load >> clean >> notify
    return notify


@workflow
def blocked(folder: str) -> float:
    first = fails(folder=folder)
    then = stamp(label="then", folder=folder)
    first >> then
    return then


def test_steps_run_in_the_order_given_and_the_graph_records_it(home, executor, tmp_path):
    ex = run(ordered, {"folder": str(tmp_path)}, executor=executor, home=home, progress=False)
    when = {name: float((tmp_path / name).read_text()) for name in ("load", "clean", "notify")}
    assert when["load"] < when["clean"] < when["notify"]
    detail = Ledger(home).execution(ex.id)
    starts = {s.step: s.attempts[0].started_at for s in detail.steps}
    assert starts["stamp"] < starts["stamp_3"] < starts["stamp_2"]
    graph = Ledger(home).graph(ex.id)
    order = {(e.source, e.target) for e in graph.edges if e.kind == "order"}
    assert order == {("stamp", "stamp_3"), ("stamp_3", "stamp_2")}


def test_a_step_after_a_failed_one_does_not_run(home, tmp_path):
    with pytest.raises(ExecutionFailed):
        run(blocked, {"folder": str(tmp_path)}, home=home, progress=False)
    assert not (tmp_path / "then").exists()
    steps = {s.step: s.status for s in Ledger(home).execution(Ledger(home).executions()[0].id).steps}
    assert steps == {"fails": "failed", "stamp": "skipped"}


def test_ordering_is_checked_when_the_workflow_is_built():
    with pytest.raises(WorkflowTypeError, match="would make a cycle"):
        @workflow
        def cycle(folder: str) -> float:
            a = stamp(label="a", folder=folder)
            b = stamp(label="b", folder=folder)
            a >> b
            b >> a
            return b
    with pytest.raises(WorkflowTypeError, match="orders steps of this workflow"):
        @workflow
        def not_a_step(folder: str) -> float:
            a = stamp(label="a", folder=folder)
            folder >> a
            return a
