"""A driver that starts its own Ray runtime: Ctrl-C cancels the run, and no Ray process outlives it."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

from ledgerflow import Ledger

SCRIPT = textwrap.dedent('''
    import time
    from ledgerflow import run, task, workflow

    @task
    def quick(x: int) -> int:
        return x

    @task
    def slow(x: int) -> int:
        time.sleep(120)
        return x

    @workflow
    def wf(x: int = 1) -> int:
        return slow(x=quick(x=x))

    if __name__ == "__main__":
        import sys
        run(wf, executor="ray", params={"x": int(sys.argv[1])})
        print("finished")
''')


def ray_processes(driver_pid: int) -> set[int]:
    """The Ray processes of the runtime that the driver with this pid started: those naming its
    session (`session_<date>_<time>_<pid>`), and their children (workers rename themselves
    `ray::IDLE`). Other Ray runtimes on the host, anyone's, are not this test's business."""
    session = re.compile(rb"session_[\d_-]+_%d\b" % driver_pid)
    parents, found = {}, set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
            with open(f"/proc/{pid}/stat", "rb") as fh:
                parents[int(pid)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if session.search(cmd):
            found.add(int(pid))
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        grew = bool(children)
        found |= children
    return found


def driver(tmp_path, home):
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["LEDGERFLOW_HOME"] = str(home)
    return script, env


def wait_for(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_ctrl_c_cancels_and_leaves_no_ray_processes(tmp_path):
    home = tmp_path / "home"
    script, env = driver(tmp_path, home)
    proc = subprocess.Popen([sys.executable, str(script), "1"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger = Ledger(home)

    def slow_running():
        if not (home / "journal").exists():  # the run has journaled nothing yet
            return False
        rows = ledger.sql("SELECT count(*) AS n FROM steps WHERE step = 'slow' AND status = 'running'").to_pylist()
        return rows[0]["n"] == 1

    assert wait_for(slow_running), proc.communicate(timeout=5)
    assert len(ray_processes(proc.pid)) >= 3  # the scan sees this driver's runtime (gcs, raylet, workers)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    (ex,) = ledger.executions()
    assert ex.status == "cancelled"
    steps = {s.step: s.status for s in ledger.execution(ex.id).steps}
    assert steps == {"quick": "succeeded", "slow": "cancelled"}
    assert wait_for(lambda: not ray_processes(proc.pid), timeout=30), \
        f"Ray processes left behind: {sorted(ray_processes(proc.pid))}"
    assert ledger.verify().ok


def test_finished_run_leaves_no_ray_processes(tmp_path):
    home = tmp_path / "home"
    script, env = driver(tmp_path, home)
    script.write_text(SCRIPT.replace("time.sleep(120)", "pass"))
    proc = subprocess.Popen([sys.executable, str(script), "2"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "finished" in stdout, stderr[-2000:]
    assert wait_for(lambda: not ray_processes(proc.pid), timeout=30), \
        f"Ray processes left behind: {sorted(ray_processes(proc.pid))}"
