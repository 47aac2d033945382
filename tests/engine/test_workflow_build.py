"""@task and @workflow: what is refused when the decorator runs, with what message."""

import re
from typing import Optional

import attrs
import pyarrow as pa
import pytest

from ledgerflow import Dataset, File, Model, WorkflowTypeError, task, workflow


@attrs.define
class Digits:
    pixels: list[float]
    label: int


@task
def ingest(n: int) -> Dataset[Digits]:
    return pa.table({"pixels": [[0.0]] * n, "label": list(range(n))})


@task
def train(data: Dataset, lr: float = 0.1) -> Model["sklearn"]:
    raise NotImplementedError


@task
def count(data: Dataset) -> int:
    return data.to_arrow().num_rows


@task
def split(data: Dataset[Digits], frac: float = 0.5) -> tuple[Dataset[Digits], Dataset[Digits]]:
    t = data.to_arrow()
    k = int(t.num_rows * frac)
    return t.slice(0, k), t.slice(k)


def test_task_is_plain_function_outside_workflow(home):
    data = Dataset.from_arrow(pa.table({"pixels": [[1.0]] * 4, "label": [1, 2, 3, 4]}))
    assert count(data) == 4
    assert split(data)[0].num_rows == 2


def test_graph_is_built_and_immutable():
    @workflow
    def pipe(n: int = 10) -> int:
        train_ds, test_ds = split(data=ingest(n=n))
        train(data=train_ds)
        return count(data=test_ds)

    assert [n.name for n in pipe.graph.nodes] == ["ingest", "split", "train", "count"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        pipe.graph.nodes = ()


def test_edge_mismatch_names_everything():
    with pytest.raises(WorkflowTypeError) as err:
        @workflow
        def bad(n: int = 1) -> int:
            return count(data=n)  # the line the message must name
    msg = str(err.value)
    assert "workflow 'bad'" in msg and "task 'count'" in msg and "parameter 'data'" in msg
    assert "expected Dataset" in msg and "given int" in msg
    assert re.search(r"test_workflow_build\.py:\d+", msg)
    assert isinstance(err.value, TypeError)


def test_schema_and_tag_mismatches():
    @attrs.define
    class Other:
        name: str

    @task
    def needs_other(data: Dataset[Other]) -> int:
        return 0

    @task
    def needs_torch(model: Model["torch"]) -> int:
        return 0

    with pytest.raises(WorkflowTypeError, match=r"expected Dataset\[Other\], given Dataset\[Digits\]"):
        @workflow
        def w1() -> int:
            return needs_other(data=ingest(n=1))

    with pytest.raises(WorkflowTypeError, match=r"expected Model\['torch'\], given Model\['sklearn'\]"):
        @workflow
        def w2() -> int:
            return needs_torch(model=train(data=ingest(n=1)))


@pytest.mark.parametrize("src,match", [
    ("def f(x) -> int: ...", "parameter 'x' has no type annotation"),
    ("def f(x: int): ...", "return type is not annotated"),
    ("def f(x: object) -> int: ...", "unsupported type object"),
    ("def f(x: pa.Table) -> int: ...", "annotate it as Dataset"),
    ("def f(x: list) -> int: ...", "give the element types"),
    ("def f(*xs: int) -> int: ...", "not supported"),
    ("def f(x: dict[tuple[int, int], int]) -> int: ...", "dict keys"),
])
def test_bad_annotations_refused_at_decoration(src, match):
    ns = {"pa": pa}
    exec(src, ns)
    with pytest.raises(WorkflowTypeError, match=match):
        task(ns["f"])


def test_call_errors():
    with pytest.raises(WorkflowTypeError, match="missing a required argument: 'data'"):
        @workflow
        def w1() -> int:
            return count()

    with pytest.raises(WorkflowTypeError, match="unexpected keyword argument 'dta'"):
        @workflow
        def w2() -> int:
            return count(dta=ingest(n=1))


def test_constant_checked():
    with pytest.raises(WorkflowTypeError, match=r"parameter 'lr'.*expected float, given str"):
        @workflow
        def w() -> Model:
            return train(data=ingest(n=1), lr="fast")


def test_return_mismatch():
    with pytest.raises(WorkflowTypeError, match=r"declares it returns int.*given Model\['sklearn'\]"):
        @workflow
        def w() -> int:
            return train(data=ingest(n=1))

    with pytest.raises(WorkflowTypeError, match="returns None"):
        @workflow
        def w2() -> int:
            count(data=ingest(n=1))


def test_control_flow_on_promise_points_at_when():
    with pytest.raises(WorkflowTypeError, match="ledgerflow.when"):
        @workflow
        def w() -> int:
            c = count(data=ingest(n=1))
            if c:
                return c
            return c


def test_unpacking_only_fixed_tuples():
    with pytest.raises(WorkflowTypeError, match="iteration"):
        @workflow
        def w() -> int:
            a, b = count(data=ingest(n=1))
            return a


def test_sub_workflow_is_inlined_and_checked():
    @workflow
    def prepare(n: int = 5) -> Dataset[Digits]:
        return ingest(n=n)

    @workflow
    def outer(n: int = 5) -> int:
        return count(data=prepare(n=n))

    assert [n.name for n in outer.graph.nodes] == ["prepare.ingest", "count"]

    with pytest.raises(WorkflowTypeError, match="sub-workflow 'prepare', parameter 'n'"):
        @workflow
        def outer2() -> int:
            return count(data=prepare(n="five"))


def test_list_of_promises_gathers():
    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    @workflow
    def w() -> int:
        return total(xs=[count(data=ingest(n=1)), count(data=ingest(n=2)), 3])

    assert [n.name for n in w.graph.nodes] == ["ingest", "count", "ingest_2", "count_2", "total"]

    with pytest.raises(WorkflowTypeError, match=r"parameter 'xs'\[0\] at .*: expected str"):
        @task
        def names(xs: list[str]) -> int:
            return 0

        @workflow
        def w2() -> int:
            return names(xs=[count(data=ingest(n=1))])


def test_calling_workflow_directly_says_how_to_run():
    @workflow
    def w(n: int = 1) -> int:
        return count(data=ingest(n=n))

    with pytest.raises(WorkflowTypeError, match=r"ledgerflow.run\(w"):
        w(n=2)


def test_task_options_validated():
    with pytest.raises(ValueError, match="retries"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ValueError, match="memory"):
        from ledgerflow import Resources
        Resources(memory="lots")


def test_arithmetic_on_a_promise_says_where_to_compute_it():
    with pytest.raises(WorkflowTypeError, match="arithmetic or a comparison"):
        @workflow
        def w(n: int = 1) -> int:
            return count(data=ingest(n=n + 1))
