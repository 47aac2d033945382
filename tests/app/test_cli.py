"""The `lineage` CLI: human and --json output, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ledgerflow.lineage import Ledger
from ledgerflow.app.cli import cli
from ledger_events import pipeline_events, retrain_events


@pytest.fixture
def recorded(tmp_path):
    home = tmp_path / "home"
    with Ledger(home) as led:
        evs, arts = pipeline_events(train_failures=1)
        for ev in evs:
            led.record(ev)
        evs2, arts2 = retrain_events(arts["dataset"], lr=0.01, dataset_from=arts["id"])
        for ev in evs2:
            led.record(ev)
    return home, arts, arts2


def run(*args, home=None, env=None):
    runner = CliRunner()
    full = (["--home", str(home)] if home else []) + list(args)
    return runner.invoke(cli, full, env=env, catch_exceptions=False)


def test_version_and_help():
    assert run("--version").exit_code == 0
    out = run("--help")
    assert out.exit_code == 0
    for cmd in ("list", "show", "query", "verify"):
        assert cmd in out.output


def test_list_json_and_table(recorded):
    home, arts, arts2 = recorded
    out = run("list", "--json", home=home)
    assert out.exit_code == 0
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == [arts2["id"], arts["id"]] or {r["id"] for r in rows} == {arts["id"], arts2["id"]}
    assert set(rows[0]) >= {"id", "workflow", "status", "started_at", "ended_at", "duration_s"}
    assert rows[0]["started_at"].endswith("Z")
    table = run("list", home=home)
    assert arts["id"] in table.output and "succeeded" in table.output


def test_home_from_environment(recorded):
    home, arts, _ = recorded
    out = run("list", "--json", env={"LEDGERFLOW_HOME": str(home)})
    assert len(json.loads(out.stdout)) == 2


def test_show_tree_has_retries_cache_and_digests(recorded):
    home, arts, _ = recorded
    out = run("show", arts["id"][:12], home=home)
    assert out.exit_code == 0, out.output
    text = out.output
    assert "train" in text and "attempts=2" in text and "CUDA out of memory" in text
    assert arts["model"].digest[:19] in text
    data = json.loads(run("show", arts["id"], "--json", home=home).stdout)
    train = next(s for s in data["steps"] if s["step"] == "train")
    assert [a["status"] for a in train["attempts"]] == ["failed", "succeeded"]
    assert train["outputs"][0]["artifact"]["digest"] == arts["model"].digest


def test_query_upstream_and_downstream(recorded):
    home, arts, arts2 = recorded
    up = json.loads(run("query", "upstream", arts["model"].digest[:20], "--json", home=home).stdout)
    refs = {n["ref"] for n in up["nodes"]}
    assert arts["dataset"].digest in refs and arts["lr"].digest in refs
    down = json.loads(run("query", "downstream", arts["dataset"].digest, "--json", home=home).stdout)
    assert arts2["model"].digest in {n["ref"] for n in down["nodes"]}
    shallow = json.loads(run("query", "upstream", arts["model"].digest, "--depth", "1", "--json", home=home).stdout)
    assert max(n["depth"] for n in shallow["nodes"]) == 1
    table = run("query", "upstream", f"{arts['id']}:train", home=home)
    assert table.exit_code == 0 and "0.001" in table.output


def test_query_sql(recorded):
    home, arts, _ = recorded
    out = run("query", "sql", "SELECT execution_id FROM params WHERE name = 'lr' AND value = '0.001'", "--json", home=home)
    assert json.loads(out.stdout) == [{"execution_id": arts["id"]}]
    out = run("query", "sql", "SELECT task, count(*) AS n FROM steps GROUP BY 1 ORDER BY 1", home=home)
    assert out.exit_code == 0 and "examples.quickstart:train" in out.output


def _one_line_error(out, code):
    assert out.exit_code == code
    assert "Traceback" not in out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lineage: error: ")
    return lines[0]


def test_sql_writes_are_refused(recorded):
    home, *_ = recorded
    before = run("verify", "--no-store", "--json", home=home).stdout
    line = _one_line_error(run("query", "sql", "DELETE FROM step_log", home=home), 2)
    assert "read-only" in line and "DELETE" in line
    assert run("verify", "--no-store", "--json", home=home).output == before


def test_bad_sql_bad_ref_unknown_id(recorded):
    home, *_ = recorded
    assert "SQL" in _one_line_error(run("query", "sql", "SELEC nope", home=home), 2)
    assert "no artifact or execution" in _one_line_error(run("query", "upstream", "blake3:fffff0000", home=home), 2)
    assert "no execution" in _one_line_error(run("show", "NOPE", home=home), 2)


def test_missing_ledger(tmp_path):
    """No ledger where the command looked: one line saying where, exit 2 (as an unknown id)."""
    for args in (["show", "X"], ["list", "--json"], ["verify"], ["logs", "latest"]):
        line = _one_line_error(run(*args, home=tmp_path / "none"), 2)
        assert "no ledger found: looked for" in line and str(tmp_path / "none") in line


@pytest.mark.slow
def test_verify_exit_codes(recorded):
    home, *_ = recorded
    ok = run("verify", home=home)
    assert ok.exit_code == 0 and "ok" in ok.output
    report = json.loads(run("verify", "--json", home=home).stdout)
    assert report["ok"] is True and report["problems"] == []
    import duckdb

    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("UPDATE artifacts SET value = '0.1' WHERE value = '0.001'").fetchall()
    con.close()
    bad = run("verify", home=home)
    assert bad.exit_code == 1
    assert "artifacts row seq=" in bad.stderr and "changed" in bad.stderr
    data = json.loads(run("verify", "--json", home=home).stdout)
    assert data["ok"] is False and data["problems"][0]["table"] == "artifacts"


# ------------------------------------------------------- where each input came from (issue 11)

from ledgerflow import ExecutionFailed, log_metric, task, workflow  # noqa: E402
from ledgerflow import run as run_workflow  # noqa: E402


@task(cache=True)
def make_rows(n: int) -> list[int]:
    log_metric("rows", n)
    return list(range(n))


@task
def count_rows(xs: list[int], n: int) -> int:
    return len(xs) if len(xs) == n else -1


@workflow
def counted(n: int = 3) -> int:
    return count_rows(xs=make_rows(n=n), n=n)


@task
def refuse(n: int) -> list[int]:
    raise ValueError("refused")


@workflow
def refused(n: int = 3) -> int:
    return count_rows(xs=refuse(n=n), n=n)


def _line(text: str, start: str) -> str:
    return next(ln.split(start, 1)[1].rstrip() for ln in text.splitlines() if start in ln)


@pytest.mark.slow
def test_show_says_where_each_input_came_from(tmp_path):
    home = tmp_path / "home"
    first = run_workflow(counted, home=home, progress=False)
    second = run_workflow(counted, home=home, progress=False)
    assert second.steps["make_rows"].status == "cached"
    text = run("show", second.id, home=home).output
    assert _line(text, "in  xs: ").endswith("list[int]  <- make_rows.return")
    assert _line(text, "in  n: ").endswith("int  <- @params.n")
    # a cache hit's output and metrics: the occurrence reused, in the execution that made it
    assert _line(text, "out return: ").endswith(f"list[int]  <- {first.id[:12]}:make_rows.return (cache hit)")
    assert _line(text, "metric rows = 3") == f" (reused from {first.id[:12]}:make_rows)"
    assert text.splitlines()[-1].endswith("int  <- count_rows.return")  # the workflow's output

    data = json.loads(run("show", second.id, "--json", home=home).stdout)
    steps = {s["step"]: s for s in data["steps"]}
    assert [(b["name"], b["source"], b["how"]) for b in steps["count_rows"]["inputs"]] == [
        ("xs", f"{second.id}:make_rows.return", "step"), ("n", f"{second.id}:@params.n", "param")]
    assert (steps["make_rows"]["outputs"][0]["source"], steps["make_rows"]["outputs"][0]["how"]) == (
        f"{first.id}:make_rows.return", "cache")
    assert steps["make_rows"]["metrics"][0]["reused_from"] == f"{first.id}:make_rows"
    assert data["graph"]["inferred"] is False
    assert {(e["source"], e["target"], e["param"]) for e in data["graph"]["edges"]} == {
        ("@params", "make_rows", "n"), ("make_rows", "count_rows", "xs"), ("@params", "count_rows", "n"),
        ("count_rows", "@outputs", "return")}

    # metrics: the cached step's metric is there (not missing), and says whose it is
    table = run("metrics", second.id, home=home).output
    assert "rows" in table and "reused from" in table and f"{first.id}:make_rows" in table
    compared = json.loads(run("compare", first.id, second.id, "--json", home=home).stdout)["metrics"]
    assert compared == [{"step": "make_rows", "metric": "rows", "values": {first.id: 3.0, second.id: 3.0}}]


def test_show_names_the_step_that_blocked_a_skipped_one(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ExecutionFailed) as err:
        run_workflow(refused, home=home, progress=False)
    text = run("show", err.value.execution.id, home=home).output
    line = next(ln for ln in text.splitlines() if "count_rows" in ln and "skipped" in ln)
    assert "blocked by refuse" in line
    assert text.count("upstream step 'refuse' failed") == 1


@pytest.mark.slow
def test_diff_compares_the_recorded_graphs(tmp_path):
    home = tmp_path / "home"
    a = run_workflow(counted, home=home, progress=False)
    b = run_workflow(counted, {"n": 4}, home=home, progress=False)
    with pytest.raises(ExecutionFailed) as err:
        run_workflow(refused, home=home, progress=False)
    c = err.value.execution.id
    same = run("diff", a.id, b.id, home=home).output
    assert "graph: identical" in same and "n: 3 -> 4" in same
    changed = json.loads(run("diff", a.id, c, "--json", home=home).stdout)["graph"]
    assert changed["inferred"] == [False, False]
    assert (changed["steps_only_in_first"], changed["steps_only_in_second"]) == (["make_rows"], ["refuse"])
    assert [(e["source"], e["target"], e["param"]) for e in changed["edges_only_in_second"]] == [
        ("@params", "refuse", "n"), ("refuse", "count_rows", "xs")]
    text = run("diff", a.id, c, home=home).output
    assert "- make_rows.return -> count_rows.xs" in text and "+ refuse.return -> count_rows.xs" in text


def test_exit_codes_come_from_the_error_class_alone():
    from ledgerflow import errors
    from ledgerflow.app.commands.group import EXIT_CODES, EXIT_PROBLEM, EXIT_USAGE, exit_code

    for cls, code in EXIT_CODES:
        assert exit_code(cls("whatever it says")) == code
    # A message that reads like bad input does not make it bad input: only the class does.
    assert exit_code(errors.LedgerError("bad SQL: it looks like the user's, but the class says otherwise")) \
        == EXIT_PROBLEM
    assert exit_code(errors.QueryError("anything")) == EXIT_USAGE
    # Every class in the table is a LedgerflowError from errors.py, so `guarded` catches it.
    assert all(issubclass(cls, errors.LedgerflowError) and cls.__module__ == "ledgerflow.errors"
               for cls, _ in EXIT_CODES)
