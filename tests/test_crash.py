"""kill -9 at seeded random points of a run (store writes, ledger flushes, steps): nothing is lost.

After each kill the ledger's chain verifies and every stored object matches its digest; no
partial object is visible under a digest; and running again finishes, reusing every step
the killed run had recorded as done.
"""

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ledgerflow import Dataset, Directory, File, Ledger, map_task, run, task, workflow
from ledgerflow.store import Store

KILLS = 50
SEED = 20261123


@task(cache=True)
def big_file(mb: int) -> File:
    path = Path(f"blob-{os.getpid()}.bin")
    path.write_bytes(np.random.default_rng(mb).bytes(mb << 20))
    return path


@task(cache=True)
def table(rows: int) -> Dataset:
    rng = np.random.default_rng(rows)
    return pa.table({"x": rng.integers(0, 1000, rows), "y": rng.random(rows)})


@task(cache=True)
def tree(files: int) -> Directory:
    root = Path(f"tree-{os.getpid()}")
    root.mkdir(exist_ok=True)
    for i in range(files):
        (root / f"part-{i}.bin").write_bytes(os.urandom(64 << 10))
    return root


@task(cache=True)
def piece(i: int, data: Dataset) -> int:
    return int(data.to_arrow()["x"][i].as_py()) + i


@task(cache=True)
def summary(f: File, d: Directory, pieces: list[int]) -> str:
    return f"{f.size}:{d.size}:{sum(pieces)}"


@workflow
def crashy(mb: int = 4, rows: int = 100_000, files: int = 10) -> str:
    data = table(rows=rows)
    return summary(f=big_file(mb=mb), d=tree(files=files), pieces=map_task(piece, i=list(range(20)), data=data))


def _child(home: str, cwd: str) -> None:
    os.chdir(cwd)
    try:
        run(crashy, home=home, progress=False)
    finally:
        os._exit(0)


def run_and_kill(home: Path, cwd: Path, delay: float) -> None:
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(str(home), str(cwd)))
    proc.start()
    proc.join(timeout=delay)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join()


def test_kill_9_anywhere_loses_nothing(tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    t0 = time.monotonic()
    run_and_kill(tmp_path / "probe", cwd, 60)  # an uncut run, to know how long one takes
    full = time.monotonic() - t0
    rng = random.Random(SEED)
    survived, finished_steps_reused = 0, 0
    for i in range(KILLS):
        home = tmp_path / f"home-{i}"
        run_and_kill(home, cwd, rng.uniform(0.0, full))
        ledger = Ledger(home)
        report = ledger.verify()
        assert report.ok, f"kill {i}: {report.first_problem}"
        store = Store.open(home / "store")
        for digest in store.iter_digests():
            store.verify(digest)  # nothing partial under a digest
        killed = ledger.executions()
        done_before = set()
        if killed:
            assert killed[0].status in ("interrupted", "succeeded"), killed[0].status
            # A map's own row only gathers its elements' outputs: its elements are the cached steps.
            done_before = {s.step for s in ledger.execution(killed[0].id).steps
                           if s.status in ("succeeded", "cached") and not (s.condition or "").startswith("map over")}
        os.chdir(cwd)
        again = run(crashy, home=home, progress=False)
        assert again.status == "succeeded" and again.outputs.count(":") == 2
        for step in done_before:
            assert again.steps[step].status == "cached", f"kill {i}: {step} was done but ran again"
        if killed and killed[0].status == "interrupted":
            # The next run found the killed one's process gone: its steps that were running
            # are recorded as interrupted too, not left `running` forever in the steps view.
            running = ledger.sql("SELECT step FROM steps WHERE execution_id = ? AND status = 'running'",
                                 [killed[0].id]).to_pylist()
            assert running == [], f"kill {i}: {running}"
        finished_steps_reused += len(done_before)
        assert ledger.verify().ok
        survived += 1
    assert survived == KILLS
    print(f"\n{KILLS} kill points over a {full:.2f} s run survived; {finished_steps_reused} finished steps reused")
