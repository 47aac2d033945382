"""Team ledger benchmark (run by hand): the PostgreSQL ledger beside the DuckDB file, in one run.

    .venv/bin/python bench/ledger_server.py [--executions 100] [--repeats 5] [--dir /tmp/ledger-server-bench] [--write]

Starts a throwaway PostgreSQL (tests/postgres_server.py: initdb into a temp folder, loopback
only, durability off; as root it runs as an unprivileged user), creates a database, makes the
ledger in it with `ledgerflow.lineage.server.init` (writer and reader roles), and measures:

1. Recording: a real 1,000-element map run (`many`: `numbers` then `inc` mapped over its
   1,000 outputs, 1,001 steps) with `ledgerflow.run(..., cache=False)`, whole run per step,
   with the in-memory recorder (the baseline), the home's DuckDB file, and the server (the
   writer's URL); interleaved, medians. And how long after the run returns another reader
   sees it `succeeded`: the file, `Ledger(home).executions()` (a fresh Ledger: it moves the
   run's journal into the file first); the server, `Ledger(other_home, ledger=reader_url)
   .executions()` from a home whose copy was up to date before the run (it pulls the run's rows).
2. Reading at ~100k steps: EXECUTIONS synthetic 1,000-step executions (the events of one run
   of bench/ledger.py's `pipeline`, 20 chains of 50 steps, as the runner reports them, with
   the graph record and sources) recorded through `Ledger.record` into the file (moved in by
   `sync()`) and delivered to the server (by the recorder itself: at each execution's start
   and end, and every 0.5 s), plus part 1's runs. Then, medians of REPEATS:
   `execution(id)` (`lineage show`) of a 1,000-step execution, `upstream` of the last step
   of a 50-step chain and `downstream` of its first step (both step refs, 50 steps each),
   `executions()` (every execution), on the file, and on the server from a home whose copy
   is up to date (warm: each read still asks the server for rows past the copy's head); the
   first read from fresh homes (cold: `executions()`, which copies the whole chain first);
   `verify(store=False)` of each (the server's fetches the whole chain again and walks it);
   and what a warm copy pays to pull the rows of one more 1,000-step run, against pulling
   nothing.

`--write` replaces the "Team ledger on PostgreSQL (bench/ledger_server.py)" section of
docs/benchmarks.md. The server and every folder made are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

import ledgerflow  # noqa: E402
from ledgerflow import Ledger, MemoryRecorder, map_task, task, workflow  # noqa: E402
from ledgerflow.lineage import server as servers  # noqa: E402
from postgres_server import start_postgres  # noqa: E402
from report import machine, write_section  # noqa: E402

import ledger as ledger_bench  # noqa: E402  (bench/ledger.py: the synthetic runs' events)

LOADS: list = []  # 1-minute load average at each phase, for the notes

TITLE = "Team ledger on PostgreSQL (bench/ledger_server.py)"
N = 1000


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def inc(x: int) -> int:
    return x + 1


@workflow
def many(n: int = N) -> list[int]:
    return map_task(inc, x=numbers(n=n))


def phase(text: str) -> None:
    LOADS.append(os.getloadavg()[0])
    print(f"{text} (load {LOADS[-1]:.2f})", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def median_time(fn, repeats: int, warm: bool = True) -> tuple[float, object]:
    if warm:
        fn()
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def sees(ledger: Ledger, eid: str) -> bool:
    return any(e.id == eid and e.status == "succeeded" for e in ledger.executions())


def until_seen(ledger: Ledger, eid: str, limit: float = 30.0) -> float:
    """Seconds from now until `ledger.executions()` lists `eid` succeeded (polling)."""
    t = time.perf_counter()
    while not sees(ledger, eid):
        if time.perf_counter() - t > limit:
            raise RuntimeError(f"{eid} not visible after {limit} s")
        time.sleep(0.01)
    return time.perf_counter() - t


# -- 1. recording ---------------------------------------------------------------------------------

def recording(base: Path, writer_url: str, reader_url: str, repeats: int) -> dict:
    homes = {"memory": base / "rec-memory", "file": base / "rec-file", "server": base / "rec-server"}
    watcher = Ledger(base / "rec-watcher", ledger=reader_url)  # another home, on the reader's URL
    times: dict = {k: [] for k in homes}
    seen: dict = {"file": [], "server": []}
    steps = None
    for i in range(repeats + 1):  # the first round warms imports, the store, the server's caches
        t = time.perf_counter()
        ledgerflow.run(many, home=homes["memory"], recorder=MemoryRecorder(), cache=False, progress=False)
        mem = time.perf_counter() - t
        t = time.perf_counter()
        ex_file = ledgerflow.run(many, home=homes["file"], cache=False, progress=False)
        file_s = time.perf_counter() - t
        file_seen = until_seen(Ledger(homes["file"]), ex_file.id)
        watcher.executions()  # the watcher's copy is up to date before the server run
        t = time.perf_counter()
        ex_srv = ledgerflow.run(many, home=homes["server"], ledger=writer_url, cache=False, progress=False)
        srv_s = time.perf_counter() - t
        srv_seen = until_seen(watcher, ex_srv.id)
        if steps is None:
            steps = len(Ledger(homes["file"]).execution(ex_file.id).steps)
        if i:
            times["memory"].append(mem)
            times["file"].append(file_s)
            times["server"].append(srv_s)
            seen["file"].append(file_seen)
            seen["server"].append(srv_seen)
        print(f"  run {i}: memory {mem:.2f} s, file {file_s:.2f} s (+{file_seen * 1e3:.0f} ms to read), "
              f"server {srv_s:.2f} s (+{srv_seen * 1e3:.0f} ms to read)", flush=True)
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update({f"seen {k}": statistics.median(v) for k, v in seen.items()})
    out["steps"] = steps
    return out


# -- 2. reading at ~100k steps -------------------------------------------------------------------

def build(file_home: Path, server_home: Path, writer_url: str, executions: int) -> dict:
    """Record `executions` synthetic 1,000-step executions into the file and onto the server."""
    shows = []
    t_file = t_srv = 0.0
    for e in range(executions):
        evs = ledger_bench.recording_events(graph=True)
        shows.append(evs[0].execution_id)
        t = time.perf_counter()
        led = Ledger(file_home)
        for ev in evs:
            led.record(ev)
        led.close()
        if e % 10 == 9 or e == executions - 1:
            Ledger(file_home).sync()
        t_file += time.perf_counter() - t
        t = time.perf_counter()
        led = Ledger(server_home, ledger=writer_url)
        for ev in evs:
            led.record(ev)
        led.close()
        t_srv += time.perf_counter() - t
        if e % 20 == 19 or e == executions - 1:
            print(f"  recorded {e + 1}/{executions} executions: file {t_file:.0f} s, server {t_srv:.0f} s", flush=True)
    Ledger(server_home, ledger=writer_url).sync()
    return {"show": shows[len(shows) // 2], "file_s": t_file, "server_s": t_srv}


def counts(led: Ledger) -> dict:
    with led._reader(fresh=False) as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM steps), (SELECT count(*) FROM executions), "
            + " + ".join(f"(SELECT count(*) FROM {t.name})" for t in servers.CHAINED_TABLES)
            ).fetchone()
    return {"steps": row[0], "executions": row[1], "rows": row[2]}


def server_rows(admin_url: str) -> int:
    parts = " + ".join(f"(SELECT count(*) FROM ledgerflow.{t.name})" for t in servers.CHAINED_TABLES)
    with psycopg.connect(admin_url) as con:
        return con.execute(f"SELECT {parts}").fetchone()[0]


def queries(led: Ledger, show: str) -> dict:
    return {
        "show": lambda: led.execution(show),
        "upstream": lambda: led.upstream(f"{show}:step_{ledger_bench.DEPTH}"),
        "downstream": lambda: led.downstream(f"{show}:step"),
        "executions": lambda: led.executions(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executions", type=int, default=100, help="synthetic 1,000-step executions (default 100)")
    ap.add_argument("--repeats", type=int, default=5, help="of each warm query (default 5)")
    ap.add_argument("--runs", type=int, default=3, help="of each 1,000-step run (default 3, after one warm-up)")
    ap.add_argument("--cold", type=int, default=3, help="fresh homes for the cold first read (default 3)")
    ap.add_argument("--dir", default=None, help="work folder (default: a temp folder, removed)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    t_all = time.perf_counter()
    load_before = os.getloadavg()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="lf-pg-bench-"))
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    try:
        with start_postgres(base / "pg") as pg:
            admin = pg.create_database("ledger")
            creds = servers.init(admin, writer_password="writer-pw", reader_password="reader-pw")
            with psycopg.connect(admin) as con:
                pg_version = con.execute("SHOW server_version").fetchone()[0]
            print(f"PostgreSQL {pg_version} on 127.0.0.1:{pg.port} (pid {pg.pid}, data {pg.data})", flush=True)
            result = measure(base, admin, creds, args)
            result["pg_version"] = pg_version
            pid, data = pg.pid, pg.data
        # start_postgres stopped it by its data folder; check that nothing of ours is left.
        left = pid is not None and Path(f"/proc/{pid}").exists() and str(data).encode() in Path(
            f"/proc/{pid}/cmdline").read_bytes()
        print(f"postgres {pid} {'STILL RUNNING' if left else 'stopped'}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["load"] = (load_before, os.getloadavg())
    result["total_s"] = time.perf_counter() - t_all
    table, notes = report(result, args)
    print()
    print(table)
    print()
    print(notes)
    if args.write:
        write_section(TITLE, table + "\n\n" + notes)
        print(f"\nwrote the section {TITLE!r} of docs/benchmarks.md")


def measure(base: Path, admin: str, creds, args) -> dict:
    writer_url, reader_url = creds.writer_url, creds.reader_url
    r: dict = {}
    phase(f"1. recording: {args.runs} x a {N}-element map run each way (+1 warm-up) ...")
    r["rec"] = recording(base, writer_url, reader_url, args.runs)

    phase(f"2. building {args.executions} x {ledger_bench.STEPS:,} synthetic steps into the file and the server ...")
    file_home, srv_home = base / "rec-file", base / "rec-server"  # on top of part 1's runs
    built = build(file_home, srv_home, writer_url, args.executions)
    r["build"] = built
    file_led = Ledger(file_home)
    warm_home = base / "warm-reader"
    warm = Ledger(warm_home, ledger=reader_url)
    t = time.perf_counter()
    warm.executions()
    r["first read, warm home"] = time.perf_counter() - t
    r["file counts"] = counts(file_led)
    r["server counts"] = counts(warm)
    r["server rows (server)"] = server_rows(admin)
    r["file MB"] = file_led.path.stat().st_size / 1e6
    r["copy MB"] = warm.path.stat().st_size / 1e6
    print(f"  file: {r['file counts']}, server copy: {r['server counts']}, server holds {r['server rows (server)']:,} "
          f"rows", flush=True)

    show = built["show"]
    phase("  queries ...")
    r["q"] = {}
    for name in queries(file_led, show):
        f_s, f_out = median_time(queries(file_led, show)[name], args.repeats)
        w_s, w_out = median_time(queries(warm, show)[name], args.repeats)
        r["q"][name] = (f_s, w_s)
        print(f"  {name}: file {ms(f_s)}, server warm {ms(w_s)}", flush=True)
    detail = file_led.execution(show)
    up = file_led.upstream(f"{show}:step_{ledger_bench.DEPTH}")
    down = file_led.downstream(f"{show}:step")
    r["shapes"] = {"show steps": len(detail.steps), "up steps": len(up.of_kind("step")),
                   "down steps": len(down.of_kind("step")), "executions": len(file_led.executions())}
    # The warm reader's fixed cost: a read with nothing to pull (connect, ask 14 tables past the head).
    r["pull nothing"], _ = median_time(lambda: warm.sync(), args.repeats)

    phase(f"  cold: first read from {args.cold} fresh homes ...")
    cold = []
    for i in range(args.cold):
        home = base / f"cold-{i}"
        t = time.perf_counter()
        n = len(Ledger(home, ledger=reader_url).executions())
        cold.append(time.perf_counter() - t)
        print(f"    cold {i}: {cold[-1]:.2f} s ({n} executions)", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    r["cold"] = (statistics.median(cold), min(cold), max(cold))

    phase("  verify(store=False) ...")
    vf = []
    vs = []
    for _ in range(2):
        t = time.perf_counter()
        rep_f = file_led.verify(store=False)
        vf.append(time.perf_counter() - t)
        t = time.perf_counter()
        rep_s = warm.verify(store=False)
        vs.append(time.perf_counter() - t)
        assert rep_f.ok and rep_s.ok, (rep_f, rep_s)
    r["verify"] = (statistics.median(vf), statistics.median(vs), rep_f.rows, rep_s.rows)
    print(f"  verify: file {vf} ({rep_f.rows:,} rows), server {vs} ({rep_s.rows:,} rows)", flush=True)

    phase("  pull after one more run ...")
    pulls, new_rows = [], []
    for _ in range(args.runs):
        before = counts(warm)["rows"]
        ledgerflow.run(many, home=srv_home, ledger=writer_url, cache=False, progress=False)
        t = time.perf_counter()
        warm.sync()
        pulls.append(time.perf_counter() - t)
        new_rows.append(counts(warm)["rows"] - before)
    r["pull run"] = (statistics.median(pulls), statistics.median(new_rows))
    print(f"  pull of {new_rows} new rows: {[round(p * 1e3) for p in pulls]} ms", flush=True)
    phase("done")
    return r


def report(r: dict, args) -> tuple[str, str]:
    rec = r["rec"]
    steps = rec["steps"]
    per = {k: rec[k] / steps * 1e6 for k in ("memory", "file", "server")}
    lines = [
        "| measurement | DuckDB file | PostgreSQL (loopback) | server / file |",
        "|---|---|---|---|",
        f"| 1. {steps:,}-step map run, whole run per step (MemoryRecorder: {per['memory']:.0f} µs) "
        f"| {per['file']:.0f} µs ({per['file'] / per['memory']:.2f}x memory) "
        f"| {per['server']:.0f} µs ({per['server'] / per['memory']:.2f}x memory) "
        f"| {per['server'] / per['file']:.2f}x |",
        f"| 1. run returned → another reader lists it succeeded | {ms(rec['seen file'])} (moves the journal) "
        f"| {ms(rec['seen server'])} (pulls its rows) | {rec['seen server'] / rec['seen file']:.1f}x |",
    ]
    sh = r["shapes"]
    labels = {"show": f"2. `execution(id)` (show), {sh['show steps']:,} steps",
              "upstream": f"2. `upstream` of a step ref, {sh['up steps']} steps",
              "downstream": f"2. `downstream` of a step ref, {sh['down steps']} steps",
              "executions": f"2. `executions()`, all {sh['executions']}"}
    for name, (f_s, w_s) in r["q"].items():
        lines.append(f"| {labels[name]} | {ms(f_s)} | {ms(w_s)} (warm copy) | {w_s / f_s:.1f}x |")
    lines.append(f"| 2. a warm copy's check with nothing new (`sync()`) | – | {ms(r['pull nothing'])} | |")
    cold, cold_min, cold_max = r["cold"]
    lines.append(f"| 2. cold: first `executions()` from a fresh home (copies the whole chain) "
                 f"| – | {ms(cold)} (range {ms(cold_min)} to {ms(cold_max)}) | {cold / r['q']['executions'][0]:.0f}x the "
                 f"file's `executions()` |")
    vf, vs, rows_f, rows_s = r["verify"]
    lines.append(f"| 2. `verify(store=False)` | {ms(vf)} ({rows_f:,} rows) | {ms(vs)} ({rows_s:,} rows, "
                 f"fetched whole) | {vs / vf:.1f}x |")
    pull_s, new = r["pull run"]
    lines.append(f"| 2. warm copy pulls one more {steps:,}-step run ({new:,.0f} rows, `sync()`) | – "
                 f"| {ms(pull_s)} ({pull_s / new * 1e6:.0f} µs/row) | |")
    table = "\n".join(lines)
    fc, sc = r["file counts"], r["server counts"]
    (l1, l5, l15), (e1, e5, e15) = r["load"]
    b = r["build"]
    busy = (": other work (a test suite) shared the cores, so absolute times are inflated and noisy (the cold "
            "range shows how much); the ratios, each pair measured back to back in the same run, hold better"
            if max(LOADS) > (os.cpu_count() or 1) else "")
    notes = (
        f"Run on {machine()}, {platform.system()} {platform.release()}, DuckDB {duckdb.__version__}, psycopg "
        f"{psycopg.__version__}, PostgreSQL {r['pg_version']} started by the bench (tests/postgres_server.py: "
        f"127.0.0.1, scram-sha-256, fsync/synchronous_commit off) on the same {os.cpu_count()} cores as the client; "
        f"`.venv/bin/python bench/ledger_server.py{' --write' if args.write else ''}` "
        f"(--executions {args.executions}, {args.runs} runs, {args.repeats} repeats, {args.cold} cold homes), "
        f"{r['total_s']:.0f} s in all. Load average {l1:.2f}/{l5:.2f}/{l15:.2f} at the start, "
        f"{e1:.2f}/{e5:.2f}/{e15:.2f} at the end, 1-minute load {min(LOADS):.1f}-{max(LOADS):.1f} across the "
        f"phases{busy}.\n\n"
        f"**Part 1** runs `many` (`numbers` then `inc` mapped over 1,000 elements, {steps:,} steps, `cache=False`) "
        f"with `ledgerflow.run`, interleaved: MemoryRecorder (the engine alone, the baseline), the home's file, "
        f"and the server through the writer's URL; medians of {args.runs} after a warm-up. The server run delivers "
        f"its journal at its start, every 0.5 s from the journal thread, and at its end before `run` returns; the "
        f"file run only journals (the next reader moves it in). \"Another reader\" is a fresh `Ledger(home)` for "
        f"the file, and for the server a second home on the reader's URL whose copy was current before the run.\n\n"
        f"**Part 2**: {args.executions} synthetic executions of bench/ledger.py's `pipeline` (20 chains x 50 steps, "
        f"graph record and sources, recorded through `Ledger.record`: file {b['file_s']:.0f} s with its `sync`s, "
        f"server {b['server_s']:.0f} s delivered by the recorder) plus part 1's runs: the file holds "
        f"{fc['steps']:,} steps in {fc['executions']} executions ({fc['rows']:,} chained rows, "
        f"{r['file MB']:.0f} MB); the server {sc['steps']:,} steps in {sc['executions']} executions "
        f"({r['server rows (server)']:,} chained rows; a home's copy {r['copy MB']:.0f} MB). Queries are medians "
        f"of {args.repeats} after one warm-up, each through a `Ledger` as the CLI calls it; on the server every "
        f"read first connects and asks each of the {len(servers.CHAINED_TABLES)} tables for rows past the copy's "
        f"head (the \"nothing new\" row is that cost alone), then reads the local DuckDB copy with the file's code. "
        f"Cold is the median of {args.cold} fresh homes' first `executions()`, which fetches and re-hashes the "
        f"whole chain into a new copy; the server's `verify` fetches it again into a temporary copy, walks it, and "
        f"compares it with the home's copy. The last row: a writer on another home runs `many` once more, then the "
        f"warm reader's `sync()` pulls its rows (median of {args.runs})."
    )
    return table, notes


if __name__ == "__main__":
    main()
