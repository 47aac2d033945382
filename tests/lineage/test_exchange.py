"""Ledger export as Parquet, and import into another home's chain."""

from __future__ import annotations

import json
import textwrap
import uuid
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ledgerflow import ExecutionFailed, Ledger, run
from ledgerflow.engine.events import ArtifactRef, ModelRegistered
from ledgerflow.engine.loading import import_file
from ledgerflow.app.cli import cli
from ledgerflow.lineage.schema import CHAINED_TABLES

SOURCE = '''
import os
from ledgerflow import task, workflow, log_metric

@task(cache=True)
def double(x: int) -> int:
    log_metric("seen", x)
    return x * 2

@task
def check(y: int) -> int:
    if os.environ.get("LF_BOOM"):
        raise RuntimeError("boom")
    return y + 1

@workflow
def wf(x: int = 1) -> int:
    return check(y=double(x=x))
'''


@pytest.fixture
def mod(tmp_path):
    path = tmp_path / f"exwf_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(SOURCE))
    return import_file(path)


def cli_run(*args, home):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def record(home, monkeypatch, mod, xs, fail_last=False):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(home))
    ids = []
    for i, x in enumerate(xs):
        if fail_last and i == len(xs) - 1:
            monkeypatch.setenv("LF_BOOM", "1")
            with pytest.raises(ExecutionFailed) as err:
                run(mod.wf, {"x": x}, home=home, progress=False)
            monkeypatch.delenv("LF_BOOM")
            ids.append(err.value.execution.id)
        else:
            ids.append(run(mod.wf, {"x": x}, home=home, progress=False).id)
    return ids


def export(home, out):
    res = cli_run("export", "--format", "parquet", str(out), "--json", home=home)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_export_writes_every_table_as_parquet(tmp_path, mod, monkeypatch):
    home = tmp_path / "src"
    record(home, monkeypatch, mod, [1, 2])
    report = export(home, tmp_path / "out")
    out = tmp_path / "out"
    for t in CHAINED_TABLES:
        path = out / f"{t.name}.parquet"
        assert path.exists()
        names = pq.read_schema(path).names
        assert names == list(t.column_names) + ["prev_hash", "row_hash"]
    assert pq.read_table(out / "meta.parquet").column("key").to_pylist()[0] == "schema_version"
    con = duckdb.connect(str(home / "ledger.duckdb"), read_only=True)
    try:
        for t in CHAINED_TABLES:
            n = con.execute(f"SELECT count(*) FROM {t.name}").fetchall()[0][0]
            assert report["tables"][t.name] == n
        head = con.execute("SELECT max(seq) FROM execution_log").fetchall()[0][0]
    finally:
        con.close()
    assert report["head_seq"] >= head
    # Any Parquet reader gets the data: the ledger's own rows, hashes included.
    steps = pq.read_table(out / "step_log.parquet")
    assert steps.schema.field("row_hash").type == pa.binary() and set(steps.column("step").to_pylist()) == {"double", "check"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["head_hash"] == report["head_hash"] and manifest["schema_version"] >= 1

    # Into a directory that isn't empty: refused, nothing written.
    again = cli_run("export", "--format", "parquet", str(out), home=home)
    assert again.exit_code == 2 and again.stderr.startswith("lineage: error:") and "not an empty directory" in again.stderr


@pytest.mark.slow
def test_import_merges_into_another_chain(tmp_path, mod, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    ids = record(src, monkeypatch, mod, [1, 2, 3], fail_last=True)  # x=1 and x=2, then a failure with x=3
    own = record(dst, monkeypatch, mod, [7])
    export(src, tmp_path / "out")
    before = Ledger(dst).verify(store=False)

    res = cli_run("import", str(tmp_path / "out"), "--json", home=dst)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["executions_imported"] == ids and report["executions_skipped"] == []
    assert report["first_seq"] == before.head_seq + 1

    target, source = Ledger(dst), Ledger(src)
    verified = target.verify(store=False)
    assert verified.ok, verified.problems
    assert verified.head_seq == report["last_seq"] == before.head_seq + sum(report["imported"].values())
    for eid in ids:
        assert target.execution(eid).to_json() == source.execution(eid).to_json()
    assert target.execution(own[0]).status == "succeeded"
    assert {e.id for e in target.executions()} == set(ids) | set(own)
    # Lineage crosses over too: the imported step's input is found downstream of its artifact.
    digest = source.execution(ids[0]).steps[0].outputs[0].artifact.digest
    assert f"{ids[0]}:check" in {n.ref for n in target.downstream(digest).nodes}

    # Importing the same export again adds nothing, and says why.
    again = json.loads(cli_run("import", str(tmp_path / "out"), "--json", home=dst).stdout)
    assert again["imported"] == {} and again["executions_skipped"] == ids
    assert Ledger(dst).verify(store=False).head_seq == verified.head_seq


@pytest.mark.slow
def test_import_skips_artifacts_already_present(tmp_path, mod, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    record(src, monkeypatch, mod, [5])
    record(dst, monkeypatch, mod, [5])  # the same values, so the same digests, in its own execution
    export(src, tmp_path / "out")
    report = json.loads(cli_run("import", str(tmp_path / "out"), "--json", home=dst).stdout)
    assert "artifacts" not in report["imported"] and report["skipped"]["artifacts"] >= 3
    digests = Ledger(dst).sql("SELECT digest, count(*) AS n FROM artifacts GROUP BY 1 HAVING n > 1").num_rows
    assert digests == 0 and Ledger(dst).verify(store=False).ok
    # The graph both ledgers recorded is the same content: kept once, and both runs read it.
    assert report["skipped"].get("graph_specs") == 1 and "graph_specs" not in report["imported"]
    ledger = Ledger(dst)
    assert ledger.sql("SELECT count(*) AS n FROM graph_specs").to_pylist() == [{"n": 1}]
    assert all(ledger.graph(e.id).nodes and not ledger.graph(e.id).inferred for e in ledger.executions())


def _rewrite(path, fn):
    table = pq.read_table(path)
    pq.write_table(fn(table), path)


@pytest.mark.slow
def test_tampered_export_is_refused(tmp_path, mod, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    record(src, monkeypatch, mod, [1, 2])
    export(src, tmp_path / "out")
    _rewrite(tmp_path / "out" / "metrics.parquet",
             lambda t: t.set_column(t.schema.get_field_index("value"), "value", pa.array([99.0] * t.num_rows)))
    res = cli_run("import", str(tmp_path / "out"), home=dst)
    assert res.exit_code == 1
    assert res.stderr.strip().startswith("lineage: error: the export at") and "metrics row seq=" in res.stderr
    assert "changed" in res.stderr and not (dst / "ledger.duckdb").exists()

    # The newest rows cut off (a chain that is still valid): the manifest's head gives it away.
    export(src, tmp_path / "out2")
    _rewrite(tmp_path / "out2" / "execution_log.parquet", lambda t: t.slice(0, t.num_rows - 1))
    res = cli_run("import", str(tmp_path / "out2"), home=dst)
    assert res.exit_code == 1 and "manifest says" in res.stderr


def test_import_of_something_else_is_bad_input(tmp_path):
    (tmp_path / "junk").mkdir()
    res = cli_run("import", str(tmp_path / "junk"), home=tmp_path / "dst")
    assert res.exit_code == 2 and "not a ledger export" in res.stderr
    res = cli_run("export", "--format", "parquet", str(tmp_path / "out"), home=tmp_path / "nothing")
    assert res.exit_code == 2 and "no ledger" in res.stderr


def _register(home, name, digest_char, alias=None):
    digest = "blake3:" + digest_char * 64
    with Ledger(home) as led:
        led.record(ModelRegistered(name=name, model=ArtifactRef(digest=digest, kind="model", type="Model", size=10),
                                   at=datetime.now(timezone.utc), who="t@h", alias=alias))
    return digest


@pytest.mark.slow
def test_import_renumbers_model_versions_and_keeps_the_targets_aliases(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    a = _register(src, "digits", "a")
    b = _register(src, "digits", "b", alias="production")
    _register(src, "other", "c", alias="staging")
    _register(dst, "digits", "b")
    d = _register(dst, "digits", "d", alias="production")
    export(src, tmp_path / "out")
    res = cli_run("import", str(tmp_path / "out"), home=dst)
    assert res.exit_code == 0, res.output
    target = Ledger(dst)
    assert target.verify(store=False).ok
    digits = target.registered("digits")
    assert {v.version: v.digest for v in digits.versions} == {1: b, 2: d, 3: a}
    assert digits.aliases == {"production": 2}  # the target's own decision stands
    other = target.registered("other")
    assert other.aliases == {"staging": 1} and other.versions[0].digest == "blake3:" + "c" * 64
