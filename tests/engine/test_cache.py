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


@pytest.mark.slow
def test_resume_after_kill_9(home, tmp_path):
    script = tmp_path / "resumable.py"
    script.write_text(RESUMABLE + "\nif __name__ == '__main__':\n    from ledgerflow import run\n    run(chain)\n")
    env = {**os.environ, "BREAK_THREE": "hang", "LEDGERFLOW_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    ledger = Ledger(home)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the ledger shows step three running
        rows = ledger.sql("SELECT count(*) AS n FROM steps WHERE step = 'three' AND status = 'running'") \
            if (home / "journal").exists() else None  # (once the run has journaled something)
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


KEYED = '''
import {helper} as extra
from ledgerflow import task, workflow

FACTOR = 2
UNRELATED = "not read"

def helper(x, bonus=1):
    return x * SCALE + bonus

SCALE = 10

def unused():
    return 42

class Rounder:
    def round(self, x):
        return x // 1

def make(k):
    @task(cache=True)
    def closing(x: int) -> int:
        return x * k
    return closing

closing = make(3)

@task(cache=True)
def step(x: int) -> int:
    return helper(x) * FACTOR + extra.compute(x) + extra.CONST + Rounder().round(x)
'''

EXTRA = '''
CONST = 5

def compute(x):
    return x + 1
'''


def identity_of(tmp_path, source, extra=EXTRA, task="step"):
    # The helper module keeps its name across the two versions (a renamed module is other code).
    name = f"extra_{tmp_path.name[-20:].replace('-', '_').replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{name}.py").write_text(extra)
    sys.modules.pop(name, None)
    sys.path.insert(0, str(tmp_path))
    try:
        return getattr(load(tmp_path, source.replace("{helper}", name)), task).identity()
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize("edit,extra_edit,changes", [
    (lambda s: s.replace("FACTOR = 2", "FACTOR = 5"), None, True),  # a global the task reads
    (lambda s: s.replace("SCALE = 10", "SCALE = 11"), None, True),  # a global a helper reads
    (lambda s: s.replace("bonus=1", "bonus=2"), None, True),  # a default argument
    (lambda s: s.replace("return x // 1", "return x // 2"), None, True),  # a method of a user class
    (None, lambda s: s.replace("return x + 1", "return x + 2"), True),  # import m; m.f()
    (None, lambda s: s.replace("CONST = 5", "CONST = 6"), True),  # m.CONST
    (lambda s: s.replace('UNRELATED = "not read"', 'UNRELATED = "changed"'), None, False),  # not read
    (lambda s: s.replace("return 42", "return 43"), None, False),  # a helper that is not called
    (lambda s: s.replace("FACTOR = 2", "FACTOR = 2  # a comment"), None, False),
    (None, lambda s: s.replace("CONST = 5", "CONST = 5\nOTHER = 1"), False),  # the module's unread global
])
def test_the_key_covers_what_the_code_reads(tmp_path, edit, extra_edit, changes):
    before = identity_of(tmp_path, KEYED)
    after = identity_of(tmp_path, edit(KEYED) if edit else KEYED, extra_edit(EXTRA) if extra_edit else EXTRA)
    assert (before.fingerprint != after.fingerprint) is changes, (before.parts, after.parts)


def test_a_closure_variable_is_part_of_the_key(tmp_path):
    a = identity_of(tmp_path, KEYED, task="closing")
    b = identity_of(tmp_path, KEYED.replace("closing = make(3)", "closing = make(4)"), task="closing")
    assert a.fingerprint != b.fingerprint and '"4"' in b.parts


FLYTE = '''
from ledgerflow import task, workflow

FACTOR = 2

@task(cache=True)
def times(x: int) -> int:
    return x * FACTOR

@workflow
def wf(x: int = 10) -> int:
    return times(x=x)
'''


def test_changing_a_global_the_task_reads_is_a_miss_not_a_stale_answer(home, tmp_path):
    """Flyte's cache example: FACTOR 2 -> 5 must give 50, not the cached 20 (in the same process too)."""
    mod = load(tmp_path, FLYTE)
    assert run(mod.wf).outputs == 20
    assert run(mod.wf).steps["times"].status == "cached"
    mod.FACTOR = 5  # as a notebook cell would
    again = run(mod.wf)
    assert again.outputs == 50 and again.steps["times"].status == "succeeded"
    mod.FACTOR = 2
    assert run(mod.wf).steps["times"].status == "cached"  # back to the first value: a hit again


def test_an_edited_cached_value_is_a_miss_never_a_wrong_answer(home, tmp_path):
    """A ledger row whose value was edited no longer hashes to its digest: the cache says so
    and runs the step, instead of serving the edited answer (verify-on-read for values)."""
    import duckdb

    mod = load(tmp_path, FLYTE)
    first = run(mod.wf)
    digest = Ledger(home).execution(first.id).steps[0].outputs[0].artifact.digest
    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("UPDATE artifacts SET value = '999' WHERE digest = ?", [digest])  # an attacker's edit
    con.close()
    with pytest.warns(UserWarning, match="does not hash to its digest"):
        again = run(load(tmp_path, FLYTE).wf)
    assert again.outputs == 20 and again.steps["times"].status == "succeeded"


def test_a_value_with_no_canonical_encoding_makes_the_task_uncached_saying_why(home, tmp_path):
    mod = load(tmp_path, FLYTE.replace("FACTOR = 2", "import threading\nFACTOR = 2\nCLIENT = object()")
               .replace("return x * FACTOR", "return x * FACTOR if CLIENT else 0"))
    with pytest.warns(UserWarning, match="reads CLIENT, which has no canonical value"):
        run(mod.wf)
    with pytest.warns(UserWarning, match="CLIENT"):
        assert run(mod.wf).steps["times"].status == "succeeded"
    pinned = load(tmp_path, FLYTE.replace("FACTOR = 2", "FACTOR = 2\nCLIENT = object()")
                  .replace("@task(cache=True)", "@task(cache=True, cache_version='client-v1')")
                  .replace("return x * FACTOR", "return x * FACTOR if CLIENT else 0"))
    run(pinned.wf)
    assert run(pinned.wf).steps["times"].status == "cached"  # cache_version covers what has no encoding


def test_recompute_runs_a_cached_step_again(home, tmp_path):
    mod = load(tmp_path, FLYTE)
    run(mod.wf)
    assert run(mod.wf, recompute={"times"}).steps["times"].status == "succeeded"
    with pytest.raises(Exception, match="has no step 'nope'; its steps are: times"):
        run(mod.wf, recompute={"nope"})


RECORDS = '''
import attrs
from ledgerflow import task, workflow

@attrs.frozen
class Hyper:
    C: float
    gamma: float

    def label(self):
        return f"C={self.C}"

@task(cache=True)
def grid(c: float) -> list[Hyper]:
    return [Hyper(c, g) for g in (0.1, 0.2)]

@workflow
def wf(c: float = 1.0) -> list[Hyper]:
    return grid(c=c)
'''


def test_an_attrs_class_used_by_a_task_keys_the_same_in_every_process(tmp_path):
    """attrs generates __init__/__eq__/__hash__ without source; their bytecode differs between
    processes, so only the class's own source (and methods written in it) may count."""
    path = tmp_path / "records_mod.py"
    path.write_text(RECORDS)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import records_mod; "
             "print(records_mod.grid.identity().fingerprint)")
    keys = {subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)}
    assert len(keys) == 1, keys
    edited = tmp_path / "edited" / "records_mod.py"
    edited.parent.mkdir()
    edited.write_text(RECORDS.replace('return f"C={self.C}"', 'return f"C = {self.C}"'))
    changed = subprocess.run([sys.executable, "-c", probe, str(edited.parent)], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert changed not in keys  # a method written in the class is the class's code
