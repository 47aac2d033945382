"""What the docstring examples in ledgerflow/ run against (pytest --doctest-modules).

Each doctest gets, fresh:

- a temporary working folder as the current directory, holding `pipeline.py` (the small
  workflow below), `data.csv`, `checkpoints/` (two files) and `out/model/` (a model folder),
  so examples can name them as a user would;
- a temporary LEDGERFLOW_HOME (LEDGERFLOW_STORE, LEDGERFLOW_LEDGER, RAY_ADDRESS and the
  OPENLINEAGE_* variables unset), with its store in effect;
- these names: `home` (the `ledgerflow.home.Home`), `pipeline` (the workflow of
  `pipeline.py`: `n: int = 10, lr: float = 0.1`, two cheap steps), and, for an example that
  reads `ex` without making it, `ex`: an execution of `pipeline` already recorded in `home`.

The executor registry, sys.path and the `pipeline` module are put back after each one.
Tests under tests/ are not affected (they have their own conftest.py).
"""

import re
import sys

import pytest

PIPELINE = '''\
"""A small pipeline: a list of numbers, and a "model" trained on it."""

import sys

from ledgerflow import task, workflow


@task(cache=True)
def ingest(n: int) -> list[int]:
    return list(range(n))


@task(cache=True)
def train(data: list[int], lr: float) -> float:
    print(f"training on {len(data)} rows", file=sys.stderr)
    return round(sum(data) * lr, 6)


@workflow
def pipeline(n: int = 10, lr: float = 0.1) -> float:
    return train(data=ingest(n=n), lr=lr)
'''

_USES_EX = re.compile(r"\bex\b")
_MAKES_EX = re.compile(r"^\s*ex\s*=")


def _needs_execution(item) -> bool:
    examples = item.dtest.examples
    return (any(_USES_EX.search(e.source) for e in examples)
            and not any(_MAKES_EX.match(e.source) for e in examples))


@pytest.fixture(autouse=True)
def _doctest_home(request):
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    from ledgerflow import executors, run
    from ledgerflow.app.recorders import OPENLINEAGE_VARIABLES
    from ledgerflow.engine.loading import load_workflow
    from ledgerflow.home import Home
    from ledgerflow.store import Store
    from ledgerflow.store import active

    tmp_path = request.getfixturevalue("tmp_path")
    monkeypatch = request.getfixturevalue("monkeypatch")
    namespace = request.getfixturevalue("doctest_namespace")

    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    (work / "out" / "model").mkdir(parents=True)
    (work / "pipeline.py").write_text(PIPELINE)
    (work / "data.csv").write_text("x,y\n1,2\n")
    (work / "checkpoints" / "epoch-1.pt").write_bytes(b"weights after epoch 1")
    (work / "checkpoints" / "epoch-2.pt").write_bytes(b"weights after epoch 2")
    (work / "out" / "model" / "model.pkl").write_bytes(b"a pickled estimator")
    (work / "out" / "model" / "params.json").write_text('{"C": 1.0}')
    monkeypatch.chdir(work)
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    for name in ("LEDGERFLOW_STORE", "LEDGERFLOW_LEDGER", "RAY_ADDRESS", *OPENLINEAGE_VARIABLES):
        monkeypatch.delenv(name, raising=False)

    saved_path, saved_registry = list(sys.path), dict(executors._REGISTRY)
    saved_module = sys.modules.get("pipeline")
    home = Home.resolve()
    names = {"home": home}
    try:
        with active.using(Store.open(home.store_url)):
            names["pipeline"] = load_workflow("pipeline.py:pipeline")
            if _needs_execution(request.node):
                names["ex"] = run(names["pipeline"], progress=False, recorders=())
            namespace.update(names)
            yield
    finally:
        for name in names:
            namespace.pop(name, None)
        sys.path[:] = saved_path
        executors._REGISTRY.clear()
        executors._REGISTRY.update(saved_registry)
        if saved_module is None:
            sys.modules.pop("pipeline", None)
        else:
            sys.modules["pipeline"] = saved_module
