"""Hardening, second round (issue 14): a gc killed anywhere, terminal escapes from workflows,
special files where files belong, one name rule, one-line errors, checkouts edited in place,
and a ledger written by a newer Ledgerflow. Real processes, real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ledgerflow import Directory, File, Ledger, map_task, run, task, workflow
from ledgerflow.engine.loading import import_file
from ledgerflow.errors import ParameterError, RegistryError
from ledgerflow.app.cli import cli
from ledgerflow.store import Store

ROOT = Path(__file__).parents[2]
LINEAGE = Path(sys.executable).with_name("lineage")
EXIT_CODES = (1, 2)  # app.py: 1 a problem, 2 bad input


def invoke(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def one_line_error(result):
    assert result.exit_code in EXIT_CODES, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("lineage: error:")]
    assert len(errors) == 1, result.output


# -- 1. gc killed at any point ---------------------------------------------------------------------

GC_KILLS = 30
OBJECTS = 40


@task
def blob(i: int, round: int) -> File:
    path = Path(os.environ["LF_HARDEN_SCRATCH"]) / f"blob-{round}-{i}.bin"
    path.write_bytes(f"{round}:{i}:".encode() * 2000)
    return path


@workflow
def blobs(round: int = 0) -> list[File]:
    return map_task(blob, i=list(range(OBJECTS)), round=round)


def _gc_killed_at(home: str, where: str, after: int) -> None:
    """gc in this (forked) process, which kills itself with SIGKILL at a chosen point of gc's
    write path: inside the journal append of its removals, or after `after` objects removed."""
    from ledgerflow.lineage import journal
    from ledgerflow.store import cas

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "append":
        real_write = journal.JournalWriter._write

        def torn(self, data):  # half of the removals' records written, then killed
            os.write(self._fd, data[: len(data) // 2])
            die()

        journal.JournalWriter._write = lambda self, data: torn(self, data) if b"ObjectCollected" in data \
            else real_write(self, data)
    else:
        real_remove = cas.Store.remove
        removed = [0]

        def remove(self, digest):
            if removed[0] == after:
                die()
            removed[0] += 1
            return real_remove(self, digest)

        cas.Store.remove = remove
    try:
        Ledger(home).gc(keep_last=0)
    finally:
        os._exit(0)


@pytest.mark.slow
def test_gc_killed_anywhere_leaves_a_valid_home_that_the_next_gc_finishes(tmp_path, monkeypatch):
    """30 seeded kill points over gc's write path (a torn journal append of its removals, or
    after 0..all objects removed): verify passes after each, nothing is gone without a record,
    and a second gc finishes the job without recording a removal twice."""
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(20261201)
    store = Store.open(home / "store")
    points = []
    for i in range(GC_KILLS):
        ex = run(blobs, {"round": i}, home=home, progress=False)
        made = {f.digest for f in ex.outputs}
        point = ("append", 0) if i % 5 == 0 else ("remove", rng.randint(0, OBJECTS + 2))
        points.append(point)
        proc = ctx.Process(target=_gc_killed_at, args=(str(home), *point))
        proc.start()
        proc.join(120)
        assert proc.exitcode == -signal.SIGKILL or point[1] > OBJECTS, (point, proc.exitcode)
        ledger = Ledger(home)
        report = ledger.verify()
        assert report.ok, f"kill {i} at {point}: {report.object_problems[:3] or report.first_problem}"
        recorded = {r["digest"] for r in ledger.sql("SELECT digest FROM gc_log").to_pylist()}
        gone = {d for d in made if not store.has(d)}
        assert gone <= recorded, f"kill {i} at {point}: {len(gone - recorded)} objects removed without a record"
        ledger.gc(keep_last=0)
        assert not any(store.has(d) for d in made), f"kill {i} at {point}: the second gc left objects"
        twice = ledger.sql("SELECT digest, count(*) AS n FROM gc_log GROUP BY 1 HAVING n > 1").to_pylist()
        assert twice == [], f"kill {i} at {point}: a removal recorded twice"
    assert Ledger(home).verify().ok
    print(f"\n{GC_KILLS} kill points over gc: {points}")


# -- 2. terminal escapes -----------------------------------------------------------------------------

EVIL = "\x1b[2J\x1b[1;1H\x1b[32mALL GOOD\x1b]0;pwned\x07\r\u202e"

ESCAPES = f'''
from ledgerflow import log_metric, task, workflow
EVIL = {EVIL!r}

@task
def noisy(s: str) -> str:
    log_metric("loss" + EVIL, 0.5)
    return s + EVIL

@task
def boom(s: str) -> str:
    raise RuntimeError("failed" + EVIL)

@workflow
def fine(s: str = "x") -> str:
    return noisy(s=s)

@workflow
def broken(s: str = "x") -> str:
    return boom(s=noisy(s=s))
'''

_RAW = [chr(c) for c in list(range(0, 9)) + list(range(11, 32)) + list(range(0x7f, 0xa0))] + ["\u202e"]


def _lineage(home, *args) -> subprocess.CompletedProcess:
    base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
    return subprocess.run(base + ["--home", str(home), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, errors="surrogateescape")


@pytest.mark.slow
def test_escape_sequences_from_a_workflow_never_reach_the_terminal(tmp_path):
    script = tmp_path / "escapes.py"
    script.write_text(ESCAPES)
    home = tmp_path / "home"
    outputs = [_lineage(home, "run", f"{script}:fine", "-p", "s=p" + EVIL.replace("\x00", "")),
               _lineage(home, "run", f"{script}:broken")]
    assert outputs[0].returncode == 0 and outputs[1].returncode == 1
    ids = [e.id for e in Ledger(home).executions()]
    for eid in ids:
        for args in (["show", eid], ["metrics", eid], ["graph", eid], ["query", "upstream", eid], ["why", f"{eid}:noisy"]):
            outputs.append(_lineage(home, *args))
    outputs += [_lineage(home, "list"), _lineage(home, "query", "sql", "SELECT name, value FROM metrics"),
                _lineage(home, "query", "sql", "SELECT error FROM step_log WHERE error IS NOT NULL")]
    for out in outputs:
        text = out.stdout + out.stderr
        assert not [c for c in _RAW if c in text], (out.args, text[-500:])
    shown = "".join(o.stdout + o.stderr for o in outputs)
    assert "\\x1b[2J" in shown  # what was recorded is visible, escaped
    # --json keeps the data exact (JSON escapes it): the metric name reads back whole.
    metrics = json.loads(_lineage(home, "query", "sql", "SELECT name FROM metrics", "--json").stdout)
    assert {m["name"] for m in metrics} == {"loss" + EVIL}


# -- 3. special files ---------------------------------------------------------------------------------


@task(cache=True)
def write_file(n: int) -> File:
    path = Path(os.environ["LF_HARDEN_SCRATCH"]) / f"file-{n}.txt"
    path.write_text("x" * n)
    return path


@task(cache=True)
def size_of(f: File) -> int:
    return len(Path(f.path).read_bytes())


@workflow
def file_then_size(n: int = 10) -> int:
    return size_of(f=write_file(n=n))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
@pytest.mark.slow
def test_a_store_object_replaced_by_a_special_file_never_hangs(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    first = run(file_then_size, {"n": 10}, home=home, progress=False)
    digest = first.steps["write_file"].outputs["return"].digest
    store = Store.open(home / "store")
    target = store.local_path(digest)
    target.chmod(0o644)
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", target)
    else:
        target.mkdir()
    result = subprocess.run([sys.executable, "-c", (
        "import sys; from ledgerflow import Ledger; r = Ledger(sys.argv[1]).verify(); "
        "print(r.ok, [p.digest for p in r.object_problems])"), str(home)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("False") and digest in result.stdout
    # A cached re-run does not hang either: the damaged entry is not reused, the step runs again.
    again = run(file_then_size, {"n": 10}, home=home, progress=False)
    assert again.outputs == 10 and again.steps["write_file"].status == "succeeded"


@pytest.mark.slow
def test_a_ledger_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.mkfifo(home / "ledger.duckdb")
    for args in (["list"], ["verify"], ["query", "sql", "SELECT 1"]):
        result = _lineage(home, *args)
        assert result.returncode == 1 and "FIFO" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_export_whose_manifest_is_a_fifo_is_refused_at_once(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    os.mkfifo(export / "manifest.json")
    result = _lineage(tmp_path / "home", "import", str(export))
    assert result.returncode in EXIT_CODES and "FIFO" in result.stderr, result.stderr


# -- 4. names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keep\n", "a" * 10_000, ".", "..", "a b", "", "x\x1b[2J", "é"])
def test_one_name_rule_everywhere(tmp_path, name):
    with pytest.raises(RegistryError):
        Ledger(tmp_path).tag("01M8", name)  # refused before the execution is even looked up
    from ledgerflow.app.registration import register

    with pytest.raises(RegistryError):
        register(name, None, home=tmp_path)
    with pytest.raises(ValueError):
        @task(name=name)
        def named(x: int) -> int:
            return x


def test_a_tag_with_a_trailing_newline_is_refused_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    ex = run(file_then_size, {"n": 3}, home=home, progress=False)
    one_line_error(invoke(home, "tag", ex.id, "keep\n"))
    assert Ledger(home).tags(ex.id) == ()


# -- 5. one line, never a traceback ----------------------------------------------------------------------


FLOWS = '''
from ledgerflow import task, workflow

@task
def echo_text(s: str) -> str:
    return s

@workflow
def text_flow(s: str = "x") -> str:
    return echo_text(s=s)

@task
def count_items(xs: list[int], rate: float) -> int:
    return len(xs)

@workflow
def list_flow(xs: list[int] = [], rate: float = 1.0) -> int:
    return count_items(xs=xs, rate=rate)
'''

def test_the_traceback_cases_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    run(file_then_size, {"n": 2}, home=home, progress=False)
    for args in (["query", "sql", "SELECT 'infinity'::TIMESTAMP AS t"], ["gc", "--older-than", "nan"],
                 ["gc", "--older-than", "inf"], ["gc", "--older-than", "1e308"],
                 ["export", "--format", "parquet", "/proc/x"], ["graph", "nothing", "-o", "b" * 300 + ".html"]):
        result = invoke(home, *args)
        if args[:2] == ["query", "sql"]:
            assert result.exit_code == 0 and "infinity" in result.output, result.output
            continue
        one_line_error(result)
    one_line_error(invoke(tmp_path / ("a" * 300), "list"))
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(0)\n")
    result = invoke(home, "run", f"{script}:w")
    one_line_error(result)
    assert "sys.exit" in result.output and str(script) in result.output
    flows_file = tmp_path / "flows.py"
    flows_file.write_text(FLOWS)
    flows = import_file(flows_file)
    with pytest.raises(ParameterError, match="UTF-8"):
        run(flows.text_flow, {"s": "a\udcff"}, home=home, progress=False)
    with pytest.raises(ParameterError, match="nested too deeply"):
        deep: list = []
        for _ in range(5000):
            deep = [deep]
        run(flows.list_flow, {"xs": deep}, home=home, progress=False)


hostile_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"]), max_size=20),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),
    st.sampled_from(["1e308", "-1e308", "1e999", "nan", "inf", "-0", "9" * 400, "0x7fffffffffffffff"]),
)


@settings(max_examples=60, deadline=None)
@given(param=st.sampled_from(["s", "xs", "rate"]), text=hostile_text)
def test_hostile_parameters_on_the_command_line_are_one_line(tmp_path_factory, param, text):
    where = tmp_path_factory.mktemp("fuzz")
    script = where / "flows.py"
    script.write_text(FLOWS)
    flow = "text_flow" if param == "s" else "list_flow"
    result = invoke(where / "home", "run", f"{script}:{flow}", "-p", f"{param}={text}")
    if result.exit_code != 0:
        one_line_error(result)
    assert not [c for c in _RAW if c in result.output.replace("\n", "")], result.output


# -- 6. checkouts ----------------------------------------------------------------------------------------


@task(cache=True)
def make_dir(n: int) -> Directory:
    root = Path(os.environ["LF_HARDEN_SCRATCH"]) / f"dir-{n}"
    root.mkdir(exist_ok=True)
    (root / "a.txt").write_text("a" * n)
    return root


@task
def read_dir(d: Directory) -> str:
    return (Path(d.path) / "a.txt").read_text()


@workflow
def dir_flow(n: int = 5) -> str:
    return read_dir(d=make_dir(n=n))


@pytest.mark.slow
def test_a_checkout_edited_in_place_is_never_served_and_verify_sees_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    assert run(dir_flow, {"n": 5}, home=home, progress=False).outputs == "aaaaa"
    checkouts = list((home / "store" / "checkouts").iterdir())
    [checkout] = [p for p in checkouts if p.is_dir()]
    edited = checkout / "a.txt"
    edited.chmod(0o644)
    edited.write_text("bbbbb")  # same size
    report = Ledger(home).verify()
    assert not report.ok and any("a.txt" in p.detail and "changed" in p.detail for p in report.object_problems)
    again = run(dir_flow, {"n": 5}, home=home, progress=False)
    assert again.outputs == "aaaaa"  # rebuilt from the store, not the edited copy
    assert Ledger(home).verify().ok


# -- 7. a ledger written by a newer Ledgerflow -------------------------------------------------------------


def test_a_newer_schema_is_one_line_for_readers_and_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LF_HARDEN_SCRATCH", str(tmp_path))
    home = tmp_path / "home"
    run(file_then_size, {"n": 4}, home=home, progress=False)
    Ledger(home).sync()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.close()
    for args in (["list"], ["verify"], ["query", "sql", "SELECT 1"]):
        result = invoke(home, *args)
        one_line_error(result)
        assert "newer Ledgerflow" in result.output, result.output
    with pytest.raises(Exception, match="newer Ledgerflow"):
        run(file_then_size, {"n": 4}, home=home, progress=False)  # its cache lookup reads the file
