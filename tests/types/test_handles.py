import os
import pickle

import attrs
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from ledgerflow import Dataset, Directory, File, Model
from ledgerflow.errors import StepOutputError


@attrs.define
class Points:
    x: int
    label: str


def test_file_round_trip(home, tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"x,y\n1,2\n")
    f = File.from_path(p)
    assert f.digest.startswith("blake3:") and f.size == 8
    assert f.path.read_bytes() == b"x,y\n1,2\n"
    with f.open() as fh:
        assert fh.read() == b"x,y\n1,2\n"
    assert File.from_path(p) == f and hash(File.from_path(p)) == hash(f)


def test_tagged_classes_are_cached_and_pickle(home, tmp_path):
    assert File["csv"] is File["csv"] and File["csv"] is not File["json"]
    assert issubclass(File["csv"], File) and File["csv"].tag == "csv"
    p = tmp_path / "a.csv"
    p.write_text("1")
    f = File["csv"].from_path(p)
    back = pickle.loads(pickle.dumps(f))
    assert type(back) is File["csv"] and back == f
    ds = Dataset[Points].from_arrow(pa.table({"x": [1], "label": ["a"]}))
    assert type(pickle.loads(pickle.dumps(ds))) is Dataset[Points]


def test_bad_tags_refused():
    with pytest.raises(TypeError, match="format tag"):
        File[3]
    with pytest.raises(TypeError, match="attrs class"):
        Dataset[int]


def test_directory_and_model(home, tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    handle = Directory.from_path(d)
    assert sorted(p.name for p in handle.path.rglob("*")) == ["a.txt", "b.txt", "sub"]
    m = Model.from_path(d, flavor="sklearn")
    assert type(m) is Model["sklearn"] and m.flavor == "sklearn" and m.digest == handle.digest
    single = tmp_path / "weights.bin"
    single.write_bytes(b"\x00\x01")
    m2 = Model.from_path(single, flavor="torch")
    assert (m2.path / "weights.bin").read_bytes() == b"\x00\x01"


def test_dataset_round_trip_and_readers(home):
    t = pa.table({"x": [1, 2, 3], "s": ["a", "b", None]})
    ds = Dataset.from_arrow(t)
    assert ds.num_rows == 3 and ds.to_arrow().equals(t)
    assert ds.to_pandas()["x"].tolist() == [1, 2, 3]
    assert ds.to_polars()["s"].to_list() == ["a", "b", None]


def test_dataset_schema_checked(home):
    Dataset[Points].from_arrow(pa.table({"x": [1], "label": ["a"], "extra": [1.0]}))
    with pytest.raises(StepOutputError, match="column 'label' is missing"):
        Dataset[Points].from_arrow(pa.table({"x": [1]}))
    with pytest.raises(StepOutputError, match="column 'x' should be integer"):
        Dataset[Points].from_arrow(pa.table({"x": ["1"], "label": ["a"]}))


rows = st.lists(st.tuples(st.integers(-2**62, 2**62), st.one_of(st.none(), st.text(max_size=8)),
                          st.floats(allow_nan=False)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(rows=rows, cut=st.integers(0, 40))
def test_dataset_digest_independent_of_chunking_and_frame_library(home, rows, cut):
    xs, ss, fs = ([r[i] for r in rows] for i in range(3))
    table = pa.table({"x": pa.array(xs, pa.int64()), "s": pa.array(ss, pa.string()), "f": pa.array(fs, pa.float64())})
    one = Dataset.from_arrow(table).digest
    cut = min(cut, len(rows))
    chunked = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    assert Dataset.from_arrow(chunked).digest == one
    big = table.cast(pa.schema([("x", pa.int64()), ("s", pa.large_string()), ("f", pa.float64())]))
    assert Dataset.from_arrow(big).digest == one
    assert Dataset.from_arrow(pl.from_arrow(table)).digest == one
    if all(s is not None for s in ss):  # pandas turns None strings into NaN objects otherwise
        assert Dataset.from_arrow(table.to_pandas()).digest == one


@settings(max_examples=40, deadline=None)
@given(rows=rows.filter(bool), i=st.integers(0, 39))
def test_dataset_digest_changes_with_any_value(home, rows, i):
    i %= len(rows)
    xs = [r[0] for r in rows]
    base = Dataset.from_arrow(pa.table({"x": xs})).digest
    xs[i] = xs[i] + 1 if xs[i] < 2**62 else xs[i] - 1
    assert Dataset.from_arrow(pa.table({"x": xs})).digest != base


def test_dataset_digest_depends_on_schema(home):
    a = Dataset.from_arrow(pa.table({"x": pa.array([1], pa.int64())})).digest
    b = Dataset.from_arrow(pa.table({"x": pa.array([1], pa.int32())})).digest
    c = Dataset.from_arrow(pa.table({"y": pa.array([1], pa.int64())})).digest
    assert len({a, b, c}) == 3
