"""Finding and reading (issue 16, point 3): the home found as git finds .git, `--home` before or
after the verb, one-line usage errors, `latest` refs, `list` filters and its default limit, ids
never cut, and `diff`-style plain values."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from ledgerflow import ExecutionFailed, Ledger, run, task, workflow
from ledgerflow.home import Home
from ledgerflow.app.cli import cli


@task
def double(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return 2 * n


@workflow
def doubling(n: int = 1) -> int:
    return double(n=n)


@task
def long_named_step_for_a_ref_that_is_wide(n: int) -> int:
    return n


@workflow
def wide(n: int = 1) -> int:
    return long_named_step_for_a_ref_that_is_wide(n=n)


def lineage(*args, cwd=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder whose .ledgerflow holds three runs (the last one failed), with no
    LEDGERFLOW_HOME set: the home must be found."""
    monkeypatch.delenv("LEDGERFLOW_HOME", raising=False)
    monkeypatch.delenv("LEDGERFLOW_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    first = run(doubling, {"n": 1}, progress=False)
    second = run(doubling, {"n": 2}, progress=False)
    with pytest.raises(ExecutionFailed) as failed:
        run(doubling, {"n": -1}, progress=False)
    (tmp_path / "src" / "deep").mkdir(parents=True)
    return tmp_path, [first.id, second.id, failed.value.execution.id]


def test_the_home_is_found_in_a_parent_folder(project, monkeypatch):
    root, ids = project
    monkeypatch.chdir(root / "src" / "deep")
    assert Home.resolve().path == root / ".ledgerflow" and Home.resolve().found_by == "found"
    out = lineage("list", "--json")
    assert out.exit_code == 0, out.output
    assert [e["id"] for e in json.loads(out.stdout)] == ids[::-1]
    # A run from the subfolder records into the same home, as a commit from a subfolder does.
    again = run(doubling, {"n": 5}, progress=False)
    assert Ledger(root / ".ledgerflow").executions(limit=1)[0].id == again.id


def test_no_ledger_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGERFLOW_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    for args in (["verify"], ["list"], ["show", "latest"]):
        out = lineage(*args)
        assert out.exit_code == 2
        assert out.stderr.count("\n") == 1 and f"looked for .ledgerflow/ in {tmp_path} and every folder above" in out.stderr


def test_home_before_or_after_the_verb(project, tmp_path_factory, monkeypatch):
    root, ids = project
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    home = str(root / ".ledgerflow")
    before = lineage("--home", home, "list", "--json")
    after = lineage("list", "--json", "--home", home)
    nested = lineage("query", "upstream", ids[0], "--home", home, "--json")
    assert before.exit_code == after.exit_code == nested.exit_code == 0, after.output + nested.output
    assert before.stdout == after.stdout


def test_usage_mistakes_are_one_line(project):
    for args in (["list", "--bogus"], ["nosuchverb"], ["show"], ["list", "--since", "yesterday"]):
        out = lineage(*args)
        assert out.exit_code == 2, args
        assert out.stderr.startswith("lineage: error: ") and out.stderr.count("\n") == 1, out.stderr


def test_latest_names_the_newest_execution(project):
    _, ids = project
    assert json.loads(lineage("show", "latest", "--json").stdout)["summary"]["id"] == ids[2]
    assert json.loads(lineage("show", "latest~2", "--json").stdout)["summary"]["id"] == ids[0]
    assert json.loads(lineage("logs", "latest:double", "--json").stdout) == []  # a ref with a step
    gone = lineage("show", "latest~3")
    assert gone.exit_code == 2 and "holds 3 execution(s)" in gone.stderr
    assert Ledger().occurrence("latest~1:double")[1] == f"{ids[1]}:double.return"


@pytest.mark.slow
def test_list_filters_and_its_default_limit(project):
    _, ids = project
    ledger = Ledger()
    Ledger().tag(ids[0], "baseline")

    def listed(*args):
        out = lineage("list", "--json", *args)
        assert out.exit_code == 0, out.output
        return [e["id"] for e in json.loads(out.stdout)]

    assert listed("--status", "failed") == [ids[2]]
    assert listed("--status", "succeeded") == ids[1::-1]
    assert listed("--workflow", "doubling") == ids[::-1] and listed("--workflow", "nope") == []
    assert listed("--tag", "baseline") == [ids[0]]
    assert listed("--since", "1h") == ids[::-1]
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert listed("--since", future) == []
    assert listed("--limit", "2") == ids[:0:-1]
    text = lineage("list", "--limit", "2")
    assert "the 2 newest shown" in text.stderr and ids[0] not in text.stdout
    assert [e.id for e in ledger.executions(status="failed", workflow="doubling")] == [ids[2]]


def test_ids_are_never_cut(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    ex = run(wide, progress=False)
    out = lineage("query", "downstream", ex.id)
    assert out.exit_code == 0, out.output
    assert f"{ex.id}:long_named_step_for_a_ref_that_is_wide" in out.stdout
    listed = lineage("list")
    assert ex.id in listed.stdout


def test_a_narrow_terminal_wraps_other_columns_not_ids():
    from rich.console import Console

    from ledgerflow.app.commands.output import Table

    ref = "01M8QZB4E42BPQ2J2XHBHKQWZS:long_named_step_for_a_ref_that_is_wide"
    table = Table("depth", "ref", "what", box=None)
    table.add_row("1", ref, "a description long enough that it has to wrap on a narrow terminal")
    console = Console(width=80, record=True)
    console.print(table)
    assert ref in console.export_text()


@pytest.mark.slow
def test_long_output_on_a_terminal_goes_through_the_pager(project, monkeypatch):
    """On a terminal, a listing taller than it goes to $PAGER (here one that marks its lines);
    piped, it is printed as it is."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    root, ids = project
    lineage_bin = Path(sys.executable).with_name("lineage")
    cmd = [str(lineage_bin)] if lineage_bin.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    env = {**os.environ, "PAGER": "sed s/^/PAGED:/", "LINES": "3", "COLUMNS": "200"}
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(cmd + ["list"], cwd=root, env=env, stdin=follower, stdout=follower,
                              stderr=subprocess.PIPE, timeout=60)
        os.close(follower)
        follower = None
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            out += chunk
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, proc.stderr
    text = out.decode(errors="replace")
    assert all(f"PAGED:{i}" in text for i in ids), text  # every row, through the pager
    piped = lineage("list")
    assert "PAGED" not in piped.stdout and all(i in piped.stdout for i in ids)
