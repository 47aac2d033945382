"""Several processes against one home: concurrent writers, readers polling, and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledgerflow.lineage import Ledger

TESTS = Path(__file__).parents[1]  # tests/, where the shared helpers (ledger_events.py) are
ROOT = TESTS.parent
LINEAGE = Path(sys.executable).parent / "lineage"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _lineage_cmd(home, *args):
    # The console script if the package is installed, else the module.
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return base + ["--home", str(home), *args]


WRITER = """
import sys, time
from ledger_events import chain_events
from ledgerflow.lineage import Ledger
led = Ledger(sys.argv[1], flush_interval=0.02)
for ev in chain_events(int(sys.argv[2])):
    led.record(ev)
    time.sleep(0.003)
led.close()
"""


def test_four_writers_and_a_polling_reader(tmp_path):
    home = tmp_path / "home"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(home), "50"], env=_env(), stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    polls = 0
    seen_running = False
    while any(w.poll() is None for w in writers) or polls < 2:
        if not (home / "journal").exists():  # no writer has recorded anything yet
            time.sleep(0.05)
            continue
        out = subprocess.run(_lineage_cmd(home, "list", "--json"), env=_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        seen_running |= any(r["status"] == "running" for r in rows)
        polls += 1
    for w in writers:
        assert w.wait() == 0, w.stderr.read().decode()
    led = Ledger(home)
    executions = led.executions()
    assert len(executions) == 4 and {e.status for e in executions} == {"succeeded"}
    counts = led.sql("SELECT execution_id, count(*) AS n FROM steps GROUP BY 1").to_pylist()
    assert sorted(r["n"] for r in counts) == [50, 50, 50, 50]
    assert led.verify(store=False).ok
    assert polls >= 2


KILLED = """
import sys, time
from ledger_events import chain_events
from ledgerflow.lineage import Ledger
led = Ledger(sys.argv[1], flush_interval=0.01)
evs = chain_events(10_000, finish=False)
for i, ev in enumerate(evs):
    led.record(ev)
    if i == 41:  # the start and 20 steps (2 events each)
        led.flush()
        print("READY", evs[0].execution_id, flush=True)
    if i > 41:
        time.sleep(0.001)
"""


def test_kill_9_leaves_a_verifiable_ledger_and_an_interrupted_execution(tmp_path):
    home = tmp_path / "home"
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(home)], env=_env(), stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline().split()
    assert line and line[0] == "READY"
    execution_id = line[1]
    time.sleep(0.4)  # let it flush more, and likely be mid-flush when killed
    child.send_signal(signal.SIGKILL)
    child.wait()
    led = Ledger(home)
    assert led.verify(store=False).ok
    [summary] = led.executions()
    assert summary.id == execution_id and summary.status == "interrupted"
    detail = led.execution(execution_id)
    assert detail.status == "interrupted"
    done = [s for s in detail.steps if s.status == "succeeded"]
    assert len(done) >= 20
    assert [s.step for s in done[:20]] == [f"s{i}" for i in range(20)]
    # The move that carried its last journaled events found its process gone and appended
    # the change of state, as a new row: the stored state says so, not only the API.
    rows = led.sql(f"SELECT status FROM executions WHERE execution_id = '{execution_id}'").to_pylist()
    assert rows == [{"status": "interrupted"}]
    states = led.sql(f"SELECT state FROM execution_log WHERE execution_id = '{execution_id}' ORDER BY seq").to_pylist()
    assert [r["state"] for r in states] == ["running", "interrupted"]
    assert led.sql(f"SELECT count(*) AS n FROM steps WHERE execution_id = '{execution_id}' AND status = 'running'"
                   ).to_pylist() == [{"n": 0}]
    assert led.verify(store=False).ok
