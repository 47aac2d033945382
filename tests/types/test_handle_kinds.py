"""One declaration per handle kind (issue 15, point 7): a kind's class says everything the codec,
conform, compat, the CLI, retention, verify and OpenLineage need, and the class hierarchy governs
which kinds go where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from ledgerflow import Directory, File, Ledger, Model, WorkflowTypeError, run, task, workflow
from ledgerflow.app.cli import cli
from ledgerflow.types import conform
from ledgerflow.types.codec import decode, encode
from ledgerflow.types.compat import accepts
from ledgerflow.types.conform import TypeMismatch
from ledgerflow.types.handles import Dataset
from ledgerflow.types.kinds import HANDLE_KINDS, Storage, storage_of


@attrs.frozen(eq=False)
class Checkpoint(File):
    """A kind declared here and nowhere else: a file, so it goes where a File is declared."""

    kind: ClassVar[str] = "test_checkpoint"
    openlineage_type: ClassVar[str] = "CHECKPOINT"


@task
def save(n: int) -> Checkpoint:
    path = Path.cwd() / f"ckpt-{n}.bin"
    path.write_bytes(b"c" * n)
    return path  # a path, coerced as the kind declares


@task
def size_of(f: File) -> int:
    return len(f.read_bytes())


@workflow
def checkpointed(n: int = 5) -> int:
    return size_of(f=save(n=n))


def test_a_kind_declared_once_is_registered_and_read_everywhere():
    assert HANDLE_KINDS["test_checkpoint"] is Checkpoint and Checkpoint.base is Checkpoint
    assert Checkpoint["pt"].base is Checkpoint and "test_checkpoint" in HANDLE_KINDS
    assert storage_of("test_checkpoint") is Storage.BLOB and storage_of("value") is None
    assert storage_of("model") is storage_of("directory") is Storage.MANIFEST
    assert storage_of("dataset") is Storage.TABLE
    h = Checkpoint["pt"](digest="blake3:" + "0" * 64, size=3)
    wire = encode(h)
    assert json.loads(wire) == {"$$handle": "test_checkpoint", "digest": h.digest, "size": 3, "tag": "pt"}
    assert type(decode(wire, Checkpoint)) is Checkpoint["pt"]
    assert type(decode(wire, Checkpoint | Directory)) is Checkpoint["pt"]


def test_the_hierarchy_governs_where_a_kind_goes():
    assert accepts(File, Checkpoint) and accepts(File, Checkpoint["pt"])  # a checkpoint is a file
    assert not accepts(Checkpoint, File)  # a file is not a checkpoint
    assert not accepts(File["csv"], Checkpoint["csv"])  # a tag narrows one kind only
    assert not accepts(Directory, Checkpoint) and not accepts(Checkpoint, Directory)
    assert accepts(Directory, Model["sklearn"]) and not accepts(Directory["x"], Model["x"])
    assert not accepts(Model, Directory)
    with pytest.raises(WorkflowTypeError, match=r"expected Checkpoint, given File"):
        @workflow
        def wrong(n: int = 1) -> int:
            return size_of_checkpoint(c=as_file(n=n))


@task
def as_file(n: int) -> File:
    return File.from_path(save.fn(n))


@task
def size_of_checkpoint(c: Checkpoint) -> int:
    return c.size


def test_a_new_kind_runs_is_recorded_and_exported_by_its_declaration(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ex = run(checkpointed, home=home, progress=False)
    assert ex.outputs == 5
    kinds = {r["name"]: r["kind"] for r in Ledger(home).sql(
        "SELECT e.name, a.kind FROM edges e JOIN artifacts a ON a.digest = e.digest "
        "WHERE e.execution_id = ? AND e.step = 'save' AND e.direction = 'produced'", [ex.id]).to_pylist()}
    assert kinds == {"return": "test_checkpoint"}
    out = CliRunner().invoke(cli, ["--home", str(home), "export", ex.id, "--format", "openlineage"])
    assert out.exit_code == 0, out.output
    types = {ds["facets"]["datasetType"]["datasetType"] for line in out.stdout.splitlines() if line
             for ds in json.loads(line).get("outputs", [])}
    assert "CHECKPOINT" in types
    verified = CliRunner().invoke(cli, ["--home", str(home), "verify"])
    assert verified.exit_code == 0, verified.output


_KINDS = [File, Checkpoint, Directory, Model]
_kind = st.tuples(st.sampled_from(_KINDS), st.sampled_from([None, "a", "b"])).map(lambda kt: kt[0][kt[1]])


@given(expected=_kind, given_type=_kind)
def test_build_time_and_run_time_checks_agree(expected, given_type):
    """What `accepts` lets through when the graph is built, conform takes at run time (and types
    as declared); what it refuses, conform refuses too, but for the one run-time coercion: a
    handle with no tag takes the tag of the parameter of its kind it is handed to."""
    fields = {"digest": "blake3:" + "1" * 64, "size": 1}
    if issubclass(given_type, Model):
        fields["flavor"] = given_type.tag
    value = given_type(**fields)
    if accepts(expected, given_type):
        taken = conform(value, expected, "p")
        assert isinstance(taken, expected.base) and taken.digest == value.digest
        assert expected.tag is None or type(taken).tag == expected.tag
    elif given_type.tag is None and given_type.base is expected.base:
        assert type(conform(value, expected, "p")) is expected  # an untagged handle takes its parameter's tag
    else:
        with pytest.raises(TypeMismatch):
            conform(value, expected, "p")


def test_dataset_schema_narrowing_is_the_datasets_own_rule(home):
    import pyarrow as pa

    @attrs.define
    class Wide:
        x: int
        y: str

    @attrs.define
    class Narrow:
        x: int

    ds = Dataset[Wide].from_arrow(pa.table({"x": [1], "y": ["a"]}))
    assert accepts(Dataset[Narrow], Dataset[Wide]) and not accepts(Dataset[Wide], Dataset[Narrow])
    narrow = conform(ds, Dataset[Narrow], "p")
    assert type(narrow) is Dataset[Narrow] and narrow.to_arrow().column_names == ["x"]
    with pytest.raises(TypeMismatch, match="column 'y'"):
        conform(Dataset[Narrow].from_arrow(pa.table({"x": [1]})), Dataset[Wide], "p")
