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

TESTS = Path(__file__).parent
ROOT = TESTS.parent
LINEAGE = Path(sys.executable).parent / "lineage"


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["LEDGERFLOW_HOME"] = str(home)
    env.pop("LEDGERFLOW_STORE", None)
    return env


def _lineage(home: Path, *args: str) -> list:
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.lineage.cli"]
    return base + ["--home", str(home), *args]


# -- 16 concurrent executions of 100 steps, readers in a loop beside them -------------------

WRITERS = 16
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


def test_16_concurrent_executions_with_readers_polling(tmp_path):
    home = tmp_path / "home"
    script = tmp_path / "hundred.py"
    script.write_text(HUNDRED_STEPS)
    env = _env(home)
    reads = {"list": 0, "sql": 0, "upstream": 0}
    reader_errors: list = []
    stop = threading.Event()

    def reader():
        # Cycle through the read commands until every writer is done, then once more.
        last_round = False
        while True:
            ids = []
            out = subprocess.run(_lineage(home, "list", "--json"), env=env, capture_output=True, text=True, timeout=120)
            if out.returncode != 0 and "no ledger" not in out.stderr:
                reader_errors.append(("list", out.stderr))
            elif out.returncode == 0:
                reads["list"] += 1
                ids = [r["id"] for r in json.loads(out.stdout)]
            out = subprocess.run(_lineage(home, "query", "sql", "SELECT status, count(*) AS n FROM executions GROUP BY 1",
                                          "--json"), env=env, capture_output=True, text=True, timeout=120)
            if out.returncode != 0 and "no ledger" not in out.stderr:
                reader_errors.append(("sql", out.stderr))
            elif out.returncode == 0:
                json.loads(out.stdout)
                reads["sql"] += 1
            if ids:
                out = subprocess.run(_lineage(home, "query", "upstream", ids[-1], "--json"), env=env,
                                     capture_output=True, text=True, timeout=120)
                if out.returncode != 0:
                    reader_errors.append(("upstream", out.stderr))
                else:
                    json.loads(out.stdout)
                    reads["upstream"] += 1
            if last_round:
                return
            last_round = stop.is_set()

    started = time.monotonic()
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for r in readers:
        r.start()
    writers = [subprocess.Popen(_lineage(home, "run", f"{script}:hundred", "-p", f"seed={k}"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in range(WRITERS)]
    outcomes = [w.communicate(timeout=300) for w in writers]
    writers_done = time.monotonic() - started
    stop.set()
    for r in readers:
        r.join(300)
    for w, (out, err) in zip(writers, outcomes):
        assert w.returncode == 0, err[-2000:]

    assert reader_errors == []
    assert reads["list"] >= 2 and reads["sql"] >= 2 and reads["upstream"] >= 1, reads
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
