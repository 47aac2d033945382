"""The team ledger on a real PostgreSQL server: roles, several hosts at once, the server
failing, moving a file's history in, and a server whose history was rewritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest
from click.testing import CliRunner

from conftest import wait_until
from ledgerflow import Ledger
from ledgerflow.errors import LedgerError, LedgerServerError
from ledgerflow.app.cli import cli

# Each "host" is a process of its own with a home of its own; they share the server and, where
# files cross between them, an S3 store.
SCRIPT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    import ledgerflow
    from ledgerflow import File, map_task, task, workflow

    @task
    def make(n: int) -> File:
        path = Path(ledgerflow.current().home) / f"made-{n}.txt"
        path.write_text("rows " * n)
        return File.from_path(path)

    @task
    def size(f: File) -> int:
        return len(f.read_bytes())

    @task
    def inc(x: int) -> int:
        time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
        gate = os.environ.get("GATE")
        if gate and x == 0:
            Path(gate, "running").touch()
            while not Path(gate, "go").exists():
                time.sleep(0.05)
        return x + 1

    @workflow
    def produce(n: int = 3) -> File:
        return make(n=n)

    @workflow
    def consume(f: File) -> int:
        return size(f=f)

    @task
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @workflow
    def many(n: int = 40) -> list[int]:
        return map_task(inc, x=numbers(n=n))

    if __name__ == "__main__":
        which = sys.argv[1]
        params = dict(arg.split("=", 1) for arg in sys.argv[2:])
        wf = {"produce": produce, "consume": consume, "many": many}[which]
        if "n" in params:
            params["n"] = int(params["n"])
        ex = ledgerflow.run(wf, params, progress=False)
        print(ex.id)
''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "team_jobs.py"
    path.write_text(SCRIPT)
    return path


def host(tmp_path, name: str, ledger_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERFLOW_")}
    env.update(LEDGERFLOW_HOME=str(tmp_path / name), LEDGERFLOW_LEDGER=ledger_url, PYTHONWARNINGS="ignore", **extra)
    return env


def run_on(script, env, *args, timeout=180) -> str:
    done = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def lineage(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def test_the_roles_and_triggers_keep_it_append_only(team_ledger, script, tmp_path):
    run_on(script, host(tmp_path, "a", team_ledger.writer_url), "many", "n=3")
    as_writer = psycopg.connect(team_ledger.writer_url, autocommit=True)
    as_reader = psycopg.connect(team_ledger.reader_url, autocommit=True)
    admin = team_ledger.admin()
    for statement in ("UPDATE ledgerflow.step_log SET state = 'failed'", "DELETE FROM ledgerflow.step_log",
                      "TRUNCATE ledgerflow.step_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_writer.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            admin.execute(statement)  # even its owner: the triggers refuse
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_reader.execute("INSERT INTO ledgerflow.meta VALUES ('x', 'y')")
    rows = admin.execute("SELECT count(*) FROM step_log").fetchone()[0]
    assert rows > 0
    assert lineage("ledger", "init", team_ledger.admin_url, "--json").exit_code == 0  # again: changes no row
    assert admin.execute("SELECT count(*) FROM step_log").fetchone()[0] == rows

    # The reader's URL reads everything and records nothing: a run with it fails before its first step.
    reader_home = host(tmp_path, "r", team_ledger.reader_url)
    assert len(Ledger(tmp_path / "r", ledger=team_ledger.reader_url).executions()) == 1
    done = subprocess.run([sys.executable, str(script), "many", "n=2"], env=reader_home, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "read but not record" in done.stderr
    assert not (tmp_path / "r" / "made-2.txt").exists()


def test_four_hosts_record_into_one_ledger_and_lineage_crosses_them(team_ledger, script, tmp_path, s3_server):
    store = {"LEDGERFLOW_STORE": s3_server.url(f"team-{team_ledger.name}")}
    hosts = [host(tmp_path, f"host{i}", team_ledger.writer_url, **store) for i in range(4)]
    procs = [subprocess.Popen([sys.executable, str(script), "many", "n=40"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for env in hosts]
    watcher = Ledger(tmp_path / "watcher", ledger=team_ledger.reader_url)
    seen = set()
    while any(p.poll() is None for p in procs):  # a reader elsewhere sees the runs as they happen
        seen |= {e.id for e in watcher.executions()}
        time.sleep(0.2)
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    ids = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert seen <= ids and seen, "the watcher saw runs while they ran"
    executions = watcher.executions()
    assert {e.id for e in executions} == ids and {e.status for e in executions} == {"succeeded"}
    assert {len(watcher.execution(i).steps) for i in ids} == {42}  # numbers, the map and its 40 elements
    report = watcher.verify(store=False)
    assert report.ok and report.rows == team_ledger.admin().execute(
        "SELECT count(*) FROM (SELECT seq FROM execution_log UNION ALL SELECT seq FROM step_log UNION ALL "
        "SELECT seq FROM artifacts UNION ALL SELECT seq FROM edges UNION ALL SELECT seq FROM graph_log "
        "UNION ALL SELECT seq FROM graph_specs UNION ALL SELECT seq FROM task_identities "
        "UNION ALL SELECT seq FROM node_log UNION ALL SELECT seq FROM step_streams) AS s").fetchone()[0]

    # A file produced on host 0 is consumed on host 1, by reference: lineage runs back across hosts.
    made = run_on(script, hosts[0], "produce", "n=5")
    used = run_on(script, hosts[1], "consume", f"f={made}:make")
    assert watcher.execution(used).outputs[0].artifact.value == "25"
    assert f"{made}:make" in {n.ref for n in watcher.upstream(f"{used}:size").nodes if n.kind == "step"}
    assert f"{used}:size" in {n.ref for n in watcher.downstream(f"{made}:make").nodes if n.kind == "step"}

    # Host 1 replays host 0's run: same store, same ledger.
    result = lineage("replay", made, "--json", env={"LEDGERFLOW_HOME": str(tmp_path / "host1"),
                                                    "LEDGERFLOW_LEDGER": team_ledger.writer_url, **store})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "identical", result.output


def test_a_server_stopped_mid_run_loses_nothing(team_ledger, postgres, script, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = host(tmp_path, "a", team_ledger.writer_url, GATE=str(gate))
    proc = subprocess.Popen([sys.executable, str(script), "many", "n=5"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (gate / "running").exists(), proc, "the first step running")
        postgres.stop()
        (gate / "go").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        postgres.start()
    assert proc.returncode == 0, err  # the run itself went on: its record waits in the journal
    assert "did not take this run's events yet" in err
    execution_id = out.strip().splitlines()[-1]
    elsewhere = Ledger(tmp_path / "b", ledger=team_ledger.reader_url)
    assert execution_id in {e.id for e in elsewhere.executions()}  # started before the server stopped
    # The rest is still journaled on host a. (Its process is gone, and these "hosts" share a
    # machine, so the reader can tell: it reads the run as interrupted; elsewhere, running.)
    assert elsewhere.execution(execution_id).summary.status == "interrupted"
    # Any read on the recording host delivers what its journal kept.
    assert Ledger(tmp_path / "a", ledger=team_ledger.writer_url).execution(execution_id).summary.status == "succeeded"
    shown = elsewhere.execution(execution_id)
    assert shown.summary.status == "succeeded" and len(shown.steps) == 7
    assert elsewhere.verify(store=False).ok


def test_a_writer_killed_mid_flush_loses_nothing(team_ledger, script, tmp_path):
    env = host(tmp_path, "a", team_ledger.writer_url, STEP_SLEEP="0.01")
    proc = subprocess.Popen([sys.executable, str(script), "many", "n=400"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watcher = Ledger(tmp_path / "w", ledger=team_ledger.reader_url)
    wait_until(lambda: watcher.executions(), proc, "the run reaching the server")
    time.sleep(1.2)  # a few deliveries in, a few seconds before its end
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    journaled = sum(1 for path in (tmp_path / "a" / "ledgers").glob("*/journal/*.jrnl")
                    for _ in open(path)) - 1  # less the header
    Ledger(tmp_path / "a", ledger=team_ledger.writer_url).sync()  # the home's next reader delivers the rest
    (execution,) = watcher.executions()
    assert execution.status == "interrupted"
    steps = watcher.execution(execution.id).steps
    assert journaled > 0 and len(steps) >= 1
    assert watcher.verify(store=False).ok
    delivered = team_ledger.admin().execute("SELECT sum(events) FROM journal_moves").fetchone()[0]
    assert delivered == journaled  # every whole record exactly once


def test_wrong_server_settings_are_one_line_each(team_ledger, postgres, tmp_path):
    home = str(tmp_path / "h")

    def fails(url, expected):
        result = lineage("--home", home, "--ledger", url, "list")
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.output
        assert "pw" not in lines[0]  # no password in messages

    fails(postgres.url("ledgerflow_writer", "wrong-pw", team_ledger.name), "refused these credentials")
    fails(f"postgresql://nobody:pw@127.0.0.1:{_closed_port()}/x", "cannot reach the ledger server")
    fails(postgres.url("postgres", postgres.password, "postgres"), "holds no Ledgerflow ledger")
    team_ledger.admin().execute("INSERT INTO meta VALUES ('schema_version', '99')")
    fails(team_ledger.writer_url, "newer Ledgerflow")
    with pytest.raises(LedgerServerError, match="not a PostgreSQL URL"):
        Ledger(tmp_path / "x", ledger="mysql://db/x")


def test_an_unreachable_server_fails_a_run_before_its_first_step(script, tmp_path):
    env = host(tmp_path, "a", f"postgresql://w:pw@127.0.0.1:{_closed_port()}/team")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script), "produce"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "cannot reach the ledger server postgresql://w@127.0.0.1" in done.stderr
    assert not (tmp_path / "a" / "made-3.txt").exists()
    assert time.monotonic() - started < 60


def test_a_files_history_moves_in_once(team_ledger, script, tmp_path):
    env = {k: v for k, v in host(tmp_path, "solo", "").items() if k != "LEDGERFLOW_LEDGER"}
    solo = run_on(script, env, "many", "n=3")
    out = tmp_path / "export"
    assert lineage("--home", str(tmp_path / "solo"), "export", "--format", "parquet", str(out)).exit_code == 0
    team = ["--home", str(tmp_path / "t"), "--ledger", team_ledger.writer_url]
    first = lineage(*team, "import", str(out), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["executions_imported"] == [solo]
    again = lineage(*team, "import", str(out), "--json")
    assert json.loads(again.stdout)["executions_imported"] == [] and json.loads(again.stdout)["executions_skipped"] == [solo]
    reader = Ledger(tmp_path / "r", ledger=team_ledger.reader_url)
    assert reader.execution(solo).summary.status == "succeeded" and reader.verify(store=False).ok
    assert Ledger(tmp_path / "solo").verify(store=False).ok

    # The same record gives the same answers, byte for byte, from the file and from the server.
    on_file = ["--home", str(tmp_path / "solo")]
    on_server = ["--home", str(tmp_path / "r"), "--ledger", team_ledger.reader_url]
    for verb in (["list"], ["show", solo], ["query", "upstream", f"{solo}:inc[1]"],
                 ["query", "downstream", f"{solo}:numbers"], ["metrics", solo], ["why", f"{solo}:numbers"]):
        results = [lineage(*where, *verb, "--json") for where in (on_file, on_server)]
        assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
        assert results[0].stdout == results[1].stdout, verb


def test_a_history_rewritten_on_the_server_is_named(team_ledger, script, tmp_path):
    run_on(script, host(tmp_path, "a", team_ledger.writer_url), "many", "n=3")
    reader = Ledger(tmp_path / "r", ledger=team_ledger.reader_url)
    assert reader.verify(store=False).ok  # this home holds a copy now
    admin = team_ledger.admin()
    seq = admin.execute("SELECT min(seq) FROM step_log").fetchone()[0]
    admin.execute("ALTER TABLE step_log DISABLE TRIGGER USER")  # what a superuser could still do
    admin.execute("UPDATE step_log SET state = 'failed' WHERE seq = %s", [seq])
    report = reader.verify(store=False)
    assert not report.ok and report.first_problem.seq == seq
    # A new reader has no copy to compare with, and still sees the broken chain.
    assert Ledger(tmp_path / "fresh", ledger=team_ledger.reader_url).verify(store=False).first_problem.seq == seq


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
