"""Executors by name: the two built in, and one a test adds with a module and one line."""

from __future__ import annotations

import threading

import pytest

from ledgerflow import Ledger, run, task, workflow
from ledgerflow import executors
from ledgerflow.errors import UnknownExecutor


@task
def thread_name(i: int) -> str:
    return f"{i}:{threading.current_thread().name}"


@workflow
def four() -> list[str]:
    return [thread_name(i=i) for i in range(4)]


@pytest.fixture
def threads_registered():
    executors.register("threads", "thread_pool_executor:ThreadPoolExecutor")  # the one line
    yield
    executors._REGISTRY.pop("threads")


def test_an_executor_added_with_one_registration_runs_and_is_recorded(home, threads_registered):
    ex = run(four, executor="threads", progress=False)
    assert sorted(o.split(":")[0] for o in ex.outputs) == ["0", "1", "2", "3"]
    assert all(o.split(":")[1].startswith("step") for o in ex.outputs)  # on the pool's threads
    summary = Ledger(home).execution(ex.id).summary
    assert summary.executor == "threads"
    assert "threads" in executors.names()


def test_the_cli_offers_every_registered_executor(home, threads_registered, tmp_path):
    from click.testing import CliRunner

    from ledgerflow.app.cli import cli

    script = tmp_path / "wf.py"
    script.write_text("from test_executor_registry import four\n")
    result = CliRunner().invoke(cli, ["run", f"{script}:four", "--executor", "threads", "--json"])
    assert result.exit_code == 0, result.output
    assert "threads" in CliRunner().invoke(cli, ["run", "--help"]).output


def test_an_unknown_executor_names_the_known_ones():
    with pytest.raises(UnknownExecutor, match="'local', 'ray'"):
        executors.resolve("dask")
    with pytest.raises(UnknownExecutor):
        executors.register("dask", "no-colon")
