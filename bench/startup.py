"""Start-up time of whole processes: `import ledgerflow` and the `lineage` CLI.

    python bench/startup.py            # prints a table; --write updates docs/benchmarks.md

Each command is run as a fresh process 10 times (after one untimed warm-up, so the figures
are for a warm page cache) and the median wall time is reported, with its ratio to
`python -c pass` measured in the same run. `lineage list` runs on an empty home and, when
/tmp/lb-big/home-1000 exists (the 1M-step ledger bench/ledger.py builds), on that one. A
100-step local workflow (a fresh home each time, so nothing is cached) is run as a whole
process too, against 100 plain calls and, when /tmp/peers exists (bench/cache.py), a
100-node Hamilton DAG, each a whole process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import write_section  # noqa: E402

RUNS = 10
BIG_HOME = Path("/tmp/lb-big/home-1000")
PEERS = Path("/tmp/peers/bin/python")  # flytekit and sf-hamilton, as bench/cache.py sets it up

# A 100-step chain as a whole process: each process records into a fresh home of its own.
WORKFLOW_100 = """
import sys, tempfile
from ledgerflow import run, task, workflow

@task
def inc(x: int) -> int:
    return x + 1

@workflow
def hundred(x: int = 0) -> int:
    for _ in range(100):
        x = inc(x=x)
    return x

assert run(hundred, home=tempfile.mkdtemp(prefix="lf-startup-run-"), progress=False).outputs == 100
"""

PLAIN_100 = """
def inc(x: int) -> int:
    return x + 1

x = 0
for _ in range(100):
    x = inc(x)
assert x == 100
"""

HAMILTON_100 = """
import sys, tempfile
from pathlib import Path
from hamilton import driver

where = Path(tempfile.mkdtemp(prefix="lf-startup-hamilton-"))
(where / "chain_nodes.py").write_text("def step_1(seed: int) -> int:\\n    return seed + 1\\n" + "".join(
    f"def step_{i}(step_{i - 1}: int) -> int:\\n    return step_{i - 1} + 1\\n" for i in range(2, 101)))
sys.path.insert(0, str(where))
import chain_nodes
dr = driver.Builder().with_modules(chain_nodes).build()
assert dr.execute(["step_100"], inputs={"seed": 0})["step_100"] == 100
"""


def lineage() -> list:
    """The `lineage` console script beside this interpreter, or the module when it is not installed."""
    script = Path(sys.executable).with_name("lineage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]


def median_s(cmd: list, env: dict) -> float:
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)  # warm-up, untimed
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "LEDGERFLOW_HOME"}
    env["HAMILTON_TELEMETRY_ENABLED"] = "false"  # (no network call from the Hamilton case)
    empty = Path(tempfile.mkdtemp(prefix="lf-startup-"))
    try:
        cases = [
            ("`python -c pass`", [sys.executable, "-c", "pass"], None),
            ('`python -c "import ledgerflow"`', [sys.executable, "-c", "import ledgerflow"], None),
            ("`lineage --help`", [*lineage(), "--help"], None),
            ("`lineage run --help`", [*lineage(), "run", "--help"], None),
            ("`lineage list`, empty home", [*lineage(), "--home", str(empty / "home"), "list"], None),
        ]
        if BIG_HOME.exists():
            cases.append(("`lineage list`, 1M-step ledger", [*lineage(), "--home", str(BIG_HOME), "list"], 300))
        cases.append(("100 calls in plain Python, whole process", [sys.executable, "-c", PLAIN_100], None))
        cases.append(("100-step local workflow, ledger on, fresh home, whole process",
                      [sys.executable, "-c", WORKFLOW_100], 800))
        if PEERS.exists():
            cases.append(("100-node Hamilton DAG (no cache), whole process", [str(PEERS), "-c", HAMILTON_100], None))
        results = [(name, median_s(cmd, env)) for name, cmd, _ in cases]
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    base = results[0][1]
    rows = ["| command | median of 10 | vs `python -c pass` |", "|---|---|---|"]
    rows += [f"| {name} | {s * 1000:.0f} ms | {s / base:.1f}x |" for name, s in results]
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_section("Start-up (bench/startup.py)", table + "\n\nTargets: `lineage --help` and `lineage <verb> --help` "
                      "under 150 ms, `lineage list` on the 1M-step ledger under 300 ms, a 100-step local workflow "
                      "with the ledger on under 800 ms (whole processes). "
                      "Median of 10 fresh processes after one warm-up; ratios against `python -c pass` "
                      "in the same run. `import ledgerflow` and `--help` import neither duckdb, pyarrow "
                      "nor ray (tests/app/test_startup.py).")


if __name__ == "__main__":
    main()
