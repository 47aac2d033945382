"""Replay in a process that holds many modules (a notebook with pandas and scikit-learn).

    python bench/replay.py [--repeat 7]

A replay sets aside every user module the process holds while it imports the recorded code,
so its fixed cost grows with the number of modules loaded. This measures, in one process
with pandas, pyarrow, polars, scipy and scikit-learn imported, a one-step workflow:

- baseline: `run(wf, cache=False)` (what a replay does besides loading the snapshot and
  comparing), median of `--repeat`;
- `replay(id)`: the first in the process, then the median of `--repeat` more;

and prints the ratios replay/run. No timing is asserted anywhere; results go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import pandas, polars, pyarrow, scipy.stats, sklearn.linear_model  # noqa: E401,F401  (the modules a notebook holds)

    from ledgerflow import replay, run

    folder = Path(tempfile.mkdtemp())
    (folder / "one_step.py").write_text(textwrap.dedent("""
        from ledgerflow import task, workflow

        @task
        def add_one(n: int) -> int:
            return n + 1

        @workflow
        def wf(n: int = 1) -> int:
            return add_one(n=n)
    """))
    sys.path.insert(0, str(folder))
    import one_step

    home = folder / "home"
    ex = run(one_step.wf, {"n": 2}, home=home, progress=False)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    first = timed(lambda: replay(ex.id, home=home))
    runs = [timed(lambda: run(one_step.wf, {"n": 2}, home=home, progress=False, cache=False))
            for _ in range(args.repeat)]
    replays = [timed(lambda: replay(ex.id, home=home)) for _ in range(args.repeat)]
    base, again = statistics.median(runs), statistics.median(replays)
    print(f"modules loaded: {len(sys.modules)}")
    print(f"run, cache off (baseline): {base * 1000:.0f} ms")
    print(f"first replay in the process: {first * 1000:.0f} ms ({first / base:.1f}x the run)")
    print(f"replay, median of {args.repeat}: {again * 1000:.0f} ms ({again / base:.1f}x the run)")


if __name__ == "__main__":
    main()
