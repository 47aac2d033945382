"""Hashing throughput and memory: digest_bytes on 1 GiB in memory, digest_file on a 2 GiB file.

Run by hand: `python bench/hashing.py`. Prints a table and writes the figures
into the "## Hashing (bench/hashing.py)" section of docs/benchmarks.md.

Each file measurement runs in a fresh subprocess, so its peak RSS (VmHWM) is
that of the digest alone, not of this driver; the plain read of the same file
runs the same way and is the baseline. The file is read once first so both
come from the page cache: this measures the hashing pipeline, not the disk.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledgerflow.store.digest import digest_bytes  # noqa: E402

GiB = 1 << 30
FILE_SIZE = 2 * GiB
REPEATS = 5
SECTION = "## Hashing (bench/hashing.py)"

# Children: each prints {"seconds": ..., "bytes": ..., "vmhwm_kib": ...}.
_CHILD = r"""
import json, sys, time, types
# Load the digest module without running ledgerflow/__init__.py, which imports
# the whole engine (pyarrow, ...): the peak RSS measured is the hashing's own.
for name, sub in (("ledgerflow", "ledgerflow"), ("ledgerflow.store", "ledgerflow/store")):
    pkg = types.ModuleType(name); pkg.__path__ = [{root!r} + "/" + sub]; sys.modules[name] = pkg
from ledgerflow.store.digest import digest_file
def vmhwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
def plain(path, size):
    buf = bytearray(size); n = 0
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(buf):
            n += k
    return n
mode, path = sys.argv[1], sys.argv[2]
def once():
    if mode == "digest_file":
        return digest_file(path)[1]
    if mode == "idle":
        return 0
    return plain(path, int(mode.removeprefix("read")))
once()  # the first pass in a fresh process runs ~2x slower here, for plain reads too
t = time.perf_counter()
n = once()
print(json.dumps({{"seconds": time.perf_counter() - t, "bytes": n, "vmhwm_kib": vmhwm()}}))
"""


def child(mode: str, path: str) -> dict:
    code = _CHILD.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, mode, path], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def in_memory() -> float:
    data = os.urandom(64 << 20) * (GiB // (64 << 20))
    digest_bytes(data)  # an untimed pass, as in the file children
    rates = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        digest_bytes(data)
        rates.append(GiB / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def on_file() -> dict:
    with tempfile.TemporaryDirectory(prefix="lf-bench-") as tmp:
        path = os.path.join(tmp, "2GiB.bin")
        block = os.urandom(64 << 20)
        with open(path, "wb") as f:
            for _ in range(FILE_SIZE // len(block)):
                f.write(block)
        child("read1048576", path)  # warm the page cache
        modes = ["read1048576", "read16777216", "digest_file", "idle"]
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(REPEATS):  # interleaved, so noise from neighbours hits all alike
            for m in modes:
                runs[m].append(child(m, path))
    result = {}
    for m, rs in runs.items():
        result[m] = {
            "gbps": statistics.median(r["bytes"] / r["seconds"] / 1e9 for r in rs) if m != "idle" else None,
            "peak_mib": max(r["vmhwm_kib"] for r in rs) / 1024,
        }
    return result


def main() -> None:
    f = on_file()
    mem = in_memory()
    read1, read16, dig, idle = f["read1048576"], f["read16777216"], f["digest_file"], f["idle"]
    rows = [
        ("digest_bytes, 1 GiB in memory", f"{mem:.2f}", "", ""),
        ("plain read, 2 GiB file, 1 MiB buffer (baseline)", f"{read1['gbps']:.2f}", "1.00", f"{read1['peak_mib']:.0f}"),
        ("plain read, 2 GiB file, 16 MiB buffer", f"{read16['gbps']:.2f}", f"{read16['gbps'] / read1['gbps']:.2f}", f"{read16['peak_mib']:.0f}"),
        ("digest_file, 2 GiB file", f"{dig['gbps']:.2f}", f"{dig['gbps'] / read1['gbps']:.2f}", f"{dig['peak_mib']:.0f}"),
        ("idle: python + blake3 + ledgerflow.store.digest", "", "", f"{idle['peak_mib']:.0f}"),
    ]
    header = ("measurement", "GB/s (median)", "vs plain read", "peak RSS MiB")
    table = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    print("\n".join(table))
    ceiling = dig["gbps"] / mem
    notes = [
        SECTION,
        "",
        f"Run {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; median of {REPEATS} interleaved runs, each in a fresh "
        "subprocess that makes one untimed pass and times the second (on this VM the first pass in a "
        "fresh process is ~2x slower, for plain reads as much as for hashing); the file is in the page cache.",
        "",
        *table,
        "",
        f"- digest_file reaches {dig['gbps'] / read1['gbps']:.0%} of the fastest plain read and "
        f"{ceiling:.0%} of what blake3 hashes from memory on this machine.",
        f"- Target missed, and not reachable here: blake3 on both cores hashes {mem:.1f} GB/s from memory, "
        f"{mem / read1['gbps']:.0%} of a cached plain read ({read1['gbps']:.1f} GB/s), so no pipeline can "
        "hash a cached file at 90% of read speed on this machine. The reader thread overlaps the read "
        "(a memcpy from the page cache) with hashing; what is lost against the in-memory figure is that "
        "memcpy competing with blake3's two threads for the two cores. With a cold cache, a disk slower "
        f"than {dig['gbps']:.1f} GB/s would be the limit rather than hashing (not measured here).",
        f"- Peak RSS of the digest_file process: {dig['peak_mib']:.0f} MiB, "
        f"{dig['peak_mib'] - idle['peak_mib']:.0f} MiB above an idle interpreter (target < 64 MiB). "
        "The children import only ledgerflow.store.digest; `import ledgerflow` (the whole engine, "
        "pyarrow included) alone peaks near 64 MiB and is not counted here.",
        "- Timings on this VM vary by up to 2x between runs; these are the medians of this run.",
    ]
    write_section("\n".join(notes) + "\n")


def write_section(text: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    doc.parent.mkdir(exist_ok=True)
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    doc.write_text(new)


if __name__ == "__main__":
    main()
