"""Ledger benchmark (run by hand): query latency on a large synthetic ledger, bytes per step, recording cost.

    .venv/bin/python bench/ledger.py [--executions 1000] [--dir /tmp/ledger-bench] [--reuse]
                                     [--size-executions 200] [--profile]

Builds a ledger of EXECUTIONS x 1,000 steps (1,000 executions: 1,000,000 steps,
3,002,000 edges) holding what schema 4 records for each run of one real workflow,
`pipeline` below: 20 chains of 50 calls of the task `step`, each taking the previous
call's output as `x` (the first call of a chain, the parameter `seed`) and the parameter
`data`. Per execution: its start row, the parameters as artifacts and `@params` edges,
the graph as built (one graph_log row: `blueprint.workflow_spec` of the traced workflow,
the JSON the runner records), then per step a `running` and a final step_log row, an
artifact for its output, and three edges. Each consumed edge names the occurrence it came
from (src_step / src_name / how: `@params`.`seed` by `param` for the first step of a
chain, the previous step's `return` by `step`, `@params`.`data` by `param`);
src_execution_id is NULL (same execution), as the recorder writes it. The first 10
executions all read one shared dataset G, so G feeds 10,000 steps; the others read a
dataset of their own. Rows are encoded and chained by the recorder's own code
(`chain.encode_rows`, `chain.chain`), so `verify` passes on the result.

Then it times (median of 7, each opening the file afresh as the CLI would):
  - open + close of the file, read-only (the baseline the others are given as ratios to)
  - upstream of the last output of a 50-step chain (50 step levels, 100 hops)
  - downstream of G (10,000 consuming steps, across 10 executions)
  - execution(id) of a 1,000-step execution (`lineage show`)
and measures:
  - bytes per step (of the blocks in use, and of the whole file): of the big ledger, and
    of four ledgers of SIZE_EXECUTIONS x 1,000 steps built the same way without and with
    the src columns and the graph record (the same spec in every run, or a distinct one
    per run); the differences are what schema 4 adds per step. `verify` is run on the
    schema-4 one
  - the recording cost: the events of one 1,000-step run of `pipeline` through
    Ledger.record plus its journal appends and close, with the graph record and the sources
    (as the runner reports them now) and without them, against MemoryRecorder, per step,
    interleaved in the same run; into a fresh ledger and into the big one. And what the
    next reader pays to move those journals into the file (`Ledger.sync`), per step.

`--profile` also runs each of the three queries once under cProfile and prints where
the time goes. `BENCH_VERIFY=1` verifies the big ledger's chain too (minutes).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Union

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledgerflow import Dataset, File, task, workflow  # noqa: E402
from ledgerflow.engine import blueprint  # noqa: E402
from ledgerflow.engine.events import (  # noqa: E402
    FROM_PARAM,
    FROM_STEP,
    SUCCEEDED,
    ArtifactRef,
    ExecutionFinished,
    ExecutionStarted,
    GraphRecorded,
    MemoryRecorder,
    Origin,
    StepFinished,
    StepStarted,
)
from ledgerflow.lineage import Ledger, chain  # noqa: E402
from ledgerflow.lineage.connection import open_ledger  # noqa: E402
from ledgerflow.lineage.append import digest_text  # noqa: E402
from ledgerflow.lineage.schema import (  # noqa: E402
    ARTIFACTS,
    EDGES,
    EXECUTION_LOG,
    GRAPH_LOG,
    GRAPH_SPECS,
    PARAMS_STEP,
    STEP_LOG,
    ensure_schema,
    key64,
)

STEPS = 1000
CHAINS, DEPTH = 20, 50
SHARED = 10  # executions reading the shared dataset G
T0 = datetime(2026, 11, 23, 9, 0, 0)
rng = np.random.default_rng(42)


# The workflow whose runs the synthetic ledger holds. Traced here, so the graph record is
# exactly what the runner would write for it (step names step, step_2, ..., step_1000).
@task
def step(x: Union[int, File], data: Dataset) -> File:
    raise NotImplementedError("never run: the bench writes what its runs would record")


@workflow
def pipeline(seed: int, data: Dataset) -> None:
    for _ in range(CHAINS):
        x = seed
        for _ in range(DEPTH):
            x = step(x=x, data=data)


SPEC = blueprint.workflow_spec(pipeline.graph)
SITE_FILE = pipeline.graph.nodes[0].site.rsplit(":", 1)[0]


def _plan() -> list:
    """Per node of the traced graph, in order: (step, task, task fingerprint, [(param, src_step, src_name, how)]),
    read from the graph record itself (each data edge into the step is one consumed input and its source)."""
    spec = json.loads(SPEC)
    into: dict = {}
    for source, slot, target, param, kind in spec["edges"]:
        assert kind == blueprint.DATA, kind
        into.setdefault(target, []).append((param, source, slot, FROM_PARAM if source == PARAMS_STEP else FROM_STEP))
    by_name = {n.name: n for n in pipeline.graph.nodes}
    plan = []
    for name, *_ in spec["nodes"]:
        t = by_name[name].task
        plan.append((name, t.qualname, t.fingerprint, sorted(into[name], key=lambda i: i[0] != "x")))
    return plan


PLAN = _plan()
assert len(PLAN) == STEPS


def rand_digests(n: int, fresh: bool = False) -> list:
    # The build is seeded (reproducible); recording runs draw fresh bytes so that a
    # --reuse run doesn't regenerate the build's digests (the first one is G).
    raw = os.urandom(32 * n) if fresh else rng.bytes(32 * n)
    return ["blake3:" + raw[i * 32 : (i + 1) * 32].hex() for i in range(n)]


def exec_id(e: int) -> str:
    return f"01JDBENCH{e:017d}"


def build(path: Path, executions: int, graph: bool | str = True, sources: bool = True, quiet: bool = False) -> dict:
    """Write the synthetic ledger; returns the refs the timings need.

    `graph`: a graph_log row per execution (the same spec in each, as repeated runs of one
    workflow record; "distinct": each execution's spec names other call sites, as runs of
    1,000 different workflows of this shape would); `sources`: src_* and `how` on consumed
    edges. Both on is what schema 4 records; both off, what schema 3 recorded.
    """
    global rng
    rng = np.random.default_rng(42)  # the same digests whatever was built before in this process
    g_digest = rand_digests(1)[0]
    con_ctx = open_ledger(path)
    con = con_ctx.__enter__()
    con.execute("BEGIN").fetchall()
    ensure_schema(con)
    con.execute("COMMIT").fetchall()
    seq, prev = 0, chain.GENESIS
    refs = {"G": g_digest}
    t_build = time.perf_counter()
    index = {name: i for i, (name, *_) in enumerate(PLAN)}
    specs_written: set = set()
    batch_execs = 20
    for first in range(0, executions, batch_execs):
        rows = {t: [] for t in ("execution_log", "step_log", "artifacts", "edges", "graph_specs", "graph_log")}
        for e in range(first, min(first + batch_execs, executions)):
            eid = exec_id(e)
            start = T0 + timedelta(minutes=e)
            seed, own = rand_digests(2)
            data = g_digest if e < SHARED else own
            params = {"seed": seed, "data": data}
            outs = rand_digests(STEPS)
            # Execution start, its parameters (as artifacts and @params edges), the graph as built.
            seq += 1
            rows["execution_log"].append(dict(seq=seq, execution_id=eid, state="running", changed_at=start,
                                              workflow=pipeline.qualname, workflow_fingerprint=pipeline.fingerprint,
                                              params='{"seed": 1}', executor="local", host="bench", pid=1))
            for name, d in params.items():
                if not (d == g_digest and e > 0):  # G's artifact row comes with the first execution
                    seq += 1
                    rows["artifacts"].append(dict(seq=seq, digest=d, dkey=key64(d), kind="dataset" if name == "data" else "value",
                                                  type="Dataset" if name == "data" else "int", size=1000,
                                                  first_execution_id=eid, first_step=PARAMS_STEP, first_seen_at=start))
                seq += 1
                rows["edges"].append(dict(seq=seq, execution_id=eid, step=PARAMS_STEP, attempt=0, direction="produced",
                                          name=name, digest=d, dkey=key64(d)))
            if graph:
                # As the writer does: a graph is kept once by digest, and each run names its own.
                spec = SPEC if graph is True else SPEC.replace(f'"{SITE_FILE}:', f'"/work/run-{e:04d}/pipeline.py:')
                spec_digest = digest_text(spec)
                if spec_digest not in specs_written:
                    specs_written.add(spec_digest)
                    seq += 1
                    rows["graph_specs"].append(dict(seq=seq, digest=spec_digest, dkey=key64(spec_digest), spec=spec,
                                                    first_execution_id=eid))
                seq += 1
                rows["graph_log"].append(dict(seq=seq, execution_id=eid, part="workflow", spec_digest=spec_digest,
                                              recorded_at=start))
            for i, (name, task_name, task_fp, inputs) in enumerate(PLAN):
                at = start + timedelta(milliseconds=i)
                ck = "blake3:" + outs[i][7:][::-1]
                seq += 1
                rows["step_log"].append(dict(seq=seq, execution_id=eid, step=name, attempt=1, state="running",
                                             task=task_name, task_fingerprint=task_fp, cache_key=ck,
                                             ckey=key64(ck), started_at=at, resources="{}"))
                seq += 1
                rows["step_log"].append(dict(seq=seq, execution_id=eid, step=name, attempt=1, state=SUCCEEDED,
                                             task=task_name, task_fingerprint=task_fp, cache_key=ck,
                                             ckey=key64(ck), started_at=at, ended_at=at + timedelta(microseconds=500),
                                             resources="{}", node="bench"))
                seq += 1
                rows["artifacts"].append(dict(seq=seq, digest=outs[i], dkey=key64(outs[i]), kind="file", type="File",
                                              size=4096, uri=None, first_execution_id=eid, first_step=name,
                                              first_seen_at=at))
                for param, src_step, src_name, how in inputs:
                    d = params[src_name] if src_step == PARAMS_STEP else outs[index[src_step]]
                    seq += 1
                    src = dict(src_step=src_step, src_name=src_name, how=how) if sources else {}
                    rows["edges"].append(dict(seq=seq, execution_id=eid, step=name, attempt=1, direction="consumed",
                                              name=param, digest=d, dkey=key64(d), **src))
                seq += 1
                rows["edges"].append(dict(seq=seq, execution_id=eid, step=name, attempt=1, direction="produced",
                                          name="return", digest=outs[i], dkey=key64(outs[i])))
            seq += 1
            rows["execution_log"].append(dict(seq=seq, execution_id=eid, state=SUCCEEDED,
                                              changed_at=start + timedelta(seconds=2)))
            if e == SHARED + 5 or (e == executions - 1 and "show" not in refs):
                refs["deep"] = outs[DEPTH - 1]  # end of chain 0: 50 steps deep
                refs["show"] = eid
        seq, prev = _write_chunk(con, rows, seq, prev)
        done = min(first + batch_execs, executions)
        if not quiet and (done % 100 == 0 or done == executions):
            print(f"  built {done}/{executions} executions ({time.perf_counter() - t_build:.0f} s)", flush=True)
    con.execute("CHECKPOINT").fetchall()
    con_ctx.__exit__(None, None, None)
    refs["build_s"] = time.perf_counter() - t_build
    return refs


TABLES = {"execution_log": EXECUTION_LOG, "step_log": STEP_LOG, "artifacts": ARTIFACTS, "edges": EDGES,
          "graph_specs": GRAPH_SPECS, "graph_log": GRAPH_LOG}


def _write_chunk(con, rows: dict, last_seq: int, prev: bytes) -> tuple:
    first = last_seq - sum(len(r) for r in rows.values()) + 1
    encodings = [None] * (last_seq - first + 1)
    datas = {}
    for name, rs in rows.items():
        if not rs:
            continue
        t = TABLES[name]
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


def used_bytes(path: Path) -> int:
    """Bytes of the file's blocks in use (the file also holds free blocks, up to a third of it
    after a bulk build, which vary from build to build)."""
    with open_ledger(path, read_only=True) as con:
        row = con.execute("PRAGMA database_size").fetchall()[0]
    return row[2] * row[4]  # block_size * used_blocks


SIZE_VARIANTS = (  # label, graph, sources
    ("schema 3 (no graph record, no src columns)", False, False),
    ("src columns only", False, True),
    ("schema 4", True, True),
    ("schema 4, a distinct graph spec per execution", "distinct", True),
)


def size_per_step(base: Path, executions: int) -> dict:
    """Bytes per step (used, file) of the same runs recorded each way of SIZE_VARIANTS (see `build`)."""
    out = {}
    for label, graph, sources in SIZE_VARIANTS:
        home = base / f"size-{executions}-{SIZE_VARIANTS.index((label, graph, sources))}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        path = home / "ledger.duckdb"
        build(path, executions, graph=graph, sources=sources, quiet=True)
        out[label] = (used_bytes(path) / (executions * STEPS), path.stat().st_size / (executions * STEPS))
        if label == "schema 4":
            t = time.perf_counter()
            report = Ledger(home).verify(store=False)
            out["verify"] = (report.ok, report.rows, time.perf_counter() - t)
        shutil.rmtree(home, ignore_errors=True)
    return out


def recording_events(graph: bool) -> list:
    """The events one run of `pipeline` reports (a StepStarted and a StepFinished per step);
    with `graph`, the graph record and each input's source, as the runner sends them now."""
    eid = "01JDREC" + os.urandom(8).hex().upper()
    seed_d, data_d, *outs = rand_digests(STEPS + 2, fresh=True)
    refs = {(PARAMS_STEP, "seed"): ArtifactRef(seed_d, "value", "int", 1, value="1"),
            (PARAMS_STEP, "data"): ArtifactRef(data_d, "dataset", "Dataset", 1000, uri=f"file:///{data_d}")}
    evs = [ExecutionStarted(eid, pipeline.qualname, pipeline.fingerprint, "{}",
                            (("seed", refs[(PARAMS_STEP, "seed")]), ("data", refs[(PARAMS_STEP, "data")])),
                            "local", T0, socket.gethostname(), os.getpid())]
    if graph:
        evs.append(GraphRecorded(eid, "workflow", SPEC, T0))
    for i, ((name, task_name, task_fp, inputs), d) in enumerate(zip(PLAN, outs)):
        out = refs[(name, "return")] = ArtifactRef(d, "file", "File", 4096, uri=f"file:///{d}")
        at = T0 + timedelta(milliseconds=i)
        bound = tuple((param, refs[(src_step, src_name)]) for param, src_step, src_name, _ in inputs)
        srcs = tuple((param, Origin(eid, src_step, src_name, how)) for param, src_step, src_name, how in inputs)
        evs.append(StepStarted(eid, name, task_name, task_fp, 1, at, cache_key="ck" + d))
        evs.append(StepFinished(eid, name, task_name, task_fp, 1, SUCCEEDED, at, at, inputs=bound,
                                outputs=(("return", out),), cache_key="ck" + d, node="bench",
                                sources=srcs if graph else ()))
    evs.append(ExecutionFinished(eid, SUCCEEDED, T0))
    return evs


def recording_cost(home: Path, runs: int = 5) -> dict:
    """µs per step: Ledger (record every event, journaled by its thread, close) with and without
    the graph record and sources, vs MemoryRecorder; interleaved, medians. And what moving
    those journals into the file costs the next reader (`sync`), per step, paid off the run."""
    times: dict = {"memory": [], "ledger": [], "ledger, no graph record": [], "move": []}
    for _ in range(runs):
        evs = recording_events(graph=True)
        rec = MemoryRecorder()
        t = time.perf_counter()
        for ev in evs:
            rec.record(ev)
        rec.flush()
        times["memory"].append(time.perf_counter() - t)
        for label, events in (("ledger", evs), ("ledger, no graph record", recording_events(graph=False))):
            led = Ledger(home)
            t = time.perf_counter()
            for ev in events:
                led.record(ev)
            led.close()
            times[label].append(time.perf_counter() - t)
        t = time.perf_counter()
        Ledger(home).sync()  # both runs' journals
        times["move"].append((time.perf_counter() - t) / 2)
    out = {k: statistics.median(v) / STEPS * 1e6 for k, v in times.items()}
    out["added"] = out["ledger"] - out["memory"]
    return out


def print_cost(where: str, cost: dict) -> None:
    print(f"recording, {where}: memory {cost['memory']:.1f} µs/step, ledger {cost['ledger']:.1f} µs/step "
          f"(added {cost['added']:.1f}, {cost['ledger'] / cost['memory']:.0f}x), "
          f"ledger without graph record/sources {cost['ledger, no graph record']:.1f} µs/step; "
          f"moving the journal into the file later {cost['move']:.1f} µs/step", flush=True)


def profile(name: str, fn, top: int = 25) -> None:
    fn()
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(order).print_stats(top)
        print(f"--- profile of {name}, by {order} ---")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=1000, help="x 1,000 steps each (default 1000 = 1M steps)")
    ap.add_argument("--dir", default="/tmp/ledger-bench")
    ap.add_argument("--reuse", action="store_true", help="reuse a ledger built by an earlier run")
    ap.add_argument("--size-executions", type=int, default=200,
                    help="x 1,000 steps, for the bytes-per-step comparison (0: skip it)")
    ap.add_argument("--profile", action="store_true", help="cProfile each query once")
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
        "(SELECT count(*) FROM step_log) AS step_rows, (SELECT count(*) FROM artifacts) AS artifacts, "
        "(SELECT count(*) FROM graph_log) AS graph_rows, "
        "(SELECT count(*) FROM edges WHERE direction = 'consumed' AND src_step IS NOT NULL) AS sourced_inputs"
    ).to_pylist()[0]
    size = path.stat().st_size
    print(f"ledger: {counts} ; {size / 1e6:.1f} MB ; {size / counts['steps']:.0f} bytes/step "
          f"({used_bytes(path) / counts['steps']:.0f} in used blocks) ; "
          f"build {float(refs.get('build_s', 'nan')):.0f} s ; graph record {len(SPEC) / STEPS:.0f} bytes of JSON/step")
    open_ms = connect_ms(path)
    print(f"open (connect + close), read-only: {open_ms:.1f} ms median")
    up_ms, up = median_ms(lambda: led.upstream(refs["deep"]))
    print(f"upstream of a 50-deep artifact: {up_ms:.1f} ms median, {up_ms / open_ms:.1f}x open "
          f"({len(up.of_kind('step'))} steps, {len(up.nodes)} nodes, {len(up.edges)} edges, "
          f"max depth {max(n.depth for n in up.nodes)})", flush=True)
    down_ms, down = median_ms(lambda: led.downstream(refs["G"]))
    print(f"downstream of G: {down_ms:.1f} ms median, {down_ms / open_ms:.1f}x open "
          f"({len(down.of_kind('step'))} steps, {len(down.nodes)} nodes, {len(down.edges)} edges)", flush=True)
    show_ms, detail = median_ms(lambda: led.execution(refs["show"]))
    print(f"execution(id) of a {len(detail.steps)}-step execution: {show_ms:.1f} ms median, {show_ms / open_ms:.1f}x open "
          f"(graph: {len(detail.graph.nodes) if detail.graph else 0} nodes, "
          f"{len(detail.graph.edges) if detail.graph else 0} edges)", flush=True)
    if args.profile:
        profile("upstream", lambda: led.upstream(refs["deep"]))
        profile("downstream", lambda: led.downstream(refs["G"]))
        profile("execution", lambda: led.execution(refs["show"]))
    if args.size_executions:
        sizes = size_per_step(Path(args.dir), args.size_executions)
        ok, rows, secs = sizes.pop("verify")
        print(f"bytes/step at {args.size_executions * STEPS:,} steps (used blocks; whole file):")
        for label, (used, whole) in sizes.items():
            print(f"  {label}: {used:.1f} ; {whole:.1f}")
        base = sizes["src columns only"][0]
        print(f"  src columns add {base - sizes[SIZE_VARIANTS[0][0]][0]:.1f}, the graph record "
              f"{sizes['schema 4'][0] - base:.1f} (distinct specs: "
              f"{sizes[SIZE_VARIANTS[3][0]][0] - base:.1f}) bytes/step of used blocks ; "
              f"verify of the schema-4 one: ok={ok}, {rows:,} rows in {secs:.1f} s", flush=True)
    cost_small = recording_cost(Path(args.dir) / "rec-small")
    print_cost("fresh ledger", cost_small)
    shutil.rmtree(Path(args.dir) / "rec-small", ignore_errors=True)
    cost_big = recording_cost(home, runs=3)
    print_cost("into the big ledger", cost_big)
    if os.environ.get("BENCH_VERIFY"):
        t = time.perf_counter()
        report = led.verify(store=False)
        print(f"verify: ok={report.ok} rows={report.rows} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
