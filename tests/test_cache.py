"""Code-aware cache keys, cache hits in the ledger, and resuming after a failure or a kill -9."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from ledgerflow import Ledger, run
from ledgerflow.engine.loading import import_file

BASE = '''
from ledgerflow import task, workflow

def helper(x):
    return inner(x) + 1

def inner(x):
    return x * 2

@task(cache=True, cache_version="1")
def step(x: int) -> int:
    return helper(x)

@workflow
def wf(x: int = 1) -> int:
    return step(x=x)
'''


def load(tmp_path, source):
    path = tmp_path / f"m_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(source))
    return import_file(path)


def key_of(tmp_path, source):
    return load(tmp_path, source).step.fingerprint


@pytest.mark.parametrize("edit,changes", [
    (lambda s: s.replace("return helper(x)", "return helper(x)  # a comment"), False),
    (lambda s: s.replace("def step(x: int) -> int:", "def step(x: int)->int:\n    '''Docs.'''"), False),
    (lambda s: s.replace("return x * 2", "return (x *\n            2)"), False),
    (lambda s: s.replace("return helper(x)", "return helper(x) + 0"), True),
    (lambda s: s.replace("return inner(x) + 1", "return inner(x) + 2"), True),  # a helper it calls
    (lambda s: s.replace("return x * 2", "return x * 3"), True),  # a helper's helper
    (lambda s: s.replace('cache_version="1"', 'cache_version="2"'), True),
])
def test_fingerprint_follows_behaviour_not_formatting(tmp_path, edit, changes):
    before, after = key_of(tmp_path, BASE), key_of(tmp_path, edit(BASE))
    assert (before != after) is changes


def test_hits_misses_and_sharing_across_workflows(home, tmp_path):
    mod = load(tmp_path, BASE + '''
@workflow
def other(y: int = 1) -> int:
    return step(x=y)
''')
    first = run(mod.wf, {"x": 3})
    again = run(mod.wf, {"x": 3})
    assert again.steps["step"].status == "cached" and again.steps["step"].cached_from == f"{first.id}:step"
    assert again.outputs == first.outputs == 7
    assert run(mod.wf, {"x": 4}).steps["step"].status == "succeeded"  # different input, different key
    shared = run(mod.other, {"y": 3})  # the same step in another workflow
    assert shared.steps["step"].status == "cached"
    assert run(mod.wf, {"x": 3}, cache=False).steps["step"].status == "succeeded"
    detail = Ledger(home).execution(again.id)
    (s,) = detail.steps
    assert s.cache_hit and s.cached_from == f"{first.id}:step"


def test_missing_or_corrupt_cached_output_is_a_miss(home, tmp_path, monkeypatch):
    mod = load(tmp_path, '''
from ledgerflow import task, workflow, File

@task(cache=True)
def make(text: str) -> File:
    with open("made.txt", "w") as fh:
        fh.write(text)
    return "made.txt"

@workflow
def wf(text: str = "hello") -> File:
    return make(text=text)
''')
    monkeypatch.chdir(tmp_path)
    first = run(mod.wf)
    path = first.outputs.path
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.warns(UserWarning, match="cannot be used"):
        second = run(mod.wf)
    assert second.steps["make"].status == "succeeded" and second.outputs.read_bytes() == b"hello"
    path.unlink()
    with pytest.warns(UserWarning, match="cannot be used"):
        assert run(mod.wf).steps["make"].status == "succeeded"


RESUMABLE = '''
import os, time
from ledgerflow import task, workflow

@task(cache=True)
def one(x: int) -> int:
    return x + 1

@task(cache=True)
def two(x: int) -> int:
    return x * 10

@task(cache=True)
def three(x: int) -> int:
    if os.environ.get("BREAK_THREE") == "fail":
        raise RuntimeError("three broke")
    if os.environ.get("BREAK_THREE") == "hang":
        time.sleep(60)
    return x - 1

@task(cache=True)
def four(x: int) -> int:
    return x * 2

@workflow
def chain(x: int = 1) -> int:
    return four(x=three(x=two(x=one(x=x))))
'''


def test_resume_after_failure_reruns_only_failed_and_downstream(home, tmp_path, monkeypatch):
    mod = load(tmp_path, RESUMABLE)
    monkeypatch.setenv("BREAK_THREE", "fail")
    with pytest.raises(Exception, match="three broke"):
        run(mod.chain)
    monkeypatch.delenv("BREAK_THREE")
    again = run(mod.chain)
    assert {n: s.status for n, s in again.steps.items()} == {
        "one": "cached", "two": "cached", "three": "succeeded", "four": "succeeded"}
    assert again.outputs == 38


def test_resume_after_kill_9(home, tmp_path):
    script = tmp_path / "resumable.py"
    script.write_text(RESUMABLE + "\nif __name__ == '__main__':\n    from ledgerflow import run\n    run(chain)\n")
    env = {**os.environ, "BREAK_THREE": "hang", "LEDGERFLOW_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    ledger = Ledger(home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the ledger shows step three running
        rows = ledger.sql("SELECT count(*) AS n FROM steps WHERE step = 'three' AND status = 'running'") \
            if (home / "ledger.duckdb").exists() else None
        if rows is not None and rows.to_pylist()[0]["n"]:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (killed,) = ledger.executions()
    assert killed.status == "interrupted"
    mod = load(tmp_path, RESUMABLE)
    again = run(mod.chain)
    assert [again.steps[n].status for n in ("one", "two", "three", "four")] == ["cached", "cached", "succeeded",
                                                                                "succeeded"]
    assert ledger.verify().ok
