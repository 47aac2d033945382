"""Step logs (issue 16, point 1): what a step prints and logs is kept per attempt, on both
executors, stored by content and linked from the ledger; `lineage logs` prints it (and follows
a running step from another process); `show` prints the whole traceback; `--json` output stays
JSON however much the steps print."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from conftest import wait_until
from ledgerflow import ExecutionFailed, Ledger, run, task, workflow
from ledgerflow.engine.capture import _lines, _Tee, captured
from ledgerflow.app.cli import cli
from ledgerflow.store import Store

LINEAGE = Path(sys.executable).with_name("lineage")


@task
def chatty(n: int) -> int:
    print(f"counting to {n}")
    print("a warning on stderr", file=sys.stderr)
    logging.getLogger("my.model").warning("loss is %s", 0.25)
    return n + 1


@task(retries=1)
def explode(x: int) -> int:
    print(f"trying x={x}")
    raise ValueError(f"cannot use x={x}")


@workflow
def noisy(n: int = 2) -> int:
    return explode(x=chatty(n=n))


def test_each_attempt_keeps_what_it_wrote_on_both_executors(home, executor):
    with pytest.raises(ExecutionFailed) as failed:
        run(noisy, executor=executor, home=home, progress=False)
    eid = failed.value.execution.id
    logs = {(g.step, g.attempt, g.stream): g for g in Ledger(home).logs(eid)}
    assert logs[("chatty", 1, "stdout")].text == "counting to 2\n"
    assert logs[("chatty", 1, "stderr")].text == "a warning on stderr\nWARNING my.model: loss is 0.25\n"
    assert logs[("explode", 1, "stdout")].text == logs[("explode", 2, "stdout")].text == "trying x=3\n"
    assert ("explode", 1, "stderr") not in logs  # a stream a step never wrote to is not recorded
    one = logs[("chatty", 1, "stdout")]
    assert Store.open(str(home / "store")).get_bytes(one.digest) == b"counting to 2\n"  # by content
    assert one.size == 14 and one.lines == 1
    assert [g.attempt for g in Ledger(home).logs(f"{eid}:explode", attempt=2)] == [2]


@pytest.mark.slow
def test_lineage_logs_and_show_print_what_happened(home):
    with pytest.raises(ExecutionFailed) as failed:
        run(noisy, home=home, progress=False)
    eid = failed.value.execution.id

    def lineage(*args):
        out = CliRunner().invoke(cli, ["--home", str(home), *args])
        assert out.exit_code == 0, out.output
        return out.stdout

    assert lineage("logs", f"{eid}:chatty", "--stream", "stdout") == "counting to 2\n"
    both = lineage("logs", f"{eid}:explode")
    assert "==> explode attempt 1 stdout <==\ntrying x=3\n" in both and "==> explode attempt 2 stdout <==" in both
    assert lineage("logs", f"{eid}:explode", "--attempt", "2") == "trying x=3\n"
    assert [g["attempt"] for g in json.loads(lineage("logs", eid, "--json"))] == [1, 1, 1, 2]
    shown = lineage("show", eid)
    assert "Traceback (most recent call last)" in shown and 'raise ValueError(f"cannot use x={x}")' in shown
    made = Ledger(home).execution(eid).steps[0].outputs[0].artifact.digest
    artifact = CliRunner().invoke(cli, ["--home", str(home), "logs", made])
    assert artifact.exit_code == 2 and "logs belong to a step" in artifact.output


SCRIPT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from ledgerflow import task, workflow

    @task
    def slow(n: int) -> int:
        print("first line", flush=True)
        Path(os.environ["STARTED"]).touch()
        while not Path(os.environ["GO"]).exists():
            time.sleep(0.05)
        print("second line")
        return n

    @workflow
    def wf(n: int = 1) -> int:
        return slow(n=n)

    @task
    def loud(n: int) -> int:
        print("{" * n)
        print('{"not": "the output"}')
        return n

    @workflow
    def printing(n: int = 3) -> int:
        return loud(n=n)
''')


def _lineage(home: Path, *args: str, **popen) -> list:
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return base + ["--home", str(home), *args]


def test_json_stdout_is_only_json_when_steps_print(home, tmp_path):
    (tmp_path / "wfs.py").write_text(SCRIPT)
    out = subprocess.run(_lineage(home, "run", f"{tmp_path / 'wfs.py'}:printing", "--json"), capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outputs"] == 3
    assert '{"not": "the output"}' in out.stderr  # still shown, on stderr


@pytest.mark.slow
def test_follow_prints_a_running_steps_output_as_it_comes(home, tmp_path):
    (tmp_path / "wfs.py").write_text(SCRIPT)
    env = {**os.environ, "STARTED": str(tmp_path / "started"), "GO": str(tmp_path / "go")}
    runner = subprocess.Popen(_lineage(home, "run", f"{tmp_path / 'wfs.py'}:wf"), env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    follower = None
    try:
        wait_until((tmp_path / "started").exists, runner, "the step started")
        eid = Ledger(home).executions()[0].id
        follower = subprocess.Popen(_lineage(home, "logs", f"{eid}:slow", "--follow"), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        lines = []
        while "first line\n" not in lines:  # printed while the step is still waiting
            line = follower.stdout.readline()
            assert line, follower.stderr.read()
            lines.append(line)
        assert runner.poll() is None
        (tmp_path / "go").touch()
        rest, err = follower.communicate(timeout=120)
        assert follower.returncode == 0, err
        assert rest.endswith("second line\n") and rest.count("first line") == 0  # each line once
        assert runner.wait(timeout=120) == 0
    finally:
        for p in (runner, follower):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


@given(writes=st.lists(st.text(max_size=40), max_size=20))
def test_a_stream_keeps_and_echoes_exactly_what_was_written(writes):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    echo = Terminal()
    tee = _Tee("stdout", echo, True, None)
    tee.prefix_lines_with("[s] ")
    for w in writes:
        tee.write(w)
    text = "".join(writes)
    assert tee.text() == text
    shown = _lines(echo.getvalue())
    assert [line.removeprefix("[s] ") for line in shown] == _lines(text)
    assert all(line.startswith("[s] ") for line in shown)


def test_capture_restores_the_streams_and_logging(monkeypatch):
    before = sys.stdout, sys.stderr, logging.getLogger().level, list(logging.getLogger().handlers)
    with pytest.raises(RuntimeError), captured("s", echo=False) as c:
        print("kept")
        raise RuntimeError
    assert (sys.stdout, sys.stderr, logging.getLogger().level, list(logging.getLogger().handlers)) == before
    assert c.out.text() == "kept\n"


@task
def sleepy(n: int) -> int:
    print(f"start {n}")
    sys.stdout.buffer.write(f"bytes {n}\n".encode())  # binary writes are kept too
    time.sleep(0.3 * n)
    print(f"done {n}")
    return n


@workflow
def one_sleepy(n: int = 1) -> int:
    return sleepy(n=n)


@pytest.mark.slow
def test_two_runs_in_two_threads_keep_their_output_apart(home):
    import threading

    ids = {}

    def go(n):
        ids[n] = run(one_sleepy, {"n": n}, home=home, progress=False).id

    threads = [threading.Thread(target=go, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, eid in ids.items():
        assert [g.text for g in Ledger(home).logs(eid)] == [f"start {n}\nbytes {n}\ndone {n}\n"]
    print("the streams are ours again")  # would raise on a closed capture left in sys.stdout
    assert type(sys.stdout).__name__ != "_Router"


def test_a_running_steps_output_so_far_is_readable(home, tmp_path):
    from ledgerflow.engine.capture import captured

    ledger = Ledger(home)
    ex = run(one_sleepy, {"n": 0}, home=home, progress=False)
    # An attempt of that execution still running, as a worker would spool it:
    with captured("late", spool=(str(home), ex.id, 1)):
        print("halfway there")
        live = [g for g in ledger.logs(ex.id, spooled=True) if g.step == "late"]
        assert [(g.attempt, g.stream, g.digest, g.text) for g in live] == [(1, "stdout", None, "halfway there\n")]
    assert not [g for g in ledger.logs(ex.id) if g.step == "late"]  # not recorded: only spooled


def test_a_capture_that_stays_installed_keeps_steps_apart_and_prints_warnings_between_them():
    # How a Ray worker runs: the capture stays up between steps. A step's records stay its own,
    # and a warning logged between steps is printed as logging's last resort would print it.
    script = textwrap.dedent("""
        import logging, sys
        from ledgerflow.engine import capture
        capture.stay_installed()
        with capture.captured("one", echo=False) as c:
            logging.getLogger("user").info("inside")
        logging.getLogger("user").info("between, info")
        logging.getLogger("user").warning("between, warning")
        with capture.captured("two", echo=False) as d:
            print("second")
        print(repr(c.err.text()), repr(d.out.text()), repr(d.err.text()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    one_err, two_out, two_err = done.stdout.strip().rsplit(" ", 2)
    assert "inside" in one_err and two_out == "'second\\n'" and two_err == "''"
    assert "between, warning" in done.stderr and "between, info" not in done.stderr + done.stdout
