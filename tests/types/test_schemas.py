"""Dataset schemas (issue 15, point 6): dataclass schemas, struct, list and map columns, nulls
refused in non-Optional columns, every offending column named (never the data), projection."""

from __future__ import annotations

import dataclasses
from typing import Optional

import attrs
import pyarrow as pa
import pytest

from ledgerflow import Dataset, StepOutputError, WorkflowTypeError, run, task, workflow
from ledgerflow.errors import ExecutionFailed


@attrs.frozen
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    corner: Point
    tags: list[str]
    attributes: dict[str, int]
    note: Optional[str]


@dataclasses.dataclass
class Names:
    name: str


def shapes_table(**overrides) -> pa.Table:
    columns = {
        "name": pa.array(["square", "dot"]),
        "corner": pa.array([{"x": 0.0, "y": 1.0}, {"x": 2.0, "y": 3.0}]),
        "tags": pa.array([["a"], []], pa.list_(pa.string())),
        "attributes": pa.array([[("sides", 4)], []], pa.map_(pa.string(), pa.int64())),
        "note": pa.array([None, "small"]),
        "extra": pa.array([1, 2]),
    }
    columns.update(overrides)
    return pa.table({k: v for k, v in columns.items() if v is not None})


@task
def make_shapes() -> Dataset[Shape]:
    return shapes_table()


@task
def names_only(d: Dataset[Names]) -> list[str]:
    table = d.to_arrow()
    assert table.column_names == ["name"]  # projected: the consumer's schema, not every column stored
    return table["name"].to_pylist()


@workflow
def shapes() -> list[str]:
    return names_only(d=make_shapes())


def test_a_dataclass_schema_with_struct_list_and_map_columns(home, executor):
    ex = run(shapes, executor=executor, home=home, progress=False)
    assert ex.outputs == ["square", "dot"]


def test_every_bad_column_is_named_without_the_data():
    bad = shapes_table(corner=pa.array([{"x": 0.0}, {"x": 1.0}]), name=pa.array(["a", None]), tags=None)
    with pytest.raises(StepOutputError) as err:
        Dataset[Shape].from_arrow(bad)
    text = str(err.value)
    assert "column 'name' (str, not Optional) holds 1 null(s)" in text
    assert "column 'corner' should be struct of x: floating point, y: floating point" in text
    assert "column 'tags' is missing" in text
    assert "\n" not in text and "square" not in text


def test_nulls_are_fine_where_the_schema_says_optional():
    Dataset[Shape].from_arrow(shapes_table(note=pa.array([None, None], pa.string())))


@dataclasses.dataclass
class Wide:
    name: str
    size: int
    weight: float


@dataclasses.dataclass
class Raw:
    name: str
    size: str


@task
def make_raw() -> Dataset[Raw]:
    return pa.table({"name": ["a"], "size": ["big"]})


@task
def use_wide(d: Dataset[Wide]) -> int:
    return d.num_rows


def test_a_schema_mismatch_at_build_names_each_column():
    with pytest.raises(WorkflowTypeError, match=r"column 'size' is str, not int; column 'weight' is missing"):
        @workflow
        def mismatched() -> int:
            return use_wide(d=make_raw())


@task
def null_names() -> Dataset[Names]:
    return pa.table({"name": pa.array([None], pa.string())})


@workflow
def nulls() -> list[str]:
    return names_only(d=null_names())


def test_a_null_in_a_non_optional_column_fails_the_step(home):
    with pytest.raises(ExecutionFailed, match=r"column 'name' \(str, not Optional\) holds 1 null"):
        run(nulls, home=home, progress=False)
