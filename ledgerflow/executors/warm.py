"""A warm local Ray runtime, kept between runs: `lineage ray up` / `lineage ray down`.

Starting Ray costs seconds a run. `up` starts one runtime for this home in a process of its own
(`python -m ledgerflow.executors.warm`), records where it is in `<home>/ray.json` (its address,
the holder's pid and process-start token) and prints the address; runs join it on purpose, with
`RAY_ADDRESS` (or `RayExecutor(address=...)`). `down` stops that holder by its pid, after checking
it is still the process `up` started; the holder shuts its runtime down (`ray.shutdown`), so no
other Ray runtime on the host is touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledgerflow.errors import RayClusterError
from ledgerflow.home import Home

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def _record(home: Home) -> Path:
    return home.path / "ray.json"


def status(home: Home) -> dict | None:
    """The warm runtime of `home` ({"address", "pid", "start", "num_cpus", ...}) if it is up, else None."""
    from ledgerflow.liveness import is_alive, this_host

    try:
        found = json.loads(_record(home).read_text())
    except (OSError, ValueError):
        return None
    if is_alive(this_host(), found.get("pid"), found.get("start")) is not True:
        return None
    return found


def is_warm_address(address: str) -> bool:
    """Whether `address` is the warm runtime of the home in effect (it uses token authentication)."""
    found = status(Home.resolve())
    return found is not None and found.get("address") == address


def up(home: Home, *, num_cpus: int | None = None, num_gpus: int | None = None) -> dict:
    """Start the warm runtime of `home` (or find it running); its record."""
    running = status(home)
    if running is not None:
        return running
    home.path.mkdir(parents=True, exist_ok=True)
    _record(home).unlink(missing_ok=True)
    args = [sys.executable, "-m", "ledgerflow.executors.warm", str(home.path)]
    if num_cpus is not None:
        args += ["--num-cpus", str(num_cpus)]
    if num_gpus is not None:
        args += ["--num-gpus", str(num_gpus)]
    log = open(home.path / "ray.log", "ab")
    # A session of its own: the terminal's Ctrl-C and hang-up do not reach it.
    # Its raylet starts workers for each driver that joins as the driver registers (Ray's workers
    # belong to one job: without this, every run waits for fresh workers to boot).
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token"),
           "RAY_enable_worker_prestart": os.environ.get("RAY_enable_worker_prestart", "1")}
    holder = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                              env=env)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = status(home)
        if found is not None:
            return found
        if holder.poll() is not None:
            raise RayClusterError(f"the warm Ray runtime did not start (exit {holder.returncode}); see "
                                  f"{home.path / 'ray.log'}")
        time.sleep(0.1)
    holder.kill()
    raise RayClusterError(f"the warm Ray runtime did not start within {START_TIMEOUT_S:g} s; see "
                          f"{home.path / 'ray.log'}")


def down(home: Home) -> dict | None:
    """Stop the warm runtime of `home`; its record, or None if none was up."""
    found = status(home)
    if found is None:
        _record(home).unlink(missing_ok=True)
        return None
    os.kill(found["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while status(home) is not None:
        if time.monotonic() > deadline:
            raise RayClusterError(f"the warm Ray runtime (pid {found['pid']}) did not stop within "
                                  f"{STOP_TIMEOUT_S:g} s")
        time.sleep(0.1)
    _record(home).unlink(missing_ok=True)
    return found


def _hold(home_path: str, num_cpus: int | None, num_gpus: int | None) -> None:
    """The holder process: start the runtime, record it, and keep it until SIGTERM."""
    import ray

    from ledgerflow.liveness import process_start

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    ray.init(address="local", include_dashboard=False, num_cpus=num_cpus, num_gpus=num_gpus,
             log_to_driver=False)
    record = {"address": ray.get_runtime_context().gcs_address, "pid": os.getpid(),
              "start": process_start(os.getpid()), "num_cpus": ray.cluster_resources().get("CPU"),
              "num_gpus": ray.cluster_resources().get("GPU", 0)}
    path = Path(home_path) / "ray.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # whole or absent: `up` never reads half a record
    try:
        while not stop:
            time.sleep(0.2)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Hold a warm local Ray runtime for a Ledgerflow home.")
    parser.add_argument("home")
    parser.add_argument("--num-cpus", type=int)
    parser.add_argument("--num-gpus", type=int)
    a = parser.parse_args()
    _hold(a.home, a.num_cpus, a.num_gpus)
