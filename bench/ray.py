"""Ledgerflow on Ray against raw Ray, on one local runtime in one process.

    python bench/ray.py                 # prints a table
    python bench/ray.py --write         # ... and updates docs/benchmarks.md
    python bench/ray.py --profile       # ... and prints a cProfile of the driver for each Ray workflow

Raw Ray: a fan-out of 1,000 trivial `ray.remote` tasks (submit all, get all) and a chain of
200 (each submitted after `ray.get` of the last). Ledgerflow: the same shapes as workflows run
with `executor=RayExecutor()` and the DuckDB ledger on (plain `ledgerflow.run(wf, home=...)`),
the fan-out both as `map_task` and as a list of 1,000 task calls; and, for context, the same
workflows on the local executor. Everything is warmed up once, then each measurement is the
median of --repeats runs, interleaved round by round so that drift hits every row alike.
Targets (issue 17): fan-out and chain within 1.3x of raw Ray (issue 4 asked 1.5x and 2x).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named ray.py: keep `import ray` from importing it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import ray  # noqa: E402

import ledgerflow  # noqa: E402
from ledgerflow import map_task, task, workflow  # noqa: E402
from ledgerflow.executors.ray import RayExecutor  # noqa: E402

_spec = importlib.util.spec_from_file_location("_bench_report", _HERE / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

FAN = 1000
CHAIN = 200
SECTION = "Ray executor (bench/ray.py)"


# -- raw Ray ------------------------------------------------------------------------------

@ray.remote(max_retries=0)
def raw_inc(x: int) -> int:
    return x + 1


def raw_fan_out() -> list[int]:
    return ray.get([raw_inc.remote(i) for i in range(FAN)])


def raw_chain() -> int:
    x = 0
    for _ in range(CHAIN):
        x = ray.get(raw_inc.remote(x))
    return x


# -- Ledgerflow ---------------------------------------------------------------------------

@task
def inc(x: int) -> int:
    return x + 1


@workflow
def fan_map() -> list[int]:
    return map_task(inc, x=list(range(FAN)))


@workflow
def fan_calls() -> list[int]:
    return [inc(x=i) for i in range(FAN)]


@workflow
def chain(x: int = 0) -> int:
    for _ in range(CHAIN):
        x = inc(x=x)
    return x


EXPECT = {fan_map: list(range(1, FAN + 1)), fan_calls: list(range(1, FAN + 1)), chain: CHAIN}


def on_ray(wf, home: str):
    ex = ledgerflow.run(wf, home=home, executor=RayExecutor(), progress=False)
    assert ex.outputs == EXPECT[wf], "wrong result"
    return ex


def on_ray_memory(wf, home: str):
    ex = ledgerflow.run(wf, home=home, executor=RayExecutor(), recorder=ledgerflow.MemoryRecorder(), progress=False)
    assert ex.outputs == EXPECT[wf], "wrong result"
    return ex


def on_local(wf, home: str):
    ex = ledgerflow.run(wf, home=home, executor="local", progress=False)
    assert ex.outputs == EXPECT[wf], "wrong result"
    return ex


def profile(label: str, fn, top: int) -> str:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    out.write(f"\n===== {label}: {wall * 1e3:.0f} ms under cProfile =====\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the driver per Ray workflow")
    parser.add_argument("--top", type=int, default=30, help="rows per profile listing")
    args = parser.parse_args()

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False)
    init_s = time.perf_counter() - t0
    home = tempfile.mkdtemp(prefix="lf-bench-ray-")

    cases = [  # (key, fn, steps)
        ("raw fan", raw_fan_out, FAN),
        ("raw chain", raw_chain, CHAIN),
        ("lf ray map", lambda: on_ray(fan_map, home), FAN),
        ("lf ray calls", lambda: on_ray(fan_calls, home), FAN),
        ("lf ray chain", lambda: on_ray(chain, home), CHAIN),
        ("lf ray map mem", lambda: on_ray_memory(fan_map, home), FAN),
        ("lf ray calls mem", lambda: on_ray_memory(fan_calls, home), FAN),
        ("lf ray chain mem", lambda: on_ray_memory(chain, home), CHAIN),
        ("lf local map", lambda: on_local(fan_map, home), FAN),
        ("lf local calls", lambda: on_local(fan_calls, home), FAN),
        ("lf local chain", lambda: on_local(chain, home), CHAIN),
    ]
    for _, fn, _ in cases:  # warm-up: start workers, import ledgerflow in them, create the ledger
        fn()
    samples: dict[str, list[float]] = {key: [] for key, _, _ in cases}
    for _ in range(args.repeats):
        for key, fn, _ in cases:
            t = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t)
    med = {key: statistics.median(s) for key, s in samples.items()}
    spread = {key: (min(s), max(s)) for key, s in samples.items()}

    def row(label: str, key: str, steps: int, base: str | None, target: float | None) -> str:
        t = med[key]
        lo, hi = spread[key]
        ratio = f"{t / med[base]:.2f}x" if base else "1.00x (baseline)"
        verdict = "" if target is None else ("met" if t / med[base] <= target else "**missed**")
        tgt = "" if target is None else f"≤ {target:g}x, {verdict}"
        return (f"| {label} | {steps} | {t * 1e3:.0f} ms ({lo * 1e3:.0f}–{hi * 1e3:.0f}) | "
                f"{t / steps * 1e3:.2f} ms | {ratio} | {tgt} |")

    lines = [
        "| workload | steps | time, median (min–max) | per step | vs raw Ray | target |",
        "|---|---|---|---|---|---|",
        row("raw Ray fan-out (submit all, get all)", "raw fan", FAN, None, None),
        row("Ledgerflow on Ray, fan-out as `map_task(inc, x=range(1000))`", "lf ray map", FAN, "raw fan", 1.3),
        row("Ledgerflow on Ray, fan-out as 1,000 task calls", "lf ray calls", FAN, "raw fan", 1.3),
        row("raw Ray chain (get each before the next)", "raw chain", CHAIN, None, None),
        row("Ledgerflow on Ray, chain of 200 steps", "lf ray chain", CHAIN, "raw chain", 1.3),
        row("Ledgerflow on Ray, ledger off (MemoryRecorder), fan-out as `map_task` (context)", "lf ray map mem",
            FAN, "raw fan", None),
        row("Ledgerflow on Ray, ledger off (MemoryRecorder), fan-out as task calls (context)", "lf ray calls mem",
            FAN, "raw fan", None),
        row("Ledgerflow on Ray, ledger off (MemoryRecorder), chain (context)", "lf ray chain mem", CHAIN, "raw chain",
            None),
        row("Ledgerflow local executor, fan-out as `map_task` (context)", "lf local map", FAN, "raw fan", None),
        row("Ledgerflow local executor, fan-out as task calls (context)", "lf local calls", FAN, "raw fan", None),
        row("Ledgerflow local executor, chain (context)", "lf local chain", CHAIN, "raw chain", None),
    ]
    table = "\n".join(lines)
    print(f"ray {ray.__version__}, ray.init(num_cpus=2) took {init_s:.1f} s; median of {args.repeats}\n")
    print(table)

    if args.profile:
        for label, fn in (("fan-out, map_task", lambda: on_ray(fan_map, home)),
                          ("fan-out, task calls", lambda: on_ray(fan_calls, home)),
                          ("chain", lambda: on_ray(chain, home))):
            print(profile(label, fn, args.top))

    verdicts = []
    for label, key, base, target in (("fan-out as map_task", "lf ray map", "raw fan", 1.3),
                                     ("fan-out as task calls", "lf ray calls", "raw fan", 1.3),
                                     ("chain", "lf ray chain", "raw chain", 1.3)):
        ratio = med[key] / med[base]
        verdicts.append(f"{label} {ratio:.2f}x (target {target:g}x: {'met' if ratio <= target else 'missed'})")
    verdict = "Targets with the ledger on: " + "; ".join(verdicts) + "."
    print("\n" + verdict)
    if args.write:
        report.write_section(SECTION, table + "\n\n" + verdict + "\n\n" + NOTES.format(
            version=ray.__version__, init=init_s, repeats=args.repeats))
    ray.shutdown()


NOTES = """\
Ray {version}, one local runtime (`ray.init(num_cpus=2, include_dashboard=False)`, {init:.1f} s to start)
shared by every row in one process; each row warmed up once, then the median of {repeats} runs,
interleaved. The Ledgerflow rows are whole `ledgerflow.run(wf, home=..., executor=RayExecutor())`
calls with the DuckDB ledger on (opening the ledger, the resource check, the run, the final flush).
Targets (issue 17): fan-out and chain within 1.3x of raw Ray (issue 4 asked 1.5x and 2x). On this 2-core machine the
driver, the raylet, the GCS and two workers share the cores, so every millisecond of driver CPU
(runner, ledger thread) is also taken from the workers; run-to-run spread is large (see min–max).

Profiling a first version (cProfile of the driver with `--profile`) found four costs; the first
three are fixed in the executor and runner measured above (first version: fan-out 2.52x, chain
3.08x):
- The task reached each Ray task as an ObjectRef from `ray.put`, resolved from the object store
  on every step (~1.5 ms per step in a chain). It now travels as cached cloudpickle bytes,
  unpickled once per worker.
- `map_task`: each finished element rescanned every element (O(n²)); now counters.
- `Resources.to_json()` per event, `.options(...)` per submit, `Task.fingerprint` per event:
  now computed once per task.
- Since then the ledger journals its events (a run never opens the file; ledger on and off now
  differ by less than the run-to-run spread), so what is left is Ledgerflow's per-step work on
  both sides (events, artifact digests, and since issue 16 each step's stdout and stderr capture
  in the worker) on a machine with no core to spare for it.

Issue 17 (targets: fan-out of 1,000 and chain of 200 within 1.3x of raw Ray). Three changes:
- The driver takes completions in batches (one `ray.wait` and one `ray.get` for every step done
  within 5 ms, where it waited over all flights once per step: 769 waits of ~0.7 ms each for a
  fan-out of 1,000 under cProfile). Fan-out 1.74-1.84x, chain 1.45x after this alone.
- A step's call crosses to the worker as one bytes object (the task's cached bytes, the call,
  its timeout, cloudpickled together by the driver) and its outcome comes back as one bytes
  object. Measured with no-op Ray tasks: Ray serialising the four arguments on its own cost
  0.08 ms a step more than one pre-pickled bytes argument, and an outcome returned as an object
  0.05 ms more than as bytes.
- A Ray worker keeps its stdout/stderr/logging capture installed between steps (taking it down
  reset the root logger's level, clearing every logger's cache, twice a step).
With all three, two runs of this bench: fan-out 1.40-1.54x (target **missed**), chain 1.10-1.19x
(met); before them, 1.74-1.84x and 1.45x.
Split of the remaining gap for the fan-out, measured with raw Ray tasks calling the worker side
directly: the worker side (`run_step`: call the task, conform and digest its output, capture its
streams) ~0.05 ms a step, and the driver's own work per step (resolve inputs, cache key, build
and pack the call, two events, progress) ~0.1 ms beside Ray's ~0.2 ms `remote()`; on 2 cores
shared by the driver, the raylet, the GCS and both workers, each of these is taken from the
workers.
"""


if __name__ == "__main__":
    main()
