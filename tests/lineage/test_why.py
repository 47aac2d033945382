"""`lineage why`, show's one-line reasons, and `--recompute`: mutation-style.

Each case writes a workflow (and a helper module it uses as `import helper`) into tmp_path,
runs it, changes one thing in the files, imports them afresh and runs again: the step
re-runs and `why` names exactly that change (a changed function with a diff of the changed
line), or, for a change the result cannot depend on, the step is a cache hit.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ledgerflow import Ledger, run
from ledgerflow.engine.loading import import_file
from ledgerflow.lineage.why import reasons_of

FLOW = '''
from ledgerflow import task, workflow
import HELPER

FACTOR = 2
OFFSET = 0
UNRELATED = 1
BONUS = 10


def scale(x):
    return x * FACTOR


def not_called(x):
    return x - 1


def with_default(x, bonus=BONUS):
    return x + bonus


def make_adder():
    k = 7

    def inner(x):
        return x + k
    return inner


ADD = make_adder()


class Model:
    def predict(self, x):
        return x * 3


@task(cache=True, cache_version="1")
def step(x: int) -> int:
    """Adds things up."""
    return scale(x) + OFFSET + HELPER.compute(x) + HELPER.CONST + with_default(x) + ADD(x) + Model().predict(x)


@workflow
def wf(x: int = 1) -> int:
    return step(x=x)
'''

HELPER = '''
CONST = 100


def compute(x):
    return x + 1
'''


class Project:
    """The two files in tmp_path under names unique to the test, imported afresh on each load."""

    def __init__(self, tmp_path):
        tag = uuid.uuid4().hex[:8]
        self.flow_name, self.helper_name = f"flow_{tag}", f"helper_{tag}"
        self.flow = tmp_path / f"{self.flow_name}.py"
        self.helper = tmp_path / f"{self.helper_name}.py"
        self.flow.write_text(FLOW.replace("HELPER", self.helper_name))
        self.helper.write_text(HELPER)

    def edit(self, which: str, old: str, new: str) -> None:
        path = self.flow if which == "flow" else self.helper
        text = path.read_text()
        old, new = old.replace("HELPER", self.helper_name), new.replace("HELPER", self.helper_name)
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    def load(self):
        for name in (self.flow_name, self.helper_name):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return import_file(self.flow)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an edit within a second never reads a stale .pyc
    return Project(tmp_path)


# (which file, old text, new text, expected (part, name) changes, a line the diff must show)
CHANGES = {
    "helper body": ("flow", "return x * FACTOR", "return x * FACTOR * 1",
                    {("code", "scale")}, "+    return x * FACTOR * 1"),
    "global read by the task": ("flow", "OFFSET = 0", "OFFSET = 4", {("read", "OFFSET")}, None),
    "global read by a helper": ("flow", "FACTOR = 2", "FACTOR = 5", {("read", "FACTOR")}, None),
    "import m; m.f()": ("helper", "return x + 1", "return x + 2",
                        {("code", "HELPER.compute")}, "+    return x + 2"),
    "import m; m.CONST": ("helper", "CONST = 100", "CONST = 200", {("read", "HELPER.CONST")}, None),
    "closure variable": ("flow", "k = 7", "k = 8", {("read", "make_adder.<locals>.inner.<closure>.k")}, None),
    "default argument (from a global)": ("flow", "BONUS = 10", "BONUS = 20",
                                         {("read", "with_default.<default>.bonus")}, None),
    "default argument (literal)": ("flow", "bonus=BONUS", "bonus=30",
                                   {("code", "with_default"), ("read", "with_default.<default>.bonus")},
                                   "+def with_default(x, bonus=30):"),
    "method of a user class": ("flow", "return x * 3", "return x * 4",
                               {("code", "Model"), ("code", "Model.predict")}, "+        return x * 4"),
    "cache_version": ("flow", 'cache_version="1"', 'cache_version="2"', {("cache_version", "cache_version")}, None),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
@pytest.mark.slow
def test_a_change_reruns_and_why_names_exactly_it(home, project, case):
    which, old, new, expected, diff_line = CHANGES[case]
    first = run(project.load().wf)
    project.edit(which, old, new)
    second = run(project.load().wf)
    assert second.steps["step"].status == "succeeded"
    w = Ledger(home).why(f"{second.id}:step")
    expected = {(part, name.replace("HELPER", project.helper_name)) for part, name in expected}
    assert w.verdict == "changed" and w.previous == f"{first.id}:step", w
    assert {(c.part, c.name) for c in w.changes} == expected, w.changes
    if diff_line:
        diffs = "\n".join(c.diff or "" for c in w.changes if c.part == "code")
        assert diff_line.replace("HELPER", project.helper_name) in diffs.splitlines(), diffs
    for c in w.changes:
        if c.part == "read":
            assert c.text() == f"{c.name}: {c.before} -> {c.after}" and c.before != c.after
    assert w.reason.startswith("re-ran: ")
    # show's one line says the same, compared per task
    assert reasons_of(Ledger(home), Ledger(home).execution(second.id))["step"].startswith("re-ran: ")


NON_CHANGES = {
    "comment": ("flow", "return x * FACTOR", "return x * FACTOR  # doubled"),
    "formatting": ("flow", "return x * FACTOR", "return (x *\n            FACTOR)"),
    "docstring": ("flow", '"""Adds things up."""', '"""Adds everything up, documented anew."""'),
    "unrelated global": ("flow", "UNRELATED = 1", "UNRELATED = 2"),
    "a helper that is not called": ("flow", "return x - 1", "return x - 2"),
    "a helper module's comment": ("helper", "return x + 1", "return x + 1  # one more"),
}


@pytest.mark.parametrize("case", sorted(NON_CHANGES))
@pytest.mark.slow
def test_a_non_change_is_a_cache_hit(home, project, case):
    which, old, new = NON_CHANGES[case]
    first = run(project.load().wf)
    project.edit(which, old, new)
    second = run(project.load().wf)
    assert second.steps["step"].status == "cached"
    w = Ledger(home).why(f"{second.id}:step")
    assert w.verdict == "cache-hit" and w.cached_from == f"{first.id}:step" and w.cached_from_at is not None
    assert f"reused {first.id}:step" in w.reason


def test_an_input_change_names_the_input_with_its_values(home, project):
    mod = project.load()
    first = run(mod.wf, {"x": 1})
    second = run(mod.wf, {"x": 2})
    w = Ledger(home).why("step")  # a step name: of the latest execution
    assert w.ref == f"{second.id}:step" and w.previous == f"{first.id}:step"
    (c,) = w.changes
    assert (c.part, c.name, c.before_value, c.after_value) == ("input", "x", "1", "2")
    assert c.before.startswith("blake3:") and c.text() == "input x: 1 -> 2"
    assert reasons_of(Ledger(home), Ledger(home).execution(second.id)) == {"step": "re-ran: input x: 1 -> 2"}
    assert Ledger(home).why("latest:step") == w


FLYTE = '''
from ledgerflow import task, workflow

FACTOR = 2


@task(cache=True)
def mult(x: int) -> int:
    return x * FACTOR


@workflow
def wf(x: int = 10) -> int:
    return mult(x=x)
'''


def test_flyte_cache_example(home, tmp_path, monkeypatch):
    """Flyte's cache example: FACTOR 2 -> 5 must give 50, not the cached 20, and say why."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / f"flyte_{uuid.uuid4().hex[:8]}.py"
    path.write_text(FLYTE)
    assert run(import_file(path).wf).outputs == 20
    path.write_text(FLYTE.replace("FACTOR = 2", "FACTOR = 5"))
    sys.modules.pop(path.stem)
    second = run(import_file(path).wf)
    assert second.outputs == 50 and second.steps["mult"].status == "succeeded"
    w = Ledger(home).why("mult")
    assert [c.text() for c in w.changes] == ["FACTOR: 2 -> 5"]
    assert w.reason.startswith("re-ran: FACTOR: 2 -> 5")
    third = run(import_file(path).wf)
    assert third.steps["mult"].status == "cached" and third.outputs == 50
    assert Ledger(home).why("mult").cached_from == f"{second.id}:mult"


@pytest.mark.slow
def test_first_run_cache_off_and_recompute(home, tmp_path):
    path = tmp_path / f"plain_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent('''
        from ledgerflow import task, workflow

        @task
        def uncached(x: int) -> int:
            return x + 1

        @task(cache=True)
        def cached(x: int) -> int:
            return x * 2

        @workflow
        def wf(x: int = 1) -> int:
            return cached(x=uncached(x=x))
    '''))
    mod = import_file(path)
    first = run(mod.wf)
    ledger = Ledger(home)
    assert ledger.why(f"{first.id}:cached").verdict == "first-run"
    assert "first run" in ledger.why(f"{first.id}:uncached").reason
    second = run(mod.wf)
    off = ledger.why(f"{second.id}:uncached")
    assert off.verdict == "cache-off" and off.reason == "cache off for this task" and off.cache_key is None
    assert second.steps["cached"].status == "cached"
    forced = run(mod.wf, recompute={"cached"})
    assert forced.steps["cached"].status == "succeeded"
    w = ledger.why(f"{forced.id}:cached")
    assert w.verdict == "forced" and w.reason == "re-ran: recompute forced (--recompute)"
    assert reasons_of(ledger, ledger.execution(forced.id)) == {
        "uncached": "cache off", "cached": "re-ran: recompute forced (--recompute)"}
    nocache = run(mod.wf, cache=False)
    assert ledger.why(f"{nocache.id}:cached").reason == "re-ran: the cache was off for the run (--no-cache)"


LINEAGE = Path(sys.executable).with_name("lineage")


@pytest.mark.slow
def test_cli_why_show_and_recompute(tmp_path):
    script = tmp_path / "flyte.py"
    script.write_text(FLYTE.replace("return x * FACTOR", "return helper(x)") + '''

def helper(x):
    return x * FACTOR
''')
    env = {**os.environ, "LEDGERFLOW_HOME": str(tmp_path / "home"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("RAY_ADDRESS", None)

    def lineage(*args, code=0):
        cmd = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
        out = subprocess.run(cmd + list(args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == code, out.stderr
        return out

    first = json.loads(lineage("run", "flyte.py:wf", "--json").stdout)
    assert first["outputs"] == 20
    script.write_text(script.read_text().replace("FACTOR = 2", "FACTOR = 5").replace(
        "    return x * FACTOR", "    return x * FACTOR  # changed\n    # and more"))
    second = json.loads(lineage("run", "flyte.py:wf", "--json").stdout)
    assert second["outputs"] == 50
    out = lineage("why", "mult").stdout
    assert "re-ran: FACTOR: 2 -> 5" in out and f"{first['id']}:mult" in out
    data = json.loads(lineage("why", f"{second['id'][:12]}:mult", "--json").stdout)
    assert data["verdict"] == "changed" and [(c["part"], c["name"], c["before"], c["after"]) for c in data["changes"]] \
        == [("read", "FACTOR", "2", "5")]
    script.write_text(script.read_text().replace("    return x * FACTOR  # changed", "    return x * FACTOR + 1"))
    lineage("run", "flyte.py:wf")
    out = lineage("why", "latest:mult").stdout
    assert "code of helper changed" in out and "+    return x * FACTOR + 1" in out and "-    return x * FACTOR" in out
    show = lineage("show", second["id"]).stdout
    assert "re-ran: FACTOR: 2 -> 5" in show
    forced = json.loads(lineage("run", "flyte.py:wf", "--recompute", "mult", "--json").stdout)
    assert "succeeded" in lineage("show", forced["id"]).stdout
    assert json.loads(lineage("why", "mult", "--json").stdout)["verdict"] == "forced"
    assert json.loads(lineage("run", "flyte.py:wf", "--json").stdout)["outputs"] == 51
    assert json.loads(lineage("why", "mult", "--json").stdout)["verdict"] == "cache-hit"
    bad = lineage("run", "flyte.py:wf", "--recompute", "nope", code=2)
    assert "has no step 'nope'" in bad.stderr
    assert "no execution in the ledger has a step 'nope'" in lineage("why", "nope", code=2).stderr


@pytest.mark.slow
def test_show_reasons_stay_cheap_for_1000_steps(home, tmp_path):
    path = tmp_path / f"wide_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent('''
        from ledgerflow import task, workflow

        SHIFT = 0

        @task(cache=True)
        def inc(x: int) -> int:
            return x + 1 + SHIFT

        @workflow
        def wide(n: int = 1000) -> int:
            total = 0
            for i in range(1000):
                total = inc(x=i)
            return total
    '''))
    mod = import_file(path)
    run(mod.wide)
    mod.SHIFT = 1
    second = run(mod.wide)
    ledger = Ledger(home)
    detail = ledger.execution(second.id)
    started = time.perf_counter()
    found = reasons_of(ledger, detail)
    took = time.perf_counter() - started
    assert len(found) == 1000 and set(found.values()) == {"re-ran: SHIFT: 0 -> 1"}
    assert took < 1.0, took


def test_a_value_with_no_canonical_encoding_is_named_as_the_reason(home, tmp_path):
    path = tmp_path / f"client_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent('''
        from ledgerflow import task, workflow

        CLIENT = object()

        @task(cache=True)
        def call(x: int) -> int:
            return x if CLIENT else 0

        @workflow
        def wf(x: int = 1) -> int:
            return call(x=x)
    '''))
    mod = import_file(path)
    with pytest.warns(UserWarning, match="CLIENT"):
        ex = run(mod.wf)
    w = Ledger(home).why(f"{ex.id}:call")
    assert "it reads CLIENT, which has no canonical value" in w.reason
