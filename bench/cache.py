"""Cache benchmark: what a cache hit costs, against the work it saves and against flytekit and Hamilton.

    python bench/cache.py [--write] [--peers-python /tmp/peers/bin/python]

Every measurement runs in a fresh process (this script, `--child ...`), and the figures are
medians over repetitions interleaved across kinds, because the machine is shared and noisy:

1. key computation: `Task.identity()` (once per task per run; the first call in a process also
   analyses the code) and `runner.cache_key` (once per step), and the key of a step whose input
   is a 1 GiB Dataset (its digest is known, so the data is never rehashed) against hashing it;
2. a 1,000-step fan-out run twice in one process, first run against the fully cached re-run,
   with trivial steps and with steps of 10 ms of work (targets: under 15% and under 2%);
3. a 100-step chain (each step consumes the previous one's output) run twice in one process,
   timing each whole `ledgerflow.run` (opening the ledger, the code snapshot, the final flush:
   fixed costs included), against plain Python calling the same function, and against
   flytekit (`@task(cache=True, cache_version="1")` in a `@workflow`, executed locally twice)
   and Hamilton (`Builder().with_cache()`, `execute` twice) on the same chain, driven from
   here through small scripts run by `--peers-python` (a separate virtual environment:
   `python -m venv /tmp/peers && /tmp/peers/bin/pip install flytekit sf-hamilton`);
4. a profile of the cached re-run of the chain: cProfile of the driver thread, and every
   ledger open (in any thread, the flush thread included) timed by wrapping `open_ledger`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import write_section  # noqa: E402

from ledgerflow import Dataset, run, task, workflow  # noqa: E402
from ledgerflow.engine.runner import cache_key  # noqa: E402
from ledgerflow.engine.step import artifact_ref  # noqa: E402

N = 1000  # steps of the fan-out
CHAIN = 100  # steps of the chain
HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


@task(cache=True)
def inc(x: int, work_ms: float) -> int:
    if work_ms:
        time.sleep(work_ms / 1000)  # stands for the step's real work
    return x + 1


@task(cache=True)
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def wide(work_ms: float = 0.0) -> int:
    return total(xs=[inc(x=i, work_ms=work_ms) for i in range(N - 1)])


@task(cache=True)
def step(x: int) -> int:
    return x + 1


@workflow
def chain(seed: int = 0) -> int:
    x = seed
    for _ in range(CHAIN):
        x = step(x=x)
    return x


@task(cache=True)
def rows(data: Dataset) -> int:
    return data.num_rows


def _plain_wide(work_ms: float) -> int:
    return total.fn([inc.fn(i, work_ms) for i in range(N - 1)])


def _plain_chain(seed: int = 0) -> int:
    x = seed
    for _ in range(CHAIN):
        x = step.fn(x)
    return x


# -- children: one measurement each, in a fresh process, printing one JSON line ----------------

def child_keys() -> dict:
    """identity(): the first call (code analysis) and later ones; cache_key per step."""
    t0 = time.perf_counter()
    ident = step.identity()
    first = time.perf_counter() - t0
    inc.identity(), total.identity()

    def per_call(fn, n):
        samples = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples.append((time.perf_counter() - t0) / n)
        return statistics.median(samples)

    bindings = (("x", artifact_ref(41, int)),)
    return {
        "identity_first_s": first,
        "identity_s": per_call(step.identity, 200),
        "identity_inc_s": per_call(inc.identity, 200),
        "identity_total_s": per_call(total.identity, 200),
        "cache_key_s": per_call(lambda: cache_key(ident, bindings), 2000),
        "artifact_ref_s": per_call(lambda: artifact_ref(41, int), 2000),
    }


def child_bigkey() -> dict:
    """The key of a step with a 1 GiB Dataset input against hashing that Dataset once."""
    import numpy as np
    import pyarrow as pa

    from ledgerflow.store import Store, digest_file, using

    home = tempfile.mkdtemp(prefix="lf-cache-big-")
    try:
        store = Store.open(Path(home) / "store")
        with using(store):
            big = Dataset.from_arrow(pa.table({"x": np.arange(1 << 27, dtype=np.int64)}))  # 1 GiB
            t0 = time.perf_counter()
            digest_file(store.local_path(big.digest))
            hash_s = time.perf_counter() - t0
            ident = rows.identity()
            t0 = time.perf_counter()
            for _ in range(100):
                ref = artifact_ref(big, Dataset)
                cache_key(ident, (("data", ref),))
            key_s = (time.perf_counter() - t0) / 100
        assert ref.digest == big.digest
        return {"hash_s": hash_s, "key_s": key_s}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def child_wide(work_ms: float) -> dict:
    home = tempfile.mkdtemp(prefix="lf-cache-")
    try:
        t0 = time.perf_counter()
        first = run(wide, {"work_ms": work_ms}, home=home, progress=False)
        t1 = time.perf_counter()
        second = run(wide, {"work_ms": work_ms}, home=home, progress=False)
        t2 = time.perf_counter()
        assert all(s.status == "cached" for s in second.steps.values()), "the re-run was not fully cached"
        assert first.outputs == second.outputs == _plain_wide(0.0)
        t3 = time.perf_counter()
        _plain_wide(work_ms)
        plain = time.perf_counter() - t3
        return {"first_s": t1 - t0, "second_s": t2 - t1, "plain_s": plain}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def child_chain() -> dict:
    home = tempfile.mkdtemp(prefix="lf-chain-")
    try:
        t0 = time.perf_counter()
        first = run(chain, {"seed": 0}, home=home, progress=False)
        t1 = time.perf_counter()
        second = run(chain, {"seed": 0}, home=home, progress=False)
        t2 = time.perf_counter()
        assert len(second.steps) == CHAIN and all(s.status == "cached" for s in second.steps.values())
        assert first.outputs == second.outputs == CHAIN
        plain = []
        for _ in range(5):
            t3 = time.perf_counter()
            assert _plain_chain() == CHAIN
            plain.append(time.perf_counter() - t3)
        return {"first_s": t1 - t0, "second_s": t2 - t1, "plain_s": statistics.median(plain)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def _ledger_opens(log: list):
    """Time every open_ledger in any thread: (thread, read_only, open s, body s, close s)."""
    from ledgerflow.lineage import ledger as ledger_mod

    real = ledger_mod.open_ledger

    @contextlib.contextmanager
    def timed(path, **kw):
        t0 = time.perf_counter()
        cm = real(path, **kw)
        con = cm.__enter__()
        t1 = time.perf_counter()
        exc = (None, None, None)
        try:
            yield con
        except BaseException:
            exc = sys.exc_info()
            raise
        finally:
            t2 = time.perf_counter()
            cm.__exit__(*exc)
            t3 = time.perf_counter()
            log.append((threading.current_thread().name.split(":")[0], bool(kw.get("read_only")),
                        t1 - t0, t2 - t1, t3 - t2))

    ledger_mod.open_ledger = timed
    try:
        yield
    finally:
        ledger_mod.open_ledger = real


# (label, file suffix, function name) of the driver-thread functions the profile reports.
_PROFILED = [
    ("run", "lineage/recording.py", "run"),
    ("snapshot.take (code snapshot)", "engine/snapshot.py", "take"),
    ("environment.capture_json", "engine/environment.py", "capture_json"),
    ("execute", "engine/runner.py", "execute"),
    ("Ledger.record", "lineage/ledger.py", "record"),
    ("Ledger.flush (start, end)", "lineage/ledger.py", "flush"),
    ("Ledger.close", "lineage/ledger.py", "close"),
    ("_Run.reuse", "engine/runner.py", "reuse"),
    ("CacheIndex.lookup", "lineage/action_cache.py", "lookup"),
    ("_Run.identity", "engine/runner.py", "identity"),
    ("cache_key", "engine/runner.py", "cache_key"),
    ("_Run.bind (input bindings)", "engine/runner.py", "bind"),
    ("blueprint.workflow_spec (graph record)", "engine/blueprint.py", "workflow_spec"),
]


def child_profile() -> dict:
    home = tempfile.mkdtemp(prefix="lf-prof-")
    try:
        run(chain, {"seed": 0}, home=home, progress=False)
        opens: list = []
        prof = cProfile.Profile()
        with _ledger_opens(opens):
            t0 = time.perf_counter()
            prof.enable()
            second = run(chain, {"seed": 0}, home=home, progress=False)
            prof.disable()
            wall = time.perf_counter() - t0
        assert all(s.status == "cached" for s in second.steps.values())
        stats = pstats.Stats(prof)
        cum = {}
        for (filename, _, name), (_, _, _, ct, _) in stats.stats.items():
            for label, suffix, func in _PROFILED:
                if name == func and filename.endswith(suffix):
                    cum[label] = cum.get(label, 0.0) + ct
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
        return {"wall_s": wall, "cum": cum, "opens": opens, "top": out.getvalue()}
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- the peers: scripts run by another interpreter --------------------------------------------

FLYTE_SCRIPT = '''
import json, time
from flytekit import task, workflow

CALLS = []
N = {n}


@task(cache=True, cache_version="1")
def step(x: int) -> int:
    CALLS.append(x)
    return x + 1


@workflow
def chain(seed: int = 0) -> int:
    x = seed
    for _ in range(N):
        x = step(x=x)
    return x


t0 = time.perf_counter()
a = chain(seed=0)
t1 = time.perf_counter()
b = chain(seed=0)
t2 = time.perf_counter()
assert a == b == N, (a, b)
assert len(CALLS) == N, f"the second run called the task {{len(CALLS) - N}} times: not cached"
import flytekit
print(json.dumps({{"first_s": t1 - t0, "second_s": t2 - t1, "version": flytekit.__version__}}))
'''

HAMILTON_SCRIPT = '''
import json, sys, time
sys.path.insert(0, {here!r})
import chain_nodes
from hamilton import driver
import hamilton

dr = driver.Builder().with_modules(chain_nodes).with_cache(path={cache!r}).build()
final = "step_{n}"
t0 = time.perf_counter()
a = dr.execute([final], inputs={{"seed": 0}})[final]
t1 = time.perf_counter()
b = dr.execute([final], inputs={{"seed": 0}})[final]
t2 = time.perf_counter()
assert a == b == {n}, (a, b)
assert len(chain_nodes.CALLS) == {n}, f"the second run called {{len(chain_nodes.CALLS) - {n}}} functions: not cached"
print(json.dumps({{"first_s": t1 - t0, "second_s": t2 - t1, "version": ".".join(map(str, hamilton.version.VERSION))}}))
'''


def hamilton_nodes(n: int) -> str:
    lines = ["CALLS = []", "", "", "def step_1(seed: int) -> int:", "    CALLS.append(1)", "    return seed + 1", ""]
    for i in range(2, n + 1):
        lines += ["", f"def step_{i}(step_{i - 1}: int) -> int:", f"    CALLS.append({i})",
                  f"    return step_{i - 1} + 1", ""]
    return "\n".join(lines)


def peer(kind: str, python: str, workdir: Path) -> dict:
    """One measurement of a peer in a fresh process, with a fresh HOME (flytekit keeps its local
    cache in ~/.flyte/local-cache) and a fresh Hamilton cache directory."""
    rundir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    env = dict(os.environ, HOME=str(rundir), HAMILTON_TELEMETRY_ENABLED="false", FLYTE_SDK_LOGGING_LEVEL="40",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    if kind == "flytekit":
        script = FLYTE_SCRIPT.format(n=CHAIN)
    else:
        script = HAMILTON_SCRIPT.format(here=str(workdir), cache=str(rundir / "hamilton_cache"), n=CHAIN)
    path = rundir / "bench.py"
    path.write_text(script)
    try:
        proc = subprocess.run([python, str(path)], cwd=rundir, env=env, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["exit %d" % proc.returncode]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ours(kind: str, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), "--child", kind, *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {kind} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the report --------------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs)


def spread(xs, scale=1e3, unit="ms", fmt="{:.0f}"):
    unit = f" {unit}" if unit else ""
    return f"{fmt.format(med(xs) * scale)}{unit} ({fmt.format(min(xs) * scale)}–{fmt.format(max(xs) * scale)})"


def us(s):
    return f"{s * 1e6:.0f} µs" if s >= 1e-5 else f"{s * 1e6:.2f} µs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7, help="measurements of the chain and of each peer")
    parser.add_argument("--wide-repeats", type=int, default=5, help="measurements of the trivial 1,000-step run")
    parser.add_argument("--slow-repeats", type=int, default=3, help="measurements of the 10 ms 1,000-step run")
    parser.add_argument("--peers-python", default="/tmp/peers/bin/python")
    parser.add_argument("--no-bigkey", action="store_true", help="skip the 1 GiB Dataset (needs ~3 GiB of memory)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        fn = {"keys": child_keys, "bigkey": child_bigkey, "chain": child_chain, "profile": child_profile,
              "wide": lambda: child_wide(args.work_ms)}[args.child]
        print(json.dumps(fn()))
        return

    started = time.time()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="lf-peers-"))
    (workdir / "chain_nodes.py").write_text(hamilton_nodes(CHAIN))
    peers_ok = {}
    for kind in ("flytekit", "hamilton"):
        if not Path(args.peers_python).exists():
            peers_ok[kind] = f"no interpreter at {args.peers_python}"
            continue
        probe = subprocess.run([args.peers_python, "-c", "import flytekit" if kind == "flytekit" else
                                "import hamilton.driver"], capture_output=True, text=True)
        peers_ok[kind] = True if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["?"])[-1]

    keys = [ours("keys") for _ in range(5)]
    big = None if args.no_bigkey else ours("bigkey")

    # The chain and its peers, interleaved: one fresh process per measurement.
    lf, fl, ha = [], [], []
    peer_errors = {}
    for i in range(args.repeats):
        lf.append(ours("chain"))
        for kind, out in (("flytekit", fl), ("hamilton", ha)):
            if peers_ok[kind] is True and kind not in peer_errors:
                got = peer(kind, args.peers_python, workdir)
                if "error" in got:
                    peer_errors[kind] = " ".join(got["error"])
                else:
                    out.append(got)
        print(f"chain {i + 1}/{args.repeats}: ledgerflow {lf[-1]['second_s'] * 1e3:.1f} ms"
              + (f", flytekit {fl[-1]['second_s'] * 1e3:.1f} ms" if fl else "")
              + (f", hamilton {ha[-1]['second_s'] * 1e3:.1f} ms" if ha else ""), file=sys.stderr)

    wide_runs = {0.0: [], 10.0: []}
    for i in range(max(args.wide_repeats, args.slow_repeats)):
        for work_ms, reps in ((0.0, args.wide_repeats), (10.0, args.slow_repeats)):
            if i < reps:
                wide_runs[work_ms].append(ours("wide", "--work-ms", str(work_ms)))
        print(f"fan-out {i + 1}", file=sys.stderr)
    profs = [ours("profile") for _ in range(3)]
    shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    # 1. keys
    ident_first = med([k["identity_first_s"] for k in keys])
    ident = med([k["identity_s"] for k in keys])
    ident_wide = med([k["identity_inc_s"] + k["identity_total_s"] for k in keys])
    ckey = med([k["cache_key_s"] for k in keys])
    aref = med([k["artifact_ref_s"] for k in keys])
    chain_second = med([r["second_s"] for r in lf])
    wide0_second = med([r["second_s"] for r in wide_runs[0.0]])
    key_chain = ident / CHAIN + ckey
    key_wide = ident_wide / N + ckey
    t1 = ["| measurement | time, median | share of a cached step |", "|---|---|---|",
          f"| `Task.identity()`, first call in a process (code analysed) | {us(ident_first)} | |",
          f"| `Task.identity()`, later calls (the values it reads read again) | {us(ident)} | |",
          f"| `runner.cache_key`, one int input | {us(ckey)} | |",
          f"| `artifact_ref` of that int input (context: made for the step's record anyway) | {us(aref)} | |",
          f"| keys per step, 100-step chain (1 identity / 100 + 1 key) | {us(key_chain)} | "
          f"{key_chain / (chain_second / CHAIN):.1%} of {us(chain_second / CHAIN)} |",
          f"| keys per step, 1,000-step fan-out (2 identities / 1,000 + 1 key) | {us(key_wide)} | "
          f"{key_wide / (wide0_second / N):.1%} of {us(wide0_second / N)} |"]
    if big:
        t1 += [f"| hashing a 1 GiB Dataset once (context) | {big['hash_s'] * 1e3:.0f} ms | |",
               f"| `artifact_ref` + key of a step with that Dataset as input | {us(big['key_s'])} | "
               f"{big['key_s'] / big['hash_s']:.6f} of the hash |"]

    # 2. the fan-out
    t2 = ["| 1,000-step fan-out, in one process | first run | fully cached re-run | re-run / first run | target "
          "| plain Python, same functions |", "|---|---|---|---|---|---|"]
    verdicts = {}
    for work_ms, target in ((0.0, 0.15), (10.0, 0.02)):
        rs = wide_runs[work_ms]
        shares = [r["second_s"] / r["first_s"] for r in rs]
        share = med(shares)
        verdicts[work_ms] = (share, target)
        what = "trivial steps" if not work_ms else f"steps of {work_ms:g} ms work"
        t2.append(f"| {what} ({len(rs)} runs) | {spread([r['first_s'] for r in rs])} | "
                  f"{spread([r['second_s'] for r in rs])} | {share:.1%} ({min(shares):.1%}–{max(shares):.1%}) | "
                  f"< {target:.0%}, **{'met' if share < target else 'missed'}** | "
                  f"{spread([r['plain_s'] for r in rs], fmt='{:.1f}' if work_ms else '{:.2f}')} |")

    # 3. the chain against plain Python and the peers
    plain = med([r["plain_s"] for r in lf])
    fl_second = med([r["second_s"] for r in fl]) if fl else None
    ha_second = med([r["second_s"] for r in ha]) if ha else None

    def row(label, xs, base_note=""):
        m = med(xs)
        cells = [label, spread(xs, fmt="{:.1f}"), us(m / CHAIN), f"{m / plain:,.0f}x"]
        cells.append(f"{m / fl_second:.2f}x" if fl_second else "n/a")
        cells.append(f"{m / ha_second:.2f}x" if ha_second else "n/a")
        return "| " + " | ".join(cells) + (f" {base_note}" if base_note else "") + " |"

    t3 = ["| 100-step chain, whole run in one process | time, median (min–max) | per step | vs plain Python "
          "| vs flytekit cached | vs Hamilton cached |", "|---|---|---|---|---|---|",
          f"| plain Python, 100 calls of the same function (baseline) | {plain * 1e6:.1f} µs | {us(plain / CHAIN)} "
          f"| 1x | | |"]
    t3.append(row("Ledgerflow, first run (nothing cached)", [r["first_s"] for r in lf]))
    t3.append(row("**Ledgerflow, fully cached re-run**", [r["second_s"] for r in lf]))
    peer_notes = []
    for name, kind, rs in (("flytekit", "flytekit", fl), ("Hamilton", "hamilton", ha)):
        if rs:
            v = rs[0]["version"]
            t3.append(row(f"{name} {v}, first run", [r["first_s"] for r in rs]))
            t3.append(row(f"{name} {v}, cached re-run", [r["second_s"] for r in rs]))
        else:
            why = peer_errors.get(kind) or peers_ok[kind]
            t3.append(f"| {name}: not measured ({why}) | | | | | |")
            peer_notes.append(f"{name} could not be run here: {why}.")
    per_step = chain_second / CHAIN
    chain_verdict = f"{us(per_step)} per cached step against a target of 300 µs: **{'met' if per_step < 300e-6 else 'missed'}**"
    if fl_second:
        chain_verdict += f"; flytekit's cached re-run: {us(fl_second / CHAIN)} per step in the same run"
    if ha_second:
        chain_verdict += f", Hamilton's: {us(ha_second / CHAIN)}"

    # 4. the profile: medians over the profiled runs
    def by_open(p):
        sums = {}
        for thread, ro, o, b, c in p["opens"]:
            k = ("driver" if thread == "MainThread" else "flush thread", "read" if ro else "write")
            s = sums.setdefault(k, [0, 0.0, 0.0, 0.0])
            s[0] += 1
            s[1] += o
            s[2] += b
            s[3] += c
        return sums

    walls = [p["wall_s"] for p in profs]
    runs_cum = [p["cum"].get("run", p["wall_s"]) for p in profs]
    derived = []
    for p in profs:
        c = p["cum"]
        ledger = sum(o + b + c_ for _, _, o, b, c_ in p["opens"])
        engine = c.get("execute", 0) - c.get("Ledger.record", 0) - c.get("CacheIndex.lookup", 0)
        derived.append({"ledger": ledger, "engine": engine, "opening": sum(x[2] for x in p["opens"]),
                        "in use": sum(x[3] for x in p["opens"]), "closing": sum(x[4] for x in p["opens"])})
    total_run = med(runs_cum)
    profile_lines = [
        f"cProfile of the cached re-run of the 100-step chain, {len(profs)} runs, each in a fresh process after an "
        f"unprofiled first run (driver thread; {total_run * 1e3:.0f} ms median under the profiler, "
        f"{spread(walls)} wall); every ledger open in any thread timed by wrapping `open_ledger`. Medians:",
        "",
        "| where | ms, median (min–max) | share of the run |",
        "|---|---|---|",
    ]
    for label, _, _ in _PROFILED:
        xs = [p["cum"].get(label, 0.0) for p in profs]
        if label != "run" and any(xs):
            profile_lines.append(f"| {label} (cumulative) | {spread(xs, fmt='{:.1f}', unit='')} | "
                                 f"{med(xs) / total_run:.0%} |")
    for key, label in (("ledger", "all ledger opens: open + use + close, every thread"),
                       ("opening", "of which opening (file lock, DuckDB connect)"),
                       ("in use", "of which in use (the writes, the cache reads)"),
                       ("closing", "of which closing (DuckDB checkpoint, unlock)"),
                       ("engine", "the engine: `execute` less `Ledger.record` and `CacheIndex.lookup`")):
        xs = [d[key] for d in derived]
        profile_lines.append(f"| {label} | {spread(xs, fmt='{:.1f}', unit='')} | {med(xs) / total_run:.0%} |")
    counts = sorted({(w, m, n) for p in profs for (w, m), (n, *_) in by_open(p).items()})
    profile_lines += ["", "Ledger opens per cached re-run: " + "; ".join(
        f"{n} {m} open{'s' if n != 1 else ''} in the {w}" for w, m, n in counts) + ".",
        "", f"So a cached step's {us(chain_second / CHAIN)} (the unprofiled median above) is mostly fixed cost: "
        f"the ledger's opens take {med([d['ledger'] for d in derived]) / total_run:.0%} of the profiled run "
        f"({med([d['opening'] for d in derived]) * 1e3:.0f} ms of it only opening and "
        f"{med([d['closing'] for d in derived]) * 1e3:.0f} ms closing the file), while the engine's own "
        f"work for a hit (inputs, key, reuse, events) is {us(med([d['engine'] for d in derived]) / CHAIN)} per "
        f"step under the profiler and the keys {us(key_chain)}."]

    tables = {"keys": "\n".join(t1), "wide": "\n".join(t2), "chain": "\n".join(t3),
              "profile": "\n".join(profile_lines)}
    meta = (f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; whole script "
            f"{time.time() - started:.0f} s")
    for t in tables.values():
        print(t + "\n")
    print(chain_verdict)
    print(meta)
    if peer_notes:
        print(" ".join(peer_notes))
    print(profs[0]["top"], file=sys.stderr)
    raw = {"keys": keys, "big": big, "chain": lf, "flytekit": fl, "hamilton": ha, "wide": {str(k): v for k, v in
           wide_runs.items()}, "profile": [{k: v for k, v in p.items() if k != "top"} for p in profs], "meta": meta}
    Path(tempfile.gettempdir(), "lf-cache-bench.json").write_text(json.dumps(raw, indent=1))
    if args.write:
        write_section("Cache (bench/cache.py)", render(tables, chain_verdict, meta, peer_notes, args, verdicts))


def render(tables, chain_verdict, meta, peer_notes, args, verdicts) -> str:
    return "\n\n".join([
        f"`.venv/bin/python bench/cache.py --write --repeats {args.repeats} --wide-repeats {args.wide_repeats} "
        f"--slow-repeats {args.slow_repeats}`, against the Ledgerflow code of the commit that adds this text. "
        f"Every figure is the median over fresh processes (the machine is "
        f"shared with other sessions' work and noisy: {meta}); min–max in brackets. Repetitions are interleaved "
        "across kinds.",
        "**Key computation.** A run computes each task's identity once (its code analysis is cached per process, "
        "the values it reads are read again) and one cache key per step.",
        tables["keys"],
        "**A fully cached 1,000-step re-run against the first run** (a fan-out of 999 `inc` steps into one "
        "`total`; both `ledgerflow.run` calls in one fresh process and a fresh home; the ledger on):",
        tables["wide"],
        "**The per-step cost of a cached 100-step chain**, each step consuming the previous step's output, "
        "fixed costs included: each figure is a whole `ledgerflow.run` (opening the ledger, the code snapshot, "
        "the environment, the final flush) or a whole workflow call, the second of two in one fresh process. "
        f"The peers run the same chain of `x + 1` steps, measured in the same run, interleaved, from a separate "
        f"virtual environment ({args.peers_python}): flytekit as `@task(cache=True, cache_version=\"1\")` "
        "tasks in a `@workflow` executed locally (its local cache, `~/.flyte/local-cache` under a fresh HOME), "
        "Hamilton as 100 functions with `Builder().with_cache()` (a fresh cache directory), `execute` twice. "
        "Each peer script checks that the second call ran none of the functions.",
        tables["chain"],
        chain_verdict + ".",
        *(peer_notes and [" ".join(peer_notes)]),
        "**Where a cached step's time goes in Ledgerflow.**",
        tables["profile"],
    ])


if __name__ == "__main__":
    main()
