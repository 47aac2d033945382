"""Other terminals (issue 16, point 2): `lineage watch` follows a running execution and `lineage
cancel` stops it from another process; the record holds only what really ran (the local
executor runs one step at a time, so one step is running, not all that are ready)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import wait_until

from ledgerflow import Ledger

LINEAGE = Path(sys.executable).with_name("lineage")

SCRIPT = textwrap.dedent('''
    import os, time
    from pathlib import Path
    from ledgerflow import task, workflow

    @task
    def wait_for_go(name: str) -> str:
        print(f"waiting as {name}", flush=True)
        Path(os.environ["STARTED"], name).touch()
        while not Path(os.environ["GO"]).exists():
            time.sleep(0.05)
        return name

    @workflow
    def three(a: str = "a", b: str = "b", c: str = "c") -> list[str]:
        return [wait_for_go(name=a), wait_for_go(name=b), wait_for_go(name=c)]
''')


def _lineage(home: Path, *args: str) -> list:
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return base + ["--home", str(home), *args]


def test_watch_and_cancel_from_other_processes(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "wf.py").write_text(SCRIPT)
    (tmp_path / "started").mkdir()
    env = {**os.environ, "STARTED": str(tmp_path / "started"), "GO": str(tmp_path / "go")}
    runner = subprocess.Popen(_lineage(home, "run", f"{tmp_path / 'wf.py'}:three"), env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = None
    try:
        wait_until(lambda: any((tmp_path / "started").iterdir()), runner, "a step started")
        ledger = Ledger(home)
        eid = ledger.executions()[0].id
        steps = {st.step: st.status for st in ledger.execution(eid).steps}
        assert list(steps.values()) == ["running"], steps  # one at a time: the other two not started
        watcher = subprocess.Popen(_lineage(home, "watch", eid, "--interval", "0.2"), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        first = watcher.stdout.readline()
        assert first.rstrip().endswith(" running"), first
        cancelled = subprocess.run(_lineage(home, "cancel", eid), capture_output=True, text=True, timeout=120)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.strip() == f"execution {eid}: cancelled"
        out, _ = runner.communicate(timeout=120)
        assert runner.returncode == 1 and not (tmp_path / "go").exists()
        rest, err = watcher.communicate(timeout=120)
        assert watcher.returncode == 1, err
        assert rest.rstrip().splitlines()[-1].startswith(f"execution {eid} cancelled")
    finally:
        for p in (runner, watcher):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    detail = Ledger(home).execution(eid)
    assert detail.summary.status == "cancelled"
    statuses = sorted(st.status for st in detail.steps)
    assert statuses == ["cancelled", "skipped", "skipped"], statuses
    assert all(st.condition == "not started: the execution was cancelled" for st in detail.steps
               if st.status == "skipped")
    # What the cancelled step wrote is recorded (from its spool), and no spool is left behind.
    assert [(g.step, g.text) for g in Ledger(home).logs(eid)] == [("wait_for_go", "waiting as a\n")]
    assert not list((home / "logs").rglob("*@*"))
    again = subprocess.run(_lineage(home, "cancel", eid), capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "is cancelled: there is nothing to cancel" in again.stderr


def test_a_piped_script_shows_progress_on_stderr_and_keeps_stdout_its_own(tmp_path):
    (tmp_path / "job.py").write_text(textwrap.dedent('''
        from ledgerflow import run, task, workflow

        @task
        def shout(n: int) -> int:
            print(f"step says {n}")
            return n

        @workflow
        def job(n: int = 4) -> int:
            return shout(n=n)

        print("result", run(job).outputs)
    '''))
    env = {k: v for k, v in os.environ.items() if k != "LEDGERFLOW_HOME"}
    out = subprocess.run([sys.executable, "job.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "step says 4\nresult 4\n"  # the program's own output, nothing of ours
    assert "of job started" in out.stderr and "step shout succeeded" in out.stderr
