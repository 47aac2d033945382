"""Load figures too big for the test suite (tests/system/test_load.py runs the smaller versions).

    python bench/load.py            # all
    python bench/load.py bigfile    # a 20 GiB file hashed and stored: peak RSS and throughput
    python bench/load.py ray        # 10,001 steps on Ray (local runtime)
    python bench/load.py local      # 10,001 steps on the local executor

The big file is sparse except for 1 MiB of random bytes every GiB, so making it costs no disk;
storing it writes 20 GiB into a temporary store (deleted afterwards), so the figure includes
the write to this machine's disk. Peak RSS is VmHWM of a child that imports only the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ray.py would shadow the ray package: take this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests"))

PUT = """
import sys, time
from ledgerflow.store import Store

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

baseline = peak_kib()
t0 = time.perf_counter()
digest, size = Store.open(sys.argv[2]).put_file(sys.argv[1])
print(digest, size, baseline, peak_kib(), time.perf_counter() - t0)
"""


def bigfile(gib: int = 20) -> None:
    with tempfile.TemporaryDirectory(prefix="lf-load-", dir=os.environ.get("LF_BENCH_DIR")) as tmp:
        path = Path(tmp) / "big.bin"
        size = gib << 30
        with open(path, "wb") as f:
            for i in range(gib):
                f.seek(i << 30)
                f.write(os.urandom(1 << 20))
            f.truncate(size)
        out = subprocess.run([sys.executable, "-c", PUT, str(path), str(Path(tmp) / "store")],
                             capture_output=True, text=True, check=True)
        digest, stored, base, peak, took = out.stdout.split()
        assert int(stored) == size
        took = float(took)
        print(f"{gib} GiB file hashed and stored: {took:.1f} s, {size / took / 2**30:.2f} GiB/s; "
              f"peak RSS {int(peak) / 1024:.0f} MiB ({int(base) / 1024:.0f} MiB after the import, "
              f"+{(int(peak) - int(base)) / 1024:.0f} MiB storing); {digest[:19]}…")


def steps(executor: str) -> None:
    import ray

    from ledgerflow import Ledger, run
    from test_load import chains

    if executor == "ray":
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        wf = chains(100, 100)
        with tempfile.TemporaryDirectory(prefix="lf-load-") as home:
            t0 = time.monotonic()
            ex = run(wf, {"start": 0}, home=home, executor=executor, progress=False)
            took = time.monotonic() - t0
            assert ex.status == "succeeded" and ex.outputs == 100 * 100
            t1 = time.monotonic()
            report = Ledger(home).verify()
            assert report.ok
            print(f"10,001 steps on {executor}: {took:.1f} s ({took / 10_001 * 1000:.2f} ms a step), "
                  f"ledger {report.rows} rows, verified in {time.monotonic() - t1:.1f} s")
    finally:
        if executor == "ray":
            ray.shutdown()


if __name__ == "__main__":
    which = sys.argv[1:] or ["local", "ray", "bigfile"]
    for name in which:
        if name == "bigfile":
            bigfile()
        else:
            steps(name)
