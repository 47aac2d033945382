"""A Model is a Directory (issue 15, point 7, the part decided): accepted where a Directory is
declared, at build and run time; in a union it stays a Model; the reverse needs a flavor."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from ledgerflow import Directory, Model, WorkflowTypeError, run, task, workflow
from ledgerflow.types import conform


@task
def train(n: int) -> Model["sklearn"]:
    out = Path(tempfile.mkdtemp()) / f"model-{n}"  # (a Ray worker's cwd is not the test's)
    out.mkdir()
    (out / "weights.bin").write_bytes(b"w" * n)
    return Model.from_path(out, flavor="sklearn")


@task
def list_files(d: Directory) -> list[str]:
    assert type(d) is Directory
    return sorted(p.name for p in Path(d.path).iterdir())


@workflow
def files_of_a_model(n: int = 3) -> list[str]:
    return list_files(d=train(n=n))


def test_a_model_goes_where_a_directory_is_declared(home, executor):
    assert run(files_of_a_model, executor=executor, home=home, progress=False).outputs == ["weights.bin"]


def test_in_a_union_a_model_stays_a_model(home, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a").write_text("x")
    model = Model.from_path(tmp_path / "m", flavor="torch")
    assert isinstance(conform(model, Directory | Model), Model)
    assert type(conform(model, Directory)) is Directory


@task
def needs_model(m: Model) -> int:
    return m.size


@task
def make_dir(n: int) -> Directory:
    return Path(tempfile.mkdtemp())


def test_a_directory_is_not_a_model():
    with pytest.raises(WorkflowTypeError, match="expected Model, given Directory"):
        @workflow
        def wrong(n: int = 1) -> int:
            return needs_model(m=make_dir(n=n))
