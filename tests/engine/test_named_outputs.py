"""Named outputs (issue 15, point 2): a task returning an attrs class or dataclass records each
field as an output of its own (`return.model`), and `res.model` in a workflow body is checked
when it is built and consumed with its own provenance, on both executors."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import NamedTuple

import attrs
import pytest

from ledgerflow import File, Ledger, WorkflowTypeError, run, task, workflow


@attrs.frozen
class Trained:
    model: File
    accuracy: float
    epochs: int


@dataclasses.dataclass(frozen=True)
class Split:
    train: list[int]
    test: list[int]


class Scores(NamedTuple):
    best: float
    worst: float
    names: list[str]


@task
def score(n: int) -> Scores:
    return Scores(best=n * 1.0, worst=0.5, names=["a", "b"])


@task
def spread(best: float, worst: float) -> float:
    return best - worst


@workflow
def scored(n: int = 3) -> float:
    s = score(n=n)
    return spread(best=s.best, worst=s.worst)


@task
def fit(n: int) -> Trained:
    path = Path(tempfile.mkdtemp()) / f"model-{n}.bin"  # (a Ray worker's cwd is not the test's)
    path.write_bytes(b"weights" * n)
    return Trained(model=File.from_path(path), accuracy=0.9, epochs=n)


@task
def split(n: int) -> Split:
    return Split(train=list(range(n)), test=[n])


@task
def model_size(m: File) -> int:
    return m.size


@task
def report(accuracy: float, train: list[int]) -> str:
    return f"{accuracy}:{len(train)}"


@workflow
def pipeline(n: int = 3) -> tuple[int, str]:
    res = fit(n=n)
    parts = split(n=n)
    return model_size(m=res.model), report(accuracy=res.accuracy, train=parts.train)


def test_fields_are_outputs_and_consumed_by_name(home, executor):
    ex = run(pipeline, executor=executor, home=home, progress=False)
    assert ex.outputs == (21, "0.9:3")
    ledger = Ledger(home)
    produced = {r["name"] for r in ledger.sql(
        "SELECT name FROM edges WHERE execution_id = ? AND step = 'fit' AND direction = 'produced'",
        [ex.id]).to_pylist()}
    assert {"return", "return.model", "return.accuracy", "return.epochs"} <= produced
    consumed = ledger.sql("SELECT step, name, src_step, src_name FROM edges WHERE execution_id = ? AND direction = "
                          "'consumed' AND src_step IN ('fit', 'split') ORDER BY step, name", [ex.id]).to_pylist()
    assert consumed == [
        {"step": "model_size", "name": "m", "src_step": "fit", "src_name": "return.model"},
        {"step": "report", "name": "accuracy", "src_step": "fit", "src_name": "return.accuracy"},
        {"step": "report", "name": "train", "src_step": "split", "src_name": "return.train"},
    ]
    graph = ledger.graph(ex.id)
    assert {(e.source, e.slot, e.param) for e in graph.edges_into("report")} == {
        ("fit", "return.accuracy", "accuracy"), ("split", "return.train", "train")}
    # Lineage of the model size runs back to the field that fed it, and on to `fit`.
    up = ledger.upstream(f"{ex.id}:model_size")
    assert any(n.ref.endswith(":fit") for n in up.nodes)
    cached = run(pipeline, executor=executor, home=home, progress=False)
    assert cached.outputs == ex.outputs


def test_a_namedtuple_output_has_named_fields(home, executor):
    ex = run(scored, executor=executor, home=home, progress=False)
    assert ex.outputs == 2.5
    produced = {r["name"]: r["value"] for r in Ledger(home).sql(
        "SELECT e.name, a.value FROM edges e JOIN artifacts a ON a.digest = e.digest WHERE e.execution_id = ? "
        "AND e.step = 'score' AND e.direction = 'produced'", [ex.id]).to_pylist()}
    assert produced["return"] == '{"best":3.0,"names":["a","b"],"worst":0.5}'  # by name, not position
    assert produced["return.best"] == "3.0" and produced["return.names"] == '["a","b"]'
    assert run(scored, executor=executor, home=home, progress=False).outputs == 2.5  # decoded from the cache


def test_a_field_is_checked_when_the_workflow_is_built():
    with pytest.raises(WorkflowTypeError, match=r"Trained has no field 'weights'; its fields are: model, accuracy, "
                                                r"epochs"):
        @workflow
        def typo(n: int = 1) -> int:
            return model_size(m=fit(n=n).weights)
    with pytest.raises(WorkflowTypeError, match=r"test_named_outputs.py:\d+: expected File, given float"):
        @workflow
        def wrong_type(n: int = 1) -> int:
            return model_size(m=fit(n=n).accuracy)
    with pytest.raises(WorkflowTypeError, match="has no field 'x'"):
        @workflow
        def not_a_record(n: int = 1) -> int:
            return model_size(m=model_size(m=fit(n=n).model).x)
