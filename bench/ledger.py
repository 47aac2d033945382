"""Ledger benchmark (run by hand): query latency on a large synthetic ledger, and recording cost.

    /work/venv/bin/python bench/ledger.py [--executions 1000] [--dir /tmp/ledger-bench] [--reuse]

Builds a ledger of EXECUTIONS x 1,000 steps (1,000 executions: 1,000,000 steps,
3,000,000 edges), written in bulk through Arrow with a valid hash chain (rows are encoded
and chained by the same code the recorder uses, so `verify` passes on it). Each execution
is 20 chains of 50 steps; each step consumes the previous step's output (the first, the
execution's `seed` parameter) and a dataset, and produces one output. The first 10
executions all read one shared dataset G, so G feeds 10,000 steps; the others read a
dataset of their own, passed as a parameter.

Then it times (median of 7, each opening the file afresh as the CLI would):
  - upstream of the last output of a 50-step chain (50 step levels, 100 hops)
  - downstream of G (10,000 consuming steps, across 10 executions)
  - execution(id) of a 1,000-step execution (`lineage show`)
  - bytes of ledger file per step
and the recording cost: Ledger.record for every event of a 1,000-step execution plus the
flushes, against MemoryRecorder, per step.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledgerflow.engine.events import (  # noqa: E402
    SUCCEEDED,
    ArtifactRef,
    ExecutionFinished,
    ExecutionStarted,
    MemoryRecorder,
    StepFinished,
    StepStarted,
)
from ledgerflow.lineage import Ledger, chain  # noqa: E402
from ledgerflow.lineage.connection import open_ledger  # noqa: E402
from ledgerflow.lineage.schema import ARTIFACTS, EDGES, EXECUTION_LOG, STEP_LOG, ensure_schema, key64  # noqa: E402

STEPS = 1000
CHAINS, DEPTH = 20, 50
SHARED = 10  # executions reading the shared dataset G
T0 = datetime(2026, 11, 23, 9, 0, 0)
rng = np.random.default_rng(42)


def rand_digests(n: int, fresh: bool = False) -> list:
    # The build is seeded (reproducible); recording runs draw fresh bytes so that a
    # --reuse run doesn't regenerate the build's digests (the first one is G).
    raw = os.urandom(32 * n) if fresh else rng.bytes(32 * n)
    return ["blake3:" + raw[i * 32 : (i + 1) * 32].hex() for i in range(n)]


def exec_id(e: int) -> str:
    return f"01JDBENCH{e:017d}"


def build(path: Path, executions: int) -> dict:
    """Write the synthetic ledger; returns the refs the timings need."""
    g_digest = rand_digests(1)[0]
    con_ctx = open_ledger(path)
    con = con_ctx.__enter__()
    con.execute("BEGIN").fetchall()
    ensure_schema(con)
    con.execute("COMMIT").fetchall()
    seq, prev = 0, chain.GENESIS
    refs = {"G": g_digest}
    t_build = time.perf_counter()
    step_names = [f"c{c}s{k}" for c in range(CHAINS) for k in range(DEPTH)]
    batch_execs = 20
    for first in range(0, executions, batch_execs):
        rows = {t: [] for t in ("execution_log", "step_log", "artifacts", "edges")}
        for e in range(first, min(first + batch_execs, executions)):
            eid = exec_id(e)
            start = T0 + timedelta(minutes=e)
            seed, own = rand_digests(2)
            data = g_digest if e < SHARED else own
            outs = rand_digests(STEPS)
            # Execution start, its parameters (as artifacts and @params edges).
            seq += 1
            rows["execution_log"].append(dict(seq=seq, execution_id=eid, state="running", changed_at=start,
                                              workflow="bench:pipeline", workflow_fingerprint="blake3:fp",
                                              params='{"seed": 1}', executor="local", host="bench", pid=1))
            for name, d in (("seed", seed), ("data", data)):
                if not (d == g_digest and e > 0):  # G's artifact row comes with the first execution
                    seq += 1
                    rows["artifacts"].append(dict(seq=seq, digest=d, dkey=key64(d), kind="dataset" if name == "data" else "value",
                                                  type="Dataset" if name == "data" else "int", size=1000,
                                                  first_execution_id=eid, first_step="@params", first_seen_at=start))
                seq += 1
                rows["edges"].append(dict(seq=seq, execution_id=eid, step="@params", attempt=0, direction="produced",
                                          name=name, digest=d, dkey=key64(d)))
            for i, step in enumerate(step_names):
                c, k = divmod(i, DEPTH)
                at = start + timedelta(milliseconds=i)
                x = seed if k == 0 else outs[i - 1]
                ck = "blake3:" + outs[i][7:][::-1]
                seq += 1
                rows["step_log"].append(dict(seq=seq, execution_id=eid, step=step, attempt=1, state="running",
                                             task="bench:step", task_fingerprint="blake3:taskfp", cache_key=ck,
                                             ckey=key64(ck), started_at=at, resources="{}"))
                seq += 1
                rows["step_log"].append(dict(seq=seq, execution_id=eid, step=step, attempt=1, state=SUCCEEDED,
                                             task="bench:step", task_fingerprint="blake3:taskfp", cache_key=ck,
                                             ckey=key64(ck), started_at=at, ended_at=at + timedelta(microseconds=500),
                                             resources="{}", node="bench"))
                seq += 1
                rows["artifacts"].append(dict(seq=seq, digest=outs[i], dkey=key64(outs[i]), kind="file", type="File",
                                              size=4096, uri=None, first_execution_id=eid, first_step=step,
                                              first_seen_at=at))
                for direction, name, d in (("consumed", "x", x), ("consumed", "data", data), ("produced", "return", outs[i])):
                    seq += 1
                    rows["edges"].append(dict(seq=seq, execution_id=eid, step=step, attempt=1, direction=direction,
                                              name=name, digest=d, dkey=key64(d)))
            seq += 1
            rows["execution_log"].append(dict(seq=seq, execution_id=eid, state=SUCCEEDED,
                                              changed_at=start + timedelta(seconds=2)))
            if e == SHARED + 5:
                refs["deep"] = outs[DEPTH - 1]  # end of chain 0: 50 steps deep
                refs["show"] = eid
        seq, prev = _write_chunk(con, rows, seq, prev)
        done = min(first + batch_execs, executions)
        if done % 100 == 0 or done == executions:
            print(f"  built {done}/{executions} executions ({time.perf_counter() - t_build:.0f} s)", flush=True)
    con.execute("CHECKPOINT").fetchall()
    con_ctx.__exit__(None, None, None)
    refs["build_s"] = time.perf_counter() - t_build
    return refs


def _write_chunk(con, rows: dict, last_seq: int, prev: bytes) -> tuple:
    tables = {"execution_log": EXECUTION_LOG, "step_log": STEP_LOG, "artifacts": ARTIFACTS, "edges": EDGES}
    first = last_seq - sum(len(r) for r in rows.values()) + 1
    encodings = [None] * (last_seq - first + 1)
    datas = {}
    for name, rs in rows.items():
        t = tables[name]
        data = pa.Table.from_pylist(rs, schema=t.arrow_schema)
        seqs = np.asarray(data.column("seq").to_numpy()) - first
        for i, enc in zip(seqs, chain.encode_rows(t, data)):
            encodings[i] = enc
        datas[name] = (t, data, seqs)
    hashes = chain.chain(prev, encodings)
    prevs = [prev] + hashes[:-1]
    con.execute("BEGIN").fetchall()
    for name, (t, data, seqs) in datas.items():
        data = data.append_column("prev_hash", pa.array([prevs[i] for i in seqs], pa.binary()))
        data = data.append_column("row_hash", pa.array([hashes[i] for i in seqs], pa.binary()))
        con.register("_chunk", data)
        cols = ", ".join(t.column_names + ("prev_hash", "row_hash"))
        con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _chunk").fetchall()
        con.unregister("_chunk")
    con.execute("COMMIT").fetchall()
    return last_seq, hashes[-1]


def median_ms(fn, n: int = 7) -> tuple:
    fn()  # warm the OS page cache once, as a user's second query would be
    times = []
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, result


def connect_ms(path: Path) -> float:
    def once():
        with open_ledger(path, read_only=True):
            pass

    return median_ms(once, 15)[0]


def recording_events(n_steps: int) -> list:
    eid = "01JDREC" + os.urandom(8).hex().upper()
    seed = ArtifactRef(rand_digests(1, fresh=True)[0], "value", "int", 1, value="1")
    evs = [ExecutionStarted(eid, "bench:chain", "fp", "{}", (("seed", seed),), "local", T0, socket.gethostname(), os.getpid())]
    prev = seed
    for i, d in enumerate(rand_digests(n_steps, fresh=True)):
        out = ArtifactRef(d, "file", "File", 4096, uri=f"file:///{d}")
        at = T0 + timedelta(milliseconds=i)
        evs.append(StepStarted(eid, f"s{i}", "bench:step", "fp", 1, at, cache_key="ck" + d))
        evs.append(StepFinished(eid, f"s{i}", "bench:step", "fp", 1, SUCCEEDED, at, at, inputs=(("x", prev),),
                                outputs=(("return", out),), cache_key="ck" + d, node="bench"))
        prev = out
    evs.append(ExecutionFinished(eid, SUCCEEDED, T0, outputs=(("result", prev),)))
    return evs


def recording_cost(home: Path, n_steps: int = 1000, runs: int = 5) -> dict:
    """µs per step: Ledger (record every event, background flushes, final flush) vs MemoryRecorder."""
    mem_times, led_times = [], []
    for r in range(runs):
        evs = recording_events(n_steps)
        rec = MemoryRecorder()
        t = time.perf_counter()
        for ev in evs:
            rec.record(ev)
        rec.flush()
        mem_times.append(time.perf_counter() - t)
        led = Ledger(home)
        t = time.perf_counter()
        for ev in evs:
            led.record(ev)
        led.close()
        led_times.append(time.perf_counter() - t)
    mem = statistics.median(mem_times) / n_steps * 1e6
    led = statistics.median(led_times) / n_steps * 1e6
    return {"memory_us": mem, "ledger_us": led, "added_us": led - mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=1000, help="x 1,000 steps each (default 1000 = 1M steps)")
    ap.add_argument("--dir", default="/tmp/ledger-bench")
    ap.add_argument("--reuse", action="store_true", help="reuse a ledger built by an earlier run")
    args = ap.parse_args()
    home = Path(args.dir) / f"home-{args.executions}"
    path = home / "ledger.duckdb"
    refs_file = home / "refs.txt"
    if not (args.reuse and refs_file.exists()):
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        print(f"building {args.executions * STEPS:,} steps ...", flush=True)
        refs = build(path, args.executions)
        refs_file.write_text("\n".join(f"{k}={v}" for k, v in refs.items()))
    refs = dict(line.split("=", 1) for line in refs_file.read_text().splitlines())
    led = Ledger(home)
    counts = led.sql(
        "SELECT (SELECT count(*) FROM steps) AS steps, (SELECT count(*) FROM edges) AS edges, "
        "(SELECT count(*) FROM step_log) AS step_rows, (SELECT count(*) FROM artifacts) AS artifacts"
    ).to_pylist()[0]
    size = path.stat().st_size
    print(f"ledger: {counts} ; {size / 1e6:.1f} MB ; {size / counts['steps']:.0f} bytes/step ; "
          f"build {float(refs.get('build_s', 'nan')):.0f} s")
    print(f"open (connect + close), read-only: {connect_ms(path):.1f} ms median")
    up_ms, up = median_ms(lambda: led.upstream(refs["deep"]))
    print(f"upstream of a 50-deep artifact: {up_ms:.1f} ms median ({len(up.of_kind('step'))} steps, "
          f"max depth {max(n.depth for n in up.nodes)})")
    down_ms, down = median_ms(lambda: led.downstream(refs["G"]))
    print(f"downstream of G: {down_ms:.1f} ms median ({len(down.of_kind('step'))} steps, {len(down.nodes)} nodes)")
    show_ms, detail = median_ms(lambda: led.execution(refs["show"]))
    print(f"execution(id) of a {len(detail.steps)}-step execution: {show_ms:.1f} ms median")
    cost_small = recording_cost(Path(args.dir) / "rec-small")
    print("recording, fresh ledger: memory {memory_us:.1f} µs/step, ledger {ledger_us:.1f} µs/step, "
          "added {added_us:.1f} µs/step".format(**cost_small))
    shutil.rmtree(Path(args.dir) / "rec-small", ignore_errors=True)
    cost_big = recording_cost(home, runs=3)
    print("recording, into the big ledger: memory {memory_us:.1f} µs/step, ledger {ledger_us:.1f} µs/step, "
          "added {added_us:.1f} µs/step".format(**cost_big))
    if os.environ.get("BENCH_VERIFY"):
        t = time.perf_counter()
        report = led.verify(store=False)
        print(f"verify: ok={report.ok} rows={report.rows} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
