"""A dict literal of promises in a workflow body works like a list literal (issue 15, point 2):
type-checked when built, each entry's origin recorded (`opts[lr]`), on both executors."""

from __future__ import annotations

import pytest

from ledgerflow import Ledger, WorkflowTypeError, run, task, workflow


@task
def learning_rate() -> float:
    return 0.1


@task
def depth(n: int) -> float:
    return n * 2.0


@task
def train(opts: dict[str, float]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(opts.items()))


@workflow
def tuned(n: int = 3) -> str:
    return train(opts={"lr": learning_rate(), "depth": depth(n=n), "fixed": 1.5})


def test_a_dict_of_promises_runs_and_records_each_entry(home, executor):
    ex = run(tuned, executor=executor, home=home, progress=False)
    assert ex.outputs == "depth=6.0,fixed=1.5,lr=0.1"
    edges = Ledger(home).sql(
        "SELECT name, src_step, how FROM edges WHERE execution_id = ? AND step = 'train' AND direction = 'consumed' "
        "ORDER BY name", [ex.id]).to_pylist()
    assert edges == [{"name": "opts", "src_step": None, "how": None},
                     {"name": "opts[depth]", "src_step": "depth", "how": "step"},
                     {"name": "opts[fixed]", "src_step": None, "how": None},
                     {"name": "opts[lr]", "src_step": "learning_rate", "how": "step"}]
    graph = Ledger(home).graph(ex.id)
    assert {(e.source, e.param) for e in graph.edges_into("train")} == {("learning_rate", "opts[lr]"),
                                                                        ("depth", "opts[depth]")}
    again = run(tuned, executor=executor, home=home, progress=False)
    assert again.outputs == ex.outputs


def test_a_dict_of_promises_is_type_checked_where_it_is_written():
    with pytest.raises(WorkflowTypeError, match=r"'opts'\['n'\] at .*test_dict_literals.py:\d+: expected float, "
                                                r"given int"):
        @workflow
        def wrong_value(n: int = 1) -> str:
            return train(opts={"n": n})
    with pytest.raises(WorkflowTypeError, match="key 3 is not a str"):
        @workflow
        def wrong_key() -> str:
            return train(opts={3: learning_rate()})


@task
def label() -> str:
    return "lr"


def test_a_key_that_comes_from_a_step_is_refused():
    with pytest.raises(WorkflowTypeError, match="keys must be written in the workflow"):
        @workflow
        def keyed() -> str:
            return train(opts={label(): learning_rate()})
