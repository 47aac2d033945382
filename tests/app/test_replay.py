"""Replay by id: identical, diverged, failed, could not replay; from the recorded code snapshot."""

import textwrap
import uuid

import pytest

from ledgerflow import File, Ledger, replay, run
from ledgerflow.engine import environment
from ledgerflow.engine.loading import import_file
from ledgerflow.errors import RefError
from ledgerflow.store import Store

PIPELINE = '''
import os, random
from ledgerflow import task, workflow, File
if os.environ.get("BREAK_IMPORT"):
    import a_package_that_is_not_installed

@task
def draw(n: int, seed: int) -> list[float]:
    rng = random.Random(seed) if seed >= 0 else random.Random()
    return [rng.random() for _ in range(n)]

@task
def total(xs: list[float]) -> float:
    return sum(xs) * SCALE

@task
def label(x: float) -> str:
    return f"{x:.6f}"

SCALE = 1.0

@workflow
def pipeline(n: int = 5, seed: int = -1) -> str:
    return label(x=total(xs=draw(n=n, seed=seed)))

@task
def size(f: File) -> int:
    return len(f.read_bytes())

@workflow
def with_file(f: File) -> int:
    return size(f=f)
'''


def load(tmp_path, source=PIPELINE):
    path = tmp_path / f"pipe_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(source))
    return import_file(path), path


@pytest.mark.slow
def test_seeded_is_identical_and_linked(home, tmp_path):
    mod, _ = load(tmp_path)
    ex = run(mod.pipeline, {"seed": 42})
    r = replay(ex.id)
    assert r.verdict == "identical" and r.identical and r.differences == ()
    assert r.steps == 3 and r.artifacts == 3 and r.id != ex.id
    assert Ledger(home).execution(r.id).summary.replay_of == ex.id
    again = replay(r.id)  # replaying a replay works
    assert again.identical and Ledger(home).execution(again.id).summary.replay_of == r.id
    assert "identical (3 steps, 3 artifacts)" in r.summary()
    # The record links a replay to its original by provenance: each parameter came from the
    # original's, so upstream of the replay's steps reaches the execution it replays.
    ledger = Ledger(home)
    params = {b.name: (b.source, b.how) for b in ledger.execution(r.id).inputs}
    assert params == {"n": (f"{ex.id}:@params.n", "replay"), "seed": (f"{ex.id}:@params.seed", "replay")}
    up = ledger.upstream(f"{again.id}:label")
    assert {ex.id, r.id, again.id} <= {n.ref for n in up.of_kind("execution")}


@pytest.mark.slow
def test_unseeded_diverges_at_the_first_step(home, tmp_path):
    mod, _ = load(tmp_path)
    ex = run(mod.pipeline)
    r = replay(ex.id)
    assert r.verdict == "diverged" and not r.identical
    first = r.first_divergence
    assert first.step == "draw" and first.original != first.replayed and first.original.startswith("blake3:")
    assert [d.step for d in r.differences] == ["draw", "total", "label"]


@pytest.mark.slow
def test_replay_uses_the_recorded_code(home, tmp_path):
    mod, path = load(tmp_path)
    ex = run(mod.pipeline, {"seed": 1})
    path.write_text(path.read_text().replace("SCALE = 1.0", "SCALE = 2.0"))
    today, _ = load(tmp_path, path.read_text())
    assert run(today.pipeline, {"seed": 1}).outputs != ex.outputs  # today's code gives another result
    r = replay(ex.id)
    assert r.identical, r.summary()


def test_could_not_replay_missing_input(home, tmp_path):
    mod, _ = load(tmp_path)
    data = tmp_path / "data.bin"
    data.write_bytes(b"12345")
    f = File.from_path(data)
    ex = run(mod.with_file, {"f": f})
    assert ex.outputs == 5
    store = Store.open(home / "store")
    obj = store.local_path(f.digest)
    obj.chmod(0o644)
    obj.unlink()
    r = replay(ex.id)
    assert r.verdict == "could not replay" and r.id is None
    assert f.digest in r.reason and "missing from the store" in r.reason


@pytest.mark.slow
def test_could_not_replay_unimportable_code(home, tmp_path, monkeypatch):
    mod, _ = load(tmp_path)
    ex = run(mod.pipeline, {"seed": 3})
    monkeypatch.setenv("BREAK_IMPORT", "1")
    r = replay(ex.id)
    assert r.verdict == "could not replay" and "a_package_that_is_not_installed" in r.reason


@pytest.mark.slow
def test_environment_changes_are_reported(home, tmp_path, monkeypatch):
    mod, _ = load(tmp_path)
    ex = run(mod.pipeline, {"seed": 3})
    real = dict(environment.capture()["packages"])
    real["pyarrow"] = "0.0.1"
    real.pop("duckdb")
    real["brand-new"] = "1.0"
    monkeypatch.setattr(environment, "_packages", lambda: tuple(sorted(real.items())))
    changes = replay(ex.id).environment_changes
    assert any(c.startswith("package pyarrow") and "-> 0.0.1" in c for c in changes)
    assert "package brand-new 1.0 added" in changes and any("duckdb" in c and "removed" in c for c in changes)


def test_unknown_id(home, tmp_path):
    mod, _ = load(tmp_path)
    run(mod.pipeline, {"seed": 3})
    with pytest.raises(RefError):
        replay("01NOPE")


@pytest.mark.slow
def test_a_workflow_typed_at_a_prompt_runs_caches_and_says_why_it_cannot_replay(tmp_path):
    import subprocess
    import sys

    script = textwrap.dedent("""
        from ledgerflow import task, workflow, run, replay
        @task(cache=True)
        def inc(x: int) -> int:
            return x + 1
        @workflow
        def wf(x: int = 1) -> int:
            return inc(x=inc(x=x))
        ex = run(wf)
        print(ex.outputs, run(wf).steps["inc"].status)
        print(replay(ex.id).summary())
    """)
    out = subprocess.run([sys.executable, "-"], input=script, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "3 cached"
    assert "could not replay" in second and "interactive session or a notebook" in second


HELPER_V1 = '''
FACTOR = 2

def compute(x):
    return x * FACTOR
'''

USES_HELPER = '''
import helper_{tag} as helper
from pkg_{tag}.sub import offset
from ledgerflow import task, workflow

@task
def scale(x: int) -> int:
    return helper.compute(x) + helper.FACTOR + offset(x)

@workflow
def flow(x: int = 5) -> int:
    return scale(x=x)
'''


def write_helper_code(tmp_path):
    """A workflow module using a helper module and a package's sub-module, in tmp_path/code."""
    tag = uuid.uuid4().hex[:8]
    code = tmp_path / "code"
    (code / f"pkg_{tag}").mkdir(parents=True)
    (code / f"helper_{tag}.py").write_text(HELPER_V1)
    (code / f"pkg_{tag}" / "__init__.py").write_text("")
    (code / f"pkg_{tag}" / "sub.py").write_text("def offset(x):\n    return 100\n")
    (code / f"flow_{tag}.py").write_text(USES_HELPER.format(tag=tag))
    return code, tag


@pytest.mark.slow
def test_replay_of_helper_modules_imports_only_the_snapshot(home, tmp_path, monkeypatch):
    """Helpers imported as `import helper` (and a package's sub-module) are snapshotted with the
    workflow; after they change on disk, replay is identical and never imports today's files,
    even with their folder first on sys.path and today's modules already imported."""
    import importlib
    import sys

    code, tag = write_helper_code(tmp_path)
    monkeypatch.syspath_prepend(str(code))
    mod = importlib.import_module(f"flow_{tag}")
    ex = run(mod.flow)
    assert ex.outputs == 5 * 2 + 2 + 100
    # Today's files differ, and today's modules are in memory (the cache key saw it too).
    (code / f"helper_{tag}.py").write_text(HELPER_V1.replace("FACTOR = 2", "FACTOR = 7"))
    (code / f"pkg_{tag}" / "sub.py").write_text("def offset(x):\n    return -1\n")
    for name in [f"helper_{tag}", f"pkg_{tag}.sub", f"pkg_{tag}", f"flow_{tag}"]:
        sys.modules.pop(name, None)
    today = importlib.import_module(f"flow_{tag}")
    assert run(today.flow).outputs == 5 * 7 + 7 - 1
    r = replay(ex.id)
    assert r.identical, r.summary()
    assert sys.modules[f"helper_{tag}"].FACTOR == 7  # the process's own modules are back afterwards


@pytest.mark.slow
def test_replay_refuses_a_user_module_missing_from_the_snapshot(home, tmp_path, monkeypatch):
    """A module of the user's that the snapshot lacks is an error naming it, never today's file."""
    import importlib

    from ledgerflow.engine import snapshot

    tag = uuid.uuid4().hex[:8]
    code = tmp_path / "code"
    code.mkdir()
    (code / f"helper_{tag}.py").write_text(HELPER_V1)
    (code / f"lazy_{tag}.py").write_text(
        "from ledgerflow import task, workflow\n"
        "@task\n"
        "def late(x: int) -> int:\n"
        f"    mod = __import__('helper_{tag}')  # imported by name at run time: no analysis sees it\n"
        "    return mod.compute(x)\n"
        "@workflow\n"
        "def flow(x: int = 3) -> int:\n"
        "    return late(x=x)\n")
    monkeypatch.syspath_prepend(str(code))
    mod = importlib.import_module(f"lazy_{tag}")
    ex = run(mod.flow)
    store = Store.open(home / "store")
    with snapshot.loaded(store, Ledger(home).execution(ex.id).code_digest) as wf:
        with pytest.raises(ModuleNotFoundError, match=f"helper_{tag}.*not in the code snapshot"):
            wf.graph.nodes[0].task.fn(3)


@pytest.mark.slow
def test_replay_under_python_m_with_the_folder_on_pythonpath_uses_the_snapshot(home, tmp_path):
    """Run as `python -m flow` (the workflow's module is __main__), change the helper on disk,
    then `lineage replay` with that folder on PYTHONPATH: identical, from the snapshot."""
    import json
    import os
    import subprocess
    import sys

    code, tag = write_helper_code(tmp_path)
    (code / f"flow_{tag}.py").write_text(USES_HELPER.format(tag=tag) + (
        "\nif __name__ == '__main__':\n"
        "    from ledgerflow import run\n"
        "    print(run(flow).id)\n"))
    env = {**os.environ, "LEDGERFLOW_HOME": str(home), "PYTHONPATH": str(code)}
    ran = subprocess.run([sys.executable, "-m", f"flow_{tag}"], cwd=code, env=env, capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    execution = ran.stdout.strip().splitlines()[-1]
    (code / f"helper_{tag}.py").write_text(HELPER_V1.replace("FACTOR = 2", "FACTOR = 7"))
    lineage = [sys.executable, "-m", "ledgerflow.app.cli"]
    out = subprocess.run(lineage + ["replay", execution, "--json"], cwd=code, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["identical"] is True
