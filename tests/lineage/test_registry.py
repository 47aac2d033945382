"""The model registry: versions numbered per name, aliases that move and roll back, all in the chain."""

from __future__ import annotations

import json
import math
import textwrap
import uuid

import duckdb
import pytest
from click.testing import CliRunner

import ledgerflow
from ledgerflow import Ledger, Model, register, run
from ledgerflow.engine.loading import import_file
from ledgerflow.errors import RefError, RegistryError
from ledgerflow.app.cli import cli

PIPELINE = '''
import pathlib, tempfile
from ledgerflow import Model, register, task, workflow

@task
def train(seed: int) -> Model["toy"]:
    out = pathlib.Path(tempfile.mkdtemp())
    (out / "weights.txt").write_text(f"weights for seed {seed}")
    return Model.from_path(out, flavor="toy")

@task
def publish(model: Model["toy"], score: float, name: str) -> str:
    register(name, model, alias="production", metrics={"accuracy": score}, why=f"scored {score}")
    return name

@workflow
def pipeline(seed: int = 0, score: float = 0.5, name: str = "toy") -> str:
    return publish(model=train(seed=seed), score=score, name=name)

@workflow
def training(seed: int = 0) -> Model["toy"]:
    return train(seed=seed)
'''


@pytest.fixture
def mod(tmp_path):
    path = tmp_path / f"reg_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(PIPELINE))
    return import_file(path)


def model_at(tmp_path, text: str, flavor: str = "toy") -> Model:
    d = tmp_path / f"m_{uuid.uuid4().hex[:8]}"
    d.mkdir()
    (d / "weights.txt").write_text(text)
    return Model.from_path(d, flavor=flavor)


def cli_run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


@pytest.mark.slow
def test_register_inside_a_step_numbers_versions_per_name(home, mod):
    first = run(mod.pipeline, {"seed": 1, "score": 0.8})
    second = run(mod.pipeline, {"seed": 2, "score": 0.9})
    led = Ledger(home)
    latest = led.model("toy")
    assert latest.version == 2 and latest.execution_id == second.id and latest.step == "publish"
    assert latest.metrics == {"accuracy": 0.9} and latest.why == "scored 0.9" and "@" in latest.who
    assert latest.flavor == "toy" and latest.type == "Model['toy']" and latest.aliases == ("production",)
    v1 = led.model("toy", version=1)
    assert v1.execution_id == first.id and v1.aliases == ()
    assert led.model("toy", alias="production") == latest
    # The registered model is an artifact of its run: lineage reaches its training step.
    up = led.upstream(latest.digest)
    assert f"{second.id}:train" in {n.ref for n in up.of_kind("step")}
    # The same model registered again is the version it already has; the alias follows it.
    again = run(mod.pipeline, {"seed": 1, "score": 0.8})
    assert [v.version for v in led.models()[0].versions] == [1, 2]
    assert led.model("toy", alias="production").version == 1
    assert led.alias_history("toy", "production")[-1].previous_version == 2
    assert again.status == "succeeded"
    # Another name has its own numbering.
    run(mod.pipeline, {"seed": 3, "name": "other"})
    assert led.model("other").version == 1
    assert led.verify().ok


@pytest.mark.slow
def test_register_outside_a_run(home, tmp_path):
    v = register("toy", model_at(tmp_path, "a"), metrics={"accuracy": 0.7}, why="baseline")
    assert isinstance(v, ledgerflow.lineage.values.ModelVersion)
    assert (v.version, v.execution_id, v.step, v.aliases) == (1, None, None, ("production",))
    assert v.metrics == {"accuracy": 0.7} and v.why == "baseline" and v.registered_at is not None
    w = register("toy", model_at(tmp_path, "b"), alias=None)
    assert w.version == 2 and w.aliases == ()
    assert Ledger(home).model("toy", alias="production").version == 1  # alias=None moved nothing
    # A home given explicitly is where it goes.
    elsewhere = tmp_path / "elsewhere"
    assert register("toy", model_at(tmp_path, "c"), home=elsewhere).version == 1
    assert Ledger(elsewhere).model("toy").version == 1 and Ledger(home).model("toy").version == 2


@pytest.mark.parametrize("name", ["", "has space", "slash/name", "semi;colon", 3])
def test_bad_names_are_refused(home, tmp_path, name):
    with pytest.raises(RegistryError, match="name"):
        register(name, model_at(tmp_path, "x"))


def test_bad_models_and_metrics_are_refused(home, tmp_path):
    with pytest.raises(RegistryError, match="expected a ledgerflow.Model handle, got str"):
        register("toy", "model.skops")
    with pytest.raises(RegistryError, match="expected a ledgerflow.Model handle, got File"):
        f = tmp_path / "f.bin"
        f.write_bytes(b"x")
        register("toy", ledgerflow.File.from_path(f))
    with pytest.raises(RegistryError, match="finite number"):
        register("toy", model_at(tmp_path, "x"), metrics={"accuracy": math.nan})
    with pytest.raises(RegistryError, match="alias"):
        register("toy", model_at(tmp_path, "x"), alias="pro duction")
    assert Ledger(home).models() == ()


@pytest.mark.slow
def test_promote_and_rollback_walk_back_through_the_history(home, tmp_path):
    for text in "abc":
        register("toy", model_at(tmp_path, text), why=f"model {text}")
    led = Ledger(home)
    assert led.model("toy", alias="production").version == 3
    assert led.promote("toy", 1, why="3 is broken", who="alice@lab").version == 1
    assert led.model("toy", alias="production").aliases == ("production",)
    assert led.rollback("toy", why="1 was worse").version == 3  # back where it was before the promote
    assert led.rollback("toy").version == 2  # and further back, a step at a time
    assert led.rollback("toy").version == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        led.rollback("toy")
    assert led.model("toy", alias="production").version == 1  # the failed rollback changed nothing
    # A promote to where the alias already is records nothing.
    before = len(led.alias_history("toy"))
    assert led.promote("toy", 1).version == 1 and len(led.alias_history("toy")) == before
    # Other aliases are independent.
    assert led.promote("toy", 2, "staging").version == 2
    assert led.model("toy", alias="staging").version == 2 and led.model("toy", alias="production").version == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        led.rollback("toy", "staging")
    with pytest.raises(RegistryError, match="no alias 'canary'"):
        led.rollback("toy", "canary")


@pytest.mark.slow
def test_history_records_who_when_why(home, tmp_path):
    register("toy", model_at(tmp_path, "a"), why="first")
    register("toy", model_at(tmp_path, "b"), why="second")
    led = Ledger(home)
    led.promote("toy", 1, who="alice@lab", why="b regressed on Tuesdays")
    led.rollback("toy", who="bob@lab", why="it did not")
    moves = led.alias_history("toy", "production")
    assert [(m.action, m.previous_version, m.version) for m in moves] == [
        ("register", None, 1), ("register", 1, 2), ("promote", 2, 1), ("rollback", 1, 2)]
    assert [m.who for m in moves[2:]] == ["alice@lab", "bob@lab"]
    assert [m.why for m in moves] == ["first", "second", "b regressed on Tuesdays", "it did not"]
    assert all(m.at is not None for m in moves) and moves[0].at <= moves[-1].at
    assert "@" in moves[0].who


def test_unknown_name_or_version_is_a_ref_error_with_candidates(home, tmp_path):
    register("digits", model_at(tmp_path, "a"))
    register("digits-small", model_at(tmp_path, "b"))
    led = Ledger(home)
    with pytest.raises(RefError, match="no model named 'digitz'.*digits"):
        led.promote("digitz", 1)
    with pytest.raises(RefError, match=r"no version 5 \(versions: 1\)"):
        led.promote("digits", 5)
    with pytest.raises(RefError, match="no model named"):
        led.rollback("nothing")
    assert led.model("nothing") is None and led.model("digits", version=9) is None
    assert led.model("digits", alias="staging") is None
    with pytest.raises(RegistryError, match="at most one"):
        led.model("digits", alias="production", version=1)


@pytest.mark.slow
def test_models_cli(home, tmp_path, mod):
    ex = run(mod.pipeline, {"seed": 1, "score": 0.8})
    register("toy", model_at(tmp_path, "outside"), metrics={"accuracy": 0.85}, why="hand-made")
    out = cli_run(home, "models", "--json")
    assert out.exit_code == 0, out.output
    (toy,) = json.loads(out.stdout)
    assert toy["name"] == "toy" and toy["aliases"] == {"production": 2}
    v1, v2 = toy["versions"]
    assert (v1["version"], v1["execution_id"], v1["step"], v1["metrics"]) == (1, ex.id, "publish", {"accuracy": 0.8})
    assert (v2["version"], v2["execution_id"], v2["aliases"]) == (2, None, ["production"])
    assert v1["registered_at"].endswith("Z")
    table = cli_run(home, "models")
    assert table.exit_code == 0 and ex.id in table.output and "accuracy=0.85" in table.output
    assert "production" in table.output

    promoted = cli_run(home, "promote", "toy", "1", "--alias", "production", "--why", "outside model is unvetted")
    assert promoted.exit_code == 0 and "v1 (was v2)" in promoted.output
    rolled = cli_run(home, "rollback", "toy", "--json")
    assert rolled.exit_code == 0 and json.loads(rolled.stdout)["version"] == 2
    detail = cli_run(home, "models", "toy", "--json")
    history = json.loads(detail.stdout)["history"]
    assert [(h["action"], h["version"]) for h in history] == [("register", 1), ("register", 2), ("promote", 1),
                                                             ("rollback", 2)]
    assert history[2]["why"] == "outside model is unvetted" and history[2]["at"].endswith("Z")
    human = cli_run(home, "models", "toy")
    assert "alias history" in human.output and "rollback" in human.output and "unvetted" in human.output

    for args, text in [(("promote", "toy", "7"), "no version 7"), (("promote", "nope", "1"), "no model named"),
                       (("rollback", "toy", "--alias", "staging"), "no alias 'staging'"),
                       (("models", "nope"), "no model named")]:
        bad = cli_run(home, *args)
        assert bad.exit_code == 2 and text in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    cli_run(home, "rollback", "toy")
    bottom = cli_run(home, "rollback", "toy")
    assert bottom.exit_code == 2 and "no earlier version" in bottom.stderr
    assert cli_run(home, "promote", "toy", "0").exit_code == 2  # versions start at 1


def test_models_cli_on_an_empty_home(tmp_path):
    out = cli_run(tmp_path / "empty", "models", "--json")
    assert out.exit_code == 2 and "no ledger found" in out.stderr


@pytest.mark.slow
def test_chain_verifies_and_tampering_a_registry_row_is_caught(home, tmp_path, mod):
    run(mod.pipeline, {"seed": 1})
    register("toy", model_at(tmp_path, "b"), metrics={"accuracy": 0.5})
    led = Ledger(home)
    led.promote("toy", 1, why="b is worse")
    led.rollback("toy")
    report = led.verify()
    assert report.ok, report.problems
    assert led.sql("SELECT count(*) AS n FROM model_versions").to_pylist()[0]["n"] == 2
    assert led.sql("SELECT count(*) AS n FROM alias_log").to_pylist()[0]["n"] == 4

    seq = led.sql("SELECT seq FROM model_versions WHERE version = 2").to_pylist()[0]["seq"]
    con = duckdb.connect(str(led.path))
    con.execute("""UPDATE model_versions SET metrics = '{"accuracy": 0.99}' WHERE seq = ?""", [seq]).fetchall()
    con.close()
    problem = Ledger(home).verify(store=False).problems[0]
    assert (problem.table, problem.seq, problem.what) == ("model_versions", seq, "changed")


@pytest.mark.slow
def test_tampering_an_alias_move_is_caught(home, tmp_path):
    register("toy", model_at(tmp_path, "a"))
    register("toy", model_at(tmp_path, "b"))
    led = Ledger(home)
    led.promote("toy", 1, who="alice@lab")
    seq = led.sql("SELECT seq FROM alias_log WHERE action = 'promote'").to_pylist()[0]["seq"]
    con = duckdb.connect(str(led.path))
    con.execute("UPDATE alias_log SET who = 'mallory@lab' WHERE seq = ?", [seq]).fetchall()
    con.close()
    problem = led.verify(store=False).problems[0]
    assert (problem.table, problem.seq, problem.what) == ("alias_log", seq, "changed")


@pytest.mark.slow
def test_the_views_give_current_state(home, tmp_path):
    register("toy", model_at(tmp_path, "a"))
    register("toy", model_at(tmp_path, "b"))
    led = Ledger(home)
    led.promote("toy", 1, "staging")
    aliases = {(r["alias"], r["version"]) for r in led.sql("SELECT alias, version FROM aliases").to_pylist()}
    assert aliases == {("production", 2), ("staging", 1)}
    rows = led.sql("SELECT version, aliases FROM models ORDER BY version").to_pylist()
    assert rows == [{"version": 1, "aliases": ["staging"]}, {"version": 2, "aliases": ["production"]}]


@pytest.mark.slow
def test_a_version_1_ledger_opens_and_gains_the_registry(home, tmp_path, mod):
    from ledgerflow.lineage import schema

    ex = run(mod.training, {"seed": 1})
    led = Ledger(home)
    led.sync()  # the run's journal moved into the file
    # Make it what a version 1 Ledgerflow wrote: no registry, tag or gc tables.
    con = duckdb.connect(str(led.path))
    for view in ("models", "aliases", "tags"):
        con.execute(f"DROP VIEW {view}").fetchall()
    for t in schema.V2_TABLES:
        con.execute(f"DROP TABLE {t.name}").fetchall()
    con.execute("DELETE FROM meta WHERE key = 'schema_version' AND value <> '1'").fetchall()
    con.execute("INSERT INTO meta SELECT 'schema_version', '1' WHERE NOT EXISTS "
                "(SELECT 1 FROM meta WHERE key = 'schema_version')").fetchall()
    con.close()
    # Readers cope before any write migrates it.
    assert led.verify(store=False).ok
    assert led.models() == () and led.model("toy") is None and led.tags(ex.id) == ()
    assert led.execution(ex.id).status == "succeeded"
    # The next write migrates it; the chain carries on from the old head.
    head = led.verify(store=False).head_seq
    v = register("toy", model_at(tmp_path, "new"))
    assert v.version == 1
    assert led.sql("SELECT min(seq) AS s FROM model_versions").to_pylist()[0]["s"] == head + 1
    versions = sorted(r["value"] for r in led.sql("SELECT value FROM meta WHERE key = 'schema_version'").to_pylist())
    assert versions == ["1", str(schema.SCHEMA_VERSION)]
    assert led.verify().ok


def test_a_newer_ledger_is_refused(home, tmp_path):
    from ledgerflow.errors import LedgerError

    register("toy", model_at(tmp_path, "a"))  # (reads it back: the file holds it)
    con = duckdb.connect(str(Ledger(home).path))
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')").fetchall()
    con.close()
    with pytest.raises(LedgerError, match="schema version 99"):
        register("toy", model_at(tmp_path, "b"))
