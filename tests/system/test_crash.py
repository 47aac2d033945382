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

# Kill points per test: enough to land in every phase of a run on every CI run; LEDGERFLOW_SOAK=N
# multiplies them for a longer hunt by hand.
SOAK = int(os.environ.get("LEDGERFLOW_SOAK", "1"))
KILLS = 30 * SOAK
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


# -- kill -9 of writers and movers over the journal ---------------------------------------------

JOURNAL_KILLS = 36 * SOAK
CHAIN = 80


@task(cache=True)
def step_up(x: int) -> int:
    return x + 1


@workflow
def long_chain(x: int = 0) -> int:
    for _ in range(CHAIN):
        x = step_up(x=x)
    return x


def _journal_writer(home: str, x: int) -> None:
    try:
        run(long_chain, params={"x": x}, home=home, progress=False)
    finally:
        os._exit(0)


def _journal_mover(home: str) -> None:
    try:
        while True:
            Ledger(home).sync()
    finally:
        os._exit(0)


def _appended(home: Path) -> list:
    """Every whole record in the home's journals: what has been appended and not yet removed."""
    from ledgerflow.lineage import journal

    out = []
    for path in journal.journals(home / "journal"):
        header = journal.read_header(path)
        if header is not None:
            out += [journal.decode(record)[0] for _, record in journal.read(path, header.end).records]
    return out


def _missing(ledger: Ledger, events: list) -> list:
    """The events of `events` that have no row in the ledger."""
    from ledgerflow.engine import events as ev

    steps = {tuple(r.values()) for r in ledger.sql(
        "SELECT execution_id, step, attempt, state FROM step_log").to_pylist()}
    attempts = {s[:3] for s in steps}
    states = {tuple(r.values()) for r in ledger.sql("SELECT execution_id, state FROM execution_log").to_pylist()}
    graphs = {tuple(r.values()) for r in ledger.sql("SELECT execution_id, part FROM graph_log").to_pylist()}
    tasks = {r["digest"] for r in ledger.sql("SELECT digest FROM task_identities").to_pylist()}
    found = {
        ev.StepStarted: lambda e: (e.execution_id, e.step, e.attempt) in attempts,  # (or coalesced with its finish)
        ev.StepFinished: lambda e: (e.execution_id, e.step, e.attempt, e.status) in steps,
        ev.ExecutionStarted: lambda e: (e.execution_id, "running") in states,
        ev.ExecutionFinished: lambda e: (e.execution_id, e.status) in states,
        ev.GraphRecorded: lambda e: (e.execution_id, e.part) in graphs,
        ev.TaskIdentified: lambda e: e.fingerprint in tasks,
    }
    return [e for e in events if not found[type(e)](e)]


def test_kill_9_of_writers_and_movers_loses_no_appended_event(tmp_path):
    """Seeded kill -9 points over the journal write path: a run appending its events and a
    process moving journals into the chain as fast as it can, either or both killed at any
    moment. After each: every record that was appended is in the ledger exactly once, the
    chain verifies, and a rerun reuses every step the killed run finished."""
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("fork")
    t0 = time.monotonic()
    probe = ctx.Process(target=_journal_writer, args=(str(tmp_path / "probe"), 0))
    probe.start()
    probe.join(60)
    full = time.monotonic() - t0
    rng = random.Random(SEED)
    victims = {"writer": 0, "mover": 0, "both": 0}
    reused = 0
    for i in range(JOURNAL_KILLS):
        x = (i + 1) * 1000  # each kill point runs a chain of its own (no step shared with another)
        before = {e.id for e in Ledger(home).executions()}
        writer = ctx.Process(target=_journal_writer, args=(str(home), x))
        mover = ctx.Process(target=_journal_mover, args=(str(home),))
        writer.start()
        mover.start()
        time.sleep(rng.uniform(0.0, full))
        victim = rng.choice(list(victims))
        victims[victim] += 1
        for proc in (writer, mover) if victim == "both" else (writer,) if victim == "writer" else (mover,):
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
        if victim == "mover":
            writer.join(60)  # the run goes on without anyone moving its journal
        if mover.is_alive():
            os.kill(mover.pid, signal.SIGKILL)
        writer.join(60)
        mover.join(60)
        appended = _appended(home)
        ledger = Ledger(home)
        ledger.sync()
        if not ledger.path.exists():  # killed before anything was appended
            assert appended == []
            continue
        assert _missing(ledger, appended) == [], f"kill {i} ({victim})"
        dupes = ledger.sql("SELECT execution_id, step, attempt, state, count(*) AS n FROM step_log "
                           "GROUP BY ALL HAVING n > 1").to_pylist()
        assert dupes == [], f"kill {i} ({victim}): moved twice: {dupes}"
        report = ledger.verify(store=False)
        assert report.ok, f"kill {i} ({victim}): {report.first_problem}"
        killed = [e.id for e in ledger.executions() if e.id not in before]
        assert len(killed) <= 1
        done = {}
        if killed:
            done = {s.step for s in ledger.execution(killed[0]).steps if s.status in ("succeeded", "cached")}
        again = run(long_chain, params={"x": x}, home=home, progress=False)
        assert again.outputs == x + CHAIN
        for step in done:
            assert again.steps[step].status == "cached", f"kill {i} ({victim}): {step} was done but ran again"
        reused += len(done)
    assert Ledger(home).verify(store=False).ok
    print(f"\n{JOURNAL_KILLS} kill points over a {full:.2f} s run ({victims}); {reused} finished steps reused")
