"""Which Ray runtime a run uses (issue 17, point 1): without an address, a private local runtime,
whatever Ray's record of the host's "current cluster" says; an address joins that cluster on
purpose and the run records which; an unreachable one fails at once with one line; a warm
runtime (`lineage ray up` / `down`) is joined explicitly and stopped by its own pid.

Each test runs in a subprocess with a private RAY_TMPDIR, so the record it writes is its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

LINEAGE = Path(sys.executable).with_name("lineage")

FLOW = textwrap.dedent('''
    from ledgerflow import task, workflow

    @task
    def inc(n: int) -> int:
        return n + 1

    @workflow
    def one(n: int = 1) -> int:
        return inc(n=n)
''')


@pytest.fixture
def place(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    # Ray puts unix sockets under its temp folder: a short path (sockets allow ~107 bytes).
    raytmp = Path(tempfile.mkdtemp(prefix="lfray", dir="/tmp"))
    (tmp_path / "raytmp").symlink_to(raytmp)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "LEDGERFLOW_HOME")}
    env.update(RAY_TMPDIR=str(raytmp), LEDGERFLOW_HOME=str(tmp_path / "home"))
    yield tmp_path, env
    shutil.rmtree(raytmp, ignore_errors=True)


def lineage(place, *args, env=None, timeout=180):
    tmp_path, base = place
    cmd = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return subprocess.run(cmd + list(args), cwd=tmp_path, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def where(place) -> str:
    shown = json.loads(lineage(place, "show", "latest", "--json").stdout)
    return shown["environment"]["executor_where"]


def test_a_stale_current_cluster_record_does_not_touch_a_run_without_address(place):
    tmp_path, _ = place
    (tmp_path / "raytmp" / "ray_current_cluster").write_text("127.0.0.1:9")  # a cluster long gone
    out = lineage(place, "run", "flow.py:one", "--executor", "ray", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outputs"] == 2
    assert where(place) == "a private local Ray runtime"
    assert "executor=ray (a private local Ray runtime)" in lineage(place, "show", "latest").stdout
    assert "Token authentication is enabled" not in out.stderr  # set the documented way: no warning


def test_an_unreachable_address_fails_at_once_with_one_line(place):
    for address in ("127.0.0.1:9", "ray://127.0.0.1:9"):
        out = lineage(place, "run", "flow.py:one", "--executor", "ray", env={"RAY_ADDRESS": address}, timeout=60)
        assert out.returncode == 1
        assert out.stderr.count("\n") == 1 and "cannot reach the Ray cluster at" in out.stderr
        assert address in out.stderr


def test_a_warm_runtime_is_joined_on_purpose_and_stopped_by_its_pid(place):
    tmp_path, _ = place
    up = lineage(place, "ray", "up", "--num-cpus", "2", "--json")
    assert up.returncode == 0, up.stderr
    record = json.loads(up.stdout)
    try:
        address = record["address"]
        assert lineage(place, "ray", "status").stdout.startswith(f"up at {address}")
        joined = lineage(place, "run", "flow.py:one", "--executor", "ray", env={"RAY_ADDRESS": address})
        assert joined.returncode == 0, joined.stderr
        assert where(place) == f"the Ray cluster at {address} (from RAY_ADDRESS)"
        # `auto` joins the cluster Ray's record names (`ray start` writes it; here the test does)
        (tmp_path / "raytmp" / "ray_current_cluster").write_text(address)
        auto = lineage(place, "run", "flow.py:one", "-p", "n=5", "--executor", "ray", env={"RAY_ADDRESS": "auto"})
        assert auto.returncode == 0, auto.stderr
        assert where(place) == "the Ray cluster at auto (from RAY_ADDRESS)"
    finally:
        down = lineage(place, "ray", "down")
    assert down.returncode == 0 and f"stopped the warm Ray runtime at {address}" in down.stdout
    from ledgerflow.liveness import is_alive, this_host

    assert is_alive(this_host(), record["pid"], record["start"]) is False
    assert lineage(place, "ray", "status").returncode == 1
