"""Per-step overhead of the local executor, against calling the same functions directly.

    python bench/overhead.py            # prints a table; --write updates docs/benchmarks.md

A chain of N trivial steps (each waits on the last) and a fan-out of N independent ones,
run in-process with an in-memory recorder (the engine alone) and with the DuckDB ledger.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import write_section  # noqa: E402

from ledgerflow import MemoryRecorder, run, task, workflow  # noqa: E402

N = 1000


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def chain(x: int = 0) -> int:
    for _ in range(N):
        x = inc(x=x)
    return x


@workflow
def fan_out(x: int = 0) -> int:
    return total(xs=[inc(x=i) for i in range(N)])


def direct_chain() -> int:
    x = 0
    for _ in range(N):
        x = inc.fn(x)
    return x


def direct_fan_out() -> int:
    return total.fn([inc.fn(i) for i in range(N)])


def timed(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="lf-bench-")
    rows = []
    for label, wf, direct, steps in (("chain", chain, direct_chain, N), ("fan-out", fan_out, direct_fan_out, N + 1)):
        base = timed(direct, args.repeats)
        mem = timed(lambda: run(wf, home=home, recorder=MemoryRecorder(), progress=False), args.repeats)
        ledger = timed(lambda: run(wf, home=home, cache=False, progress=False), args.repeats)
        rows.append((label, steps, base, mem, ledger))
    lines = ["| workload | steps | direct calls | engine (memory recorder) | engine + ledger | "
             "overhead / step, engine | overhead / step, with ledger |", "|---|---|---|---|---|---|---|"]
    for label, steps, base, mem, ledger in rows:
        lines.append(f"| {label} | {steps} | {base * 1e3:.2f} ms | {mem * 1e3:.1f} ms ({mem / base:.0f}x) | "
                     f"{ledger * 1e3:.1f} ms ({ledger / base:.0f}x) | {(mem - base) / steps * 1e6:.0f} µs | "
                     f"{(ledger - base) / steps * 1e6:.0f} µs |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("Local executor overhead (bench/overhead.py)", table + "\n\nTarget: under 200 µs per step "
                      "(engine). Median of %d runs; the ratios are against calling the same functions "
                      "directly in the same process run. With the ledger, a run journals its events "
                      "(docs/ledger.md, \"Journals\"); nobody reads between the runs, so every few runs "
                      "one starts by moving the 4 MiB backlog into the file, as a real home would." % args.repeats)


if __name__ == "__main__":
    main()
