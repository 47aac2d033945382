"""Load: many writers on one home with readers polling beside them, very wide workflows, and a
large file stored in bounded memory. Each test is sized to stay within about a minute on 2 cores;
bench/load.py runs the bigger versions (10,000 steps on Ray, a 20 GiB file) and reports figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledgerflow import Ledger, run, task, workflow

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent
LINEAGE = Path(sys.executable).parent / "lineage"


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["LEDGERFLOW_HOME"] = str(home)
    env.pop("LEDGERFLOW_STORE", None)
    return env


def _lineage(home: Path, *args: str) -> list:
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return base + ["--home", str(home), *args]


# -- 32 concurrent executions of 100 steps, readers and a slow query beside them ------------

WRITERS = 32
STEPS = 100

HUNDRED_STEPS = f"""
from ledgerflow import task, workflow

@task(cache=True)
def add(x: int, y: int) -> int:
    return x + y

@workflow
def hundred(seed: int = 0) -> int:
    total = add(x=seed, y=0)
    for i in range(1, {STEPS}):
        total = add(x=total, y=i)
    return total
"""

# Seconds of DuckDB work on one thread, holding the ledger file (shared) all the while.
SLOW_SQL = "SELECT count(*) AS n FROM range(600000000) t(x) WHERE x % 7 = 3"


def test_32_concurrent_executions_with_readers_and_a_slow_query(tmp_path):
    """No execution fails or loses an event because another process holds the ledger: 32 runs of
    100 steps at once, on 2 cores, while readers poll `list`, `show`, `query upstream` and a
    seconds-long `query sql` holds the file. All recorded, chain valid, zero reader errors."""
    home = tmp_path / "home"
    script = tmp_path / "hundred.py"
    script.write_text(HUNDRED_STEPS)
    env = _env(home)
    reads = {"list": 0, "show": 0, "upstream": 0, "slow sql": 0}
    reader_errors: list = []
    stop = threading.Event()

    def lineage(*args):
        return subprocess.run(_lineage(home, *args), env=env, capture_output=True, text=True, timeout=600)

    def poller():
        # Cycle through the read commands until every writer is done, then once more.
        last_round = False
        while True:
            ids = []
            out = lineage("list", "--json")
            if out.returncode != 0 and "no ledger" not in out.stderr:
                reader_errors.append(("list", out.stderr))
            elif out.returncode == 0:
                reads["list"] += 1
                ids = [r["id"] for r in json.loads(out.stdout)]
            if ids:
                for verb, args in (("show", ("show", ids[0], "--json")),
                                   ("upstream", ("query", "upstream", ids[-1], "--json"))):
                    out = lineage(*args)
                    if out.returncode != 0:
                        reader_errors.append((verb, out.stderr))
                    else:
                        json.loads(out.stdout)
                        reads[verb] += 1
            if last_round:
                return
            last_round = stop.is_set()

    def slow_reader():
        while not stop.is_set():
            out = lineage("query", "sql", SLOW_SQL, "--json", "--timeout", "300")
            if out.returncode != 0 and "no ledger" not in out.stderr:
                reader_errors.append(("slow sql", out.stderr))
            elif out.returncode == 0:
                assert json.loads(out.stdout) == [{"n": 85714286}]
                reads["slow sql"] += 1

    started = time.monotonic()
    readers = [threading.Thread(target=poller) for _ in range(2)] + [threading.Thread(target=slow_reader)]
    for r in readers:
        r.start()
    writers = [subprocess.Popen(_lineage(home, "run", f"{script}:hundred", "-p", f"seed={k}"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(WRITERS)]
    outcomes = [w.communicate(timeout=600) for w in writers]
    writers_done = time.monotonic() - started
    stop.set()
    for r in readers:
        r.join(600)
    for w, (out, err) in zip(writers, outcomes):
        assert w.returncode == 0, err[-2000:]

    assert reader_errors == []
    assert reads["list"] >= 2 and reads["show"] >= 1 and reads["upstream"] >= 1 and reads["slow sql"] >= 1, reads
    ledger = Ledger(home)
    executions = ledger.executions()
    assert len(executions) == WRITERS and {e.status for e in executions} == {"succeeded"}
    counts = ledger.sql("SELECT execution_id, count(*) AS n, count(*) FILTER (status = 'succeeded') AS ok "
                        "FROM steps GROUP BY 1").to_pylist()
    assert sorted((r["n"], r["ok"]) for r in counts) == [(STEPS, STEPS)] * WRITERS
    report = ledger.verify()
    assert report.ok, report.first_problem
    print(f"\n{WRITERS} executions x {STEPS} steps in {writers_done:.1f} s with readers polling "
          f"({reads}); chain {report.rows} rows, verified")


# -- a commit another process made between DuckDB's look at the file and its lock -----------
#
# DuckDB 2.0 reads the database headers (which checkpoint is current) through a plain open
# *before* it takes its lock on the file, and does not read them again once it has the lock.
# A writer that checkpoints in between is overwritten: the opener loads the older checkpoint,
# appends its rows on top, and its own checkpoint supersedes the other's commit, whose
# process has already exited 0. The ledger's own flock (connection.py), taken before DuckDB
# opens the file and released after it has closed it, keeps that window shut.

RECORD_ONE = """
import os, socket, sys
from datetime import datetime, timezone
from ledgerflow.engine.events import ArtifactRef, ExecutionFinished, ExecutionStarted, SUCCEEDED
from ledgerflow.engine.ids import new_id
from ledgerflow.lineage import Ledger

def record(home, seed):
    now = datetime.now(timezone.utc)
    ledger, eid = Ledger(home), new_id()
    seed_ref = ArtifactRef(digest="blake3:" + f"{seed:064x}", kind="value", type="int", size=8, value=str(seed))
    ledger.record(ExecutionStarted(execution_id=eid, workflow="probe:one", workflow_fingerprint="f",
                                   params='{"seed": %d}' % seed, inputs=(("seed", seed_ref),), executor="local",
                                   started_at=now, host=socket.gethostname(), pid=os.getpid()))
    ledger.record(ExecutionFinished(execution_id=eid, status=SUCCEEDED, ended_at=datetime.now(timezone.utc)))
    ledger.close()
    return eid

if __name__ == "__main__":
    print("recording", flush=True)
    print(record(sys.argv[1], int(sys.argv[2])), flush=True)
"""


def _recorder(tmp_path: Path) -> Path:
    script = tmp_path / "record_one.py"
    script.write_text(RECORD_ONE)
    return script


def _strace_can_delay() -> bool:
    import shutil

    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-qq", "-e", "trace=none", "-e", "inject=fcntl:delay_enter=1", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _strace_can_delay(), reason="needs strace with syscall delay injection (and ptrace)")
def test_a_commit_made_while_another_writer_waits_for_the_lock_is_kept(tmp_path):
    """Deterministic: writer B has read the headers and is held (by strace) just before DuckDB's
    lock; writer A then commits and exits 0. Without the ledger's flock, A's execution was lost."""
    home = tmp_path / "home"
    script = _recorder(tmp_path)
    env = _env(home)
    subprocess.run([sys.executable, str(script), str(home), "0"], env=env, check=True, capture_output=True)
    ledger_file = home / "ledger.duckdb"
    # Every fcntl() on the ledger file waits 4 s before it runs: DuckDB's F_SETLK among them.
    b = subprocess.Popen(["strace", "-qq", "-f", "-P", str(ledger_file), "-e", "trace=fcntl",
                          "-e", "inject=fcntl:delay_enter=4000000",
                          sys.executable, str(script), str(home), "2"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert b.stdout.readline().strip() == "recording"
    time.sleep(1.5)  # B is now past its look at the headers, waiting to take DuckDB's lock
    a = subprocess.run([sys.executable, str(script), str(home), "1"], env=env, capture_output=True, text=True,
                       timeout=120)
    b_out, b_err = b.communicate(timeout=120)
    assert a.returncode == 0, a.stderr[-2000:]
    assert b.returncode == 0, b_err[-2000:]
    recorded = {a.stdout.split()[-1], b_out.split()[-1]}
    ledger = Ledger(home)
    ids = {e.id for e in ledger.executions()}
    assert recorded <= ids, f"lost: {sorted(recorded - ids)}"
    assert len(ids) == 3
    assert ledger.verify(store=False).ok


HOLD_THE_LEDGER = """
import sys, time
from ledgerflow.lineage.connection import open_ledger
with open_ledger(sys.argv[1]) as con:
    con.execute("SELECT 1").fetchall()
    print("holding", flush=True)
    time.sleep(1.0)
print("released", time.time(), flush=True)
"""


@pytest.mark.parametrize("read_only", [False, True], ids=["writer", "reader"])
def test_duckdb_never_opens_the_ledger_while_another_process_writes_it(tmp_path, monkeypatch, read_only):
    """Every open (DuckDB's unlocked look at the headers included) waits until the process
    holding the ledger for writing has closed it completely."""
    import duckdb

    from ledgerflow.lineage import connection

    path = tmp_path / "home" / "ledger.duckdb"
    with connection.open_ledger(path):
        pass
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LEDGER, str(path)], env=_env(tmp_path / "home"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
    calls = []
    real_connect = duckdb.connect

    def connect(*args, **kwargs):
        calls.append(time.time())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(connection.duckdb, "connect", connect)
    with connection.open_ledger(path, read_only=read_only) as con:
        con.execute("SELECT count(*) FROM meta").fetchall()
    out, err = holder.communicate(timeout=60)
    released = float(out.split()[-1])
    assert calls and calls[0] >= released, (calls, released)  # no attempt while the holder had it
    assert len(calls) == 1  # and no retries of DuckDB's own lock: the flock did the waiting
    assert connection.lock_path(path).exists()


# -- 10,000 steps ------------------------------------------------------------------------


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


def chains(n_chains: int, length: int):
    """A workflow of n_chains independent chains of `length` steps, summed by one last step."""

    def body(start: int = 0) -> int:
        ends = []
        for c in range(n_chains):
            x = inc(x=start)
            for _ in range(length - 1):
                x = inc(x=x)
            ends.append(x)
        return total(xs=ends)

    body.__name__ = body.__qualname__ = f"chains_{n_chains}x{length}"
    body.__module__ = __name__
    return workflow(body)


def _run_wide(tmp_path, wf, n_steps: int, executor: str) -> float:
    home = tmp_path / "home"
    t0 = time.monotonic()
    ex = run(wf, {"start": 0}, home=home, executor=executor, progress=False)
    took = time.monotonic() - t0
    assert ex.status == "succeeded"
    length = (n_steps - 1) // 100
    assert ex.outputs == 100 * length
    ledger = Ledger(home)
    [row] = ledger.sql("SELECT count(*) AS n, count(*) FILTER (status = 'succeeded') AS ok FROM steps").to_pylist()
    assert row == {"n": n_steps, "ok": n_steps}
    assert ledger.verify().ok
    return took


def test_10000_steps_on_the_local_executor(tmp_path):
    t0 = time.monotonic()
    wf = chains(100, 100)  # 10,000 steps + the one that sums them
    built = time.monotonic() - t0
    took = _run_wide(tmp_path, wf, 10_001, "local")
    print(f"\n10,001 steps, local executor: built in {built:.1f} s, ran and recorded in {took:.1f} s")


def test_10000_steps_on_ray(tmp_path, ray_runtime):
    wf = chains(100, 100)  # ~13 s here (1.3 ms a step), so the full size stays in the suite
    took = _run_wide(tmp_path, wf, 10_001, "ray")
    print(f"\n10,001 steps on Ray: ran and recorded in {took:.1f} s")


# -- a large file stored in bounded memory ---------------------------------------------------

# Peak RSS is read as VmHWM from /proc: ru_maxrss of a child started from a big process (pytest)
# carries that process's peak across fork and exec, so it would measure the parent.
PUT_BIG_FILE = """
import sys, time
from ledgerflow.store import Store  # only the store: `import ledgerflow` alone peaks near 64 MiB

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

path, store_dir = sys.argv[1], sys.argv[2]
baseline = peak_kib()
t0 = time.perf_counter()
digest, size = Store.open(store_dir).put_file(path)
took = time.perf_counter() - t0
print(digest, size, baseline, peak_kib(), took)
"""


def test_a_1_gib_file_is_hashed_and_stored_in_bounded_memory(tmp_path):
    big = tmp_path / "big.bin"
    size = 1 << 30
    with open(big, "wb") as f:  # mostly sparse, with some real bytes so the digest is not trivial
        for i in range(16):
            f.seek(i * (size // 16))
            f.write(os.urandom(1 << 20))
        f.truncate(size)
    out = subprocess.run([sys.executable, "-c", PUT_BIG_FILE, str(big), str(tmp_path / "store")],
                         env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    digest, stored, baseline_kib, peak_kib, took = out.stdout.split()
    assert int(stored) == size
    from ledgerflow.store import Store, digest_file

    assert digest_file(big) == (digest, size)
    assert (tmp_path / "store").exists() and Store.open(tmp_path / "store").size(digest) == size
    peak_mib, baseline_mib = int(peak_kib) / 1024, int(baseline_kib) / 1024
    print(f"\n1 GiB stored in {float(took):.2f} s ({size / float(took) / 2**30:.2f} GiB/s); peak RSS "
          f"{peak_mib:.0f} MiB, of which {baseline_mib:.0f} MiB after `import ledgerflow.store`")
    assert peak_mib < 128, f"peak RSS {peak_mib:.0f} MiB"
    assert peak_mib - baseline_mib < 64, f"storing grew RSS by {peak_mib - baseline_mib:.0f} MiB"
