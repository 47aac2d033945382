"""The journal: every event round-trips, a torn tail is ignored at any byte, and records are
moved into the chain exactly once, in one order, whichever process moves them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ledgerflow import Ledger, run, task, workflow
from ledgerflow.engine.events import AliasMoved, NodeSeen, StepFinished
from ledgerflow.lineage import journal, moving
from ledgerflow.lineage.connection import open_ledger
from ledgerflow.lineage.retention import ExecutionTagged, ObjectCollected
from test_ledger import event_streams
from ledger_events import T0, chain_events, new_id, pipeline_events, retrain_events

ROOT = Path(__file__).parents[2]


def _same(a, b) -> bool:
    # NaN metrics never equal themselves: compare what they encode to.
    return journal.frame(journal.encode(a)) == journal.frame(journal.encode(b))


@settings(max_examples=30)
@given(stream=event_streams())
def test_every_event_round_trips(stream):
    events, _ = stream
    for ev in events:
        back, start = journal.decode(journal.encode(ev, "boot:42"))
        assert type(back) is type(ev) and _same(back, ev) and start == "boot:42"


def test_every_kind_of_event_round_trips():
    evs, _ = pipeline_events()
    dataset = next(ref for ev in evs if isinstance(ev, StepFinished) for _, ref in ev.outputs)
    evs += list(retrain_events(dataset, lr=0.1)[0]) + [
        AliasMoved("digits", "production", 2, T0, "ann@lab", "better", action="rollback"),
        NodeSeen(new_id(), "node-1", '{"python": "3.11"}', T0),
        ExecutionTagged(new_id(), "keep", "add", T0, "ann@lab", None),
        ObjectCollected("blake3:" + "0" * 64, None, "orphan", T0, "ann@lab", "{}"),
    ]
    for ev in evs:
        back, _ = journal.decode(journal.encode(ev))
        assert back == ev


def _journal_with(tmp_path: Path, events: list) -> Path:
    w = journal.JournalWriter(tmp_path / "journal")
    for ev in events:
        w.append([journal.encode(ev)])
    w.close()
    return w.path


@pytest.mark.slow
def test_a_torn_tail_is_ignored_at_every_byte(tmp_path):
    """kill -9 in the middle of a write leaves a prefix of the file: whatever byte it stops
    at, the reader returns exactly the records that were whole, and no torn one."""
    events = chain_events(3)
    path = _journal_with(tmp_path, events)
    data = path.read_bytes()
    header = journal.read_header(path)
    whole = journal.read(path, header.end)
    assert whole.closed and [journal.decode(r)[0] for _, r in whole.records] == events
    ends = [end for end, _ in whole.records]
    cut = tmp_path / "cut.jrnl"
    for size in range(header.end, len(data) + 1):
        cut.write_bytes(data[:size])
        chunk = journal.read(cut, header.end)
        expected = [e for e in ends if e <= size]
        assert [end for end, _ in chunk.records] == expected, size
        if size < len(data):  # (whole, the file also ends with its close record)
            assert chunk.end == (expected[-1] if expected else header.end) and not chunk.closed
    for size in range(header.end):
        cut.write_bytes(data[:size])
        assert journal.read_header(cut) is None  # a journal is only ever seen with its whole header


def test_a_damaged_record_stops_the_reader_there(tmp_path):
    path = _journal_with(tmp_path, chain_events(3))
    header = journal.read_header(path)
    ends = [end for end, _ in journal.read(path, header.end).records]
    data = bytearray(path.read_bytes())
    data[ends[2] + 5] ^= 0x01  # one bit of the fourth record
    path.write_bytes(bytes(data))
    assert [end for end, _ in journal.read(path, header.end).records] == ends[:3]


def test_records_are_moved_once_and_journals_removed_when_done(tmp_path):
    home = tmp_path / "h"
    led = Ledger(home, flush_interval=60)  # appended only by flush() and the execution's end
    evs = chain_events(5)
    for ev in evs[:4]:
        led.record(ev)
    led.flush()
    first = moving.move(led.path, led.journal_dir, timeout=30)
    # The start; s0's start and finish were appended together, so only its finish was written.
    assert first.events == 3 and first.removed == 0  # its owner is alive and hasn't closed it
    assert moving.move(led.path, led.journal_dir, timeout=30) == moving.NOTHING  # nothing pending: no lock taken
    for ev in evs[4:]:
        led.record(ev)
    led.close()
    second = moving.move(led.path, led.journal_dir, timeout=30)
    assert second.events == 5 and second.removed == 1  # s1..s4 finished, the execution finished
    assert journal.journals(led.journal_dir) == []
    reader = Ledger(home)
    assert reader.verify(store=False).ok
    rows = reader.sql("SELECT count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS top FROM "
                      "(SELECT seq FROM step_log UNION ALL SELECT seq FROM execution_log UNION ALL "
                      "SELECT seq FROM edges UNION ALL SELECT seq FROM artifacts)").to_pylist()[0]
    assert rows["n"] == rows["d"]
    moves = reader.sql("SELECT sum(events) AS n FROM journal_moves").to_pylist()[0]["n"]
    assert moves == 8


# -- recording never waits for the ledger file ------------------------------------------------

HOLD = """
import sys
from ledgerflow.lineage.connection import open_ledger
with open_ledger(sys.argv[1], read_only=sys.argv[2] == "shared") as con:
    print("held", flush=True)
    sys.stdin.readline()
"""


@task(cache=True)
def bump(x: int) -> int:
    return x + 1


@workflow
def twenty(x: int = 0) -> int:
    for _ in range(20):
        x = bump(x=x)
    return x


@pytest.mark.parametrize("mode", ["exclusive", "shared"])
@pytest.mark.slow
def test_runs_finish_and_reuse_their_cache_while_another_process_holds_the_file(tmp_path, mode):
    """Another process holds the ledger file for as long as it likes (a mover, a slow query):
    a run records all it does without it, and a second run reuses every step of the first,
    from the journal, before anyone has moved it into the file."""
    home = tmp_path / "h"
    with open_ledger(home / "ledger.duckdb"):
        pass  # the file exists, empty
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home / "ledger.duckdb"), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        first = run(twenty, home=home, progress=False)
        second = run(twenty, home=home, progress=False)
        assert holder.poll() is None, "the holder let go before the runs were done"
        assert first.status == second.status == "succeeded" and second.outputs == 20
        assert {s.status for s in second.steps.values()} == {"cached"}
    finally:
        holder.communicate("go\n", timeout=60)
    ledger = Ledger(home)
    assert [e.status for e in ledger.executions()] == ["succeeded", "succeeded"]
    detail = ledger.execution(second.id)
    assert all(s.cached_from and s.cached_from.startswith(first.id) for s in detail.steps if s.step != "@outputs")
    assert ledger.verify(store=False).ok


@pytest.mark.slow
def test_concurrent_movers_keep_one_chain_with_every_event_once(tmp_path):
    """Four processes record while four threads move journals as fast as they can: every event
    is in the chain exactly once, in one gap-free order, and every journal ends up removed."""
    home = tmp_path / "h"
    script = tmp_path / "rec.py"
    script.write_text(
        "import sys\nsys.path[:0] = [sys.argv[2], sys.argv[3]]\n"
        "from ledgerflow import Ledger\nfrom ledger_events import chain_events\n"
        "led = Ledger(sys.argv[1], flush_interval=0.005)\n"
        "for ev in chain_events(200):\n    led.record(ev)\nled.close()\n")
    env = {**os.environ}
    writers = [subprocess.Popen([sys.executable, str(script), str(home), str(ROOT), str(ROOT / "tests")], env=env)
               for _ in range(4)]
    stop = threading.Event()
    errors: list = []

    def mover():
        while not stop.is_set():
            try:
                Ledger(home).sync()
            except Exception as exc:  # noqa: BLE001 - collected and asserted empty
                errors.append(exc)

    movers = [threading.Thread(target=mover) for _ in range(4)]
    for m in movers:
        m.start()
    for w in writers:
        assert w.wait(timeout=120) == 0
    stop.set()
    for m in movers:
        m.join(60)
    assert errors == []
    ledger = Ledger(home)
    assert ledger.verify(store=False).ok
    counts = ledger.sql("SELECT execution_id, count(*) AS n, count(DISTINCT step) AS d FROM step_log "
                        "WHERE state = 'succeeded' GROUP BY 1").to_pylist()
    assert sorted((r["n"], r["d"]) for r in counts) == [(200, 200)] * 4
    assert journal.journals(home / "journal") == []
