"""`lineage run`, `replay`, `diff`, `metrics`, `compare`, as a user types them."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LINEAGE = Path(sys.executable).with_name("lineage")

PIPELINE = textwrap.dedent('''
    import random
    from ledgerflow import task, workflow, log_metric

    @task(cache=True)
    def make(n: int, seed: int) -> list[float]:
        rng = random.Random(seed) if seed >= 0 else random.Random()
        return [rng.random() for _ in range(n)]

    @task(cache=True)
    def score(xs: list[float], scale: float) -> float:
        value = sum(xs) * scale
        log_metric("score", value)
        return value

    @workflow
    def pipeline(n: int = 3, seed: int = 1, scale: float = 1.0) -> float:
        return score(xs=make(n=n, seed=seed), scale=scale)

    @task
    def boom(n: int) -> int:
        raise ValueError(f"cannot handle {n}")

    @workflow
    def broken(n: int = 1) -> int:
        return boom(n=n)
''')


@pytest.fixture
def cli(tmp_path):
    home = tmp_path / "home"
    script = tmp_path / "flow.py"
    script.write_text(PIPELINE)
    env = {**os.environ, "LEDGERFLOW_HOME": str(home)}
    env.pop("RAY_ADDRESS", None)

    def lineage(*args, ok=True):
        cmd = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
        out = subprocess.run(cmd + list(args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        if ok:
            assert out.returncode == 0, out.stderr
        return out

    lineage.script = script
    return lineage


@pytest.mark.slow
def test_run_prints_id_and_outputs_and_caches(cli):
    first = json.loads(cli("run", "flow.py:pipeline", "-p", "n=4", "-p", "scale=2", "--json").stdout)
    assert first["status"] == "succeeded" and isinstance(first["outputs"], float)
    second = cli("run", "flow.py:pipeline", "-p", "n=4", "-p", "scale=2")
    assert "succeeded" in second.stdout and "cached" in second.stderr  # progress lines on stderr
    shown = json.loads(cli("show", first["id"], "--json").stdout)
    assert [s["status"] for s in shown["steps"]] == ["succeeded", "succeeded"]
    assert "cache hit" in cli("show", second.stdout.split()[1].rstrip(":")).stdout
    no_cache = json.loads(cli("run", "flow.py:pipeline", "-p", "n=4", "-p", "scale=2", "--no-cache", "--json").stdout)
    assert all(s["status"] == "succeeded" for s in json.loads(cli("show", no_cache["id"], "--json").stdout)["steps"])


@pytest.mark.parametrize("args,message", [
    (["flow.py:pipeline", "-p", "n=three"], "parameter 'n' is int, and 'three' is not an int"),
    (["flow.py:pipeline", "-p", "m=1"], "has no parameter 'm'; its parameters are: n: int, seed: int, scale: float"),
    (["flow.py:pipeline", "-p", "n"], "write parameters as name=value"),
    (["flow.py:nothing"], "no 'nothing' in flow; workflows there: broken, pipeline"),
    (["missing.py:pipeline"], "missing.py: no such file"),
    (["flow.py"], "is not FILE.py:WORKFLOW or MODULE:WORKFLOW"),
])
@pytest.mark.slow
def test_run_bad_input_is_one_line(cli, args, message):
    out = cli("run", *args, ok=False)
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_failed_run_exits_1_naming_the_step(cli):
    out = cli("run", "flow.py:broken", ok=False)
    assert out.returncode == 1 and "step 'boom'" in out.stderr and "ValueError: cannot handle 1" in out.stderr
    assert "Traceback" not in out.stderr.split("lineage: error")[-1]
    (ex,) = json.loads(cli("list", "--json").stdout)
    assert ex["status"] == "failed"


@pytest.mark.slow
def test_replay_and_diff(cli):
    seeded = json.loads(cli("run", "flow.py:pipeline", "--json").stdout)["id"]
    out = cli("replay", seeded)
    assert f"replayed {seeded} as" in out.stdout and "identical (2 steps, 2 artifacts)" in out.stdout
    unseeded = json.loads(cli("run", "flow.py:pipeline", "-p", "seed=-1", "--json").stdout)["id"]
    diverged = cli("replay", unseeded, "--json", ok=False)
    assert diverged.returncode == 1
    verdict = json.loads(diverged.stdout)
    assert verdict["verdict"] == "diverged" and verdict["differences"][0]["step"] == "make"

    cli.script.write_text(PIPELINE.replace("value = sum(xs) * scale", "value = sum(xs) * scale * 2"))
    changed = json.loads(cli("run", "flow.py:pipeline", "--json").stdout)["id"]
    diff = json.loads(cli("diff", seeded, changed, "--json").stdout)
    assert "-    value = sum(xs) * scale\n" in diff["code"] and "+    value = sum(xs) * scale * 2\n" in diff["code"]
    assert [d["step"] for d in diff["outputs"]] == ["score"]  # make is the same, score differs
    assert diff["parameters"] == {}
    shown = re.search(r"score return: (\S+) -> (\S+)", cli("diff", seeded, changed).stdout)
    assert shown and float(shown.group(2)) == 2 * float(shown.group(1))  # the values, not their digests
    text = cli("diff", seeded, unseeded).stdout
    assert "seed: 1 -> -1" in text and "code: identical" in text

    # the old execution still replays identically from its own snapshot, after the edit
    assert "identical" in cli("replay", seeded).stdout


@pytest.mark.slow
def test_metrics_and_compare(cli):
    a = json.loads(cli("run", "flow.py:pipeline", "-p", "scale=1", "--json").stdout)["id"]
    b = json.loads(cli("run", "flow.py:pipeline", "-p", "scale=3", "--json").stdout)["id"]
    metrics = json.loads(cli("metrics", a, "--json").stdout)["metrics"]
    assert [(m["step"], m["metric"]) for m in metrics] == [("score", "score")]
    compared = json.loads(cli("compare", a, b, "--json").stdout)
    assert compared["parameters"]["scale"] == {a: 1.0, b: 3.0}
    values = compared["metrics"][0]["values"]
    assert values[b] == pytest.approx(3 * values[a])
    assert "param scale" in cli("compare", a, b).stdout
    out = cli("metrics", "01NOSUCH", ok=False)
    assert out.returncode == 2 and "no execution" in out.stderr


@pytest.mark.slow
def test_run_by_module_name_from_the_current_folder(cli):
    out = json.loads(cli("run", "flow:pipeline", "-p", "n=2", "--json").stdout)
    assert out["status"] == "succeeded"
    assert json.loads(cli("list", "--json").stdout)[0]["workflow"] == "flow:pipeline"
    bad = cli("run", "no_such_module:pipeline", ok=False)
    assert bad.returncode == 2 and "cannot import module 'no_such_module'" in bad.stderr
