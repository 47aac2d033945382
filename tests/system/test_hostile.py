"""Hostile input: whatever is typed or planted, one clear line and a non-zero exit, never a traceback."""

import enum
import os
from typing import Optional

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ledgerflow import Directory, File, Ledger, ParameterError, run, task, workflow
from ledgerflow.errors import LedgerError
from ledgerflow.engine.loading import params_from_text
from ledgerflow.app.cli import cli
from ledgerflow.store import Store


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@attrs.frozen
class Config:
    depth: int
    rate: float


@task
def echo(n: int, rate: float, flag: bool, tags: list[str], weights: dict[str, float], maybe: Optional[int],
         mode: Mode, config: Config) -> str:
    return f"{n}{rate}{flag}{tags}{weights}{maybe}{mode}{config}"


@workflow
def everything(n: int, rate: float = 0.1, flag: bool = False, tags: list[str] = [], weights: dict[str, float] = {},
               maybe: Optional[int] = None, mode: Mode = Mode.FAST,
               config: Config = Config(1, 0.5)) -> str:
    return echo(n=n, rate=rate, flag=flag, tags=tags, weights=weights, maybe=maybe, mode=mode, config=config)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-home")
    ex = run(everything, {"n": 1}, home=home)
    return home, ex


def invoke(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def one_line_error(result):
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


@settings(max_examples=60)
@given(ref=st.one_of(
    st.text(max_size=80),
    st.sampled_from(["'; DROP TABLE step_log; --", "blake3:", "blake3:zz", "0" * 64, ":", "::", "%", "_",
                     "' OR 1=1 --", "01M8\x00", "../../etc/passwd", "x" * 5000]),
))
@pytest.mark.slow
def test_any_ref_is_a_clean_error_or_an_answer(recorded, ref):
    home, ex = recorded
    for command in (["show", ref], ["query", "upstream", ref], ["query", "downstream", ref], ["metrics", ref]):
        result = invoke(home, *command)
        if result.exit_code != 0:
            one_line_error(result)


def test_injection_changes_nothing(recorded):
    home, ex = recorded
    before = Ledger(home).sql("SELECT count(*) AS n FROM step_log").to_pylist()
    for attempt in ["'; DROP TABLE step_log; --", "x'); DELETE FROM edges; --"]:
        one_line_error(invoke(home, "show", attempt))
        one_line_error(invoke(home, "query", "sql", f"SELECT 1; {attempt}"))
    one_line_error(invoke(home, "query", "sql", "DROP TABLE step_log"))
    one_line_error(invoke(home, "query", "sql", "ATTACH '/tmp/other.duckdb' AS o"))
    one_line_error(invoke(home, "query", "sql", "COPY step_log TO '/tmp/leak.csv'"))
    one_line_error(invoke(home, "query", "sql", "SELECT * FROM read_csv('/etc/passwd')"))
    one_line_error(invoke(home, "query", "sql", "SET enable_external_access = true"))
    assert not os.path.exists("/tmp/leak.csv")
    assert Ledger(home).sql("SELECT count(*) AS n FROM step_log").to_pylist() == before
    assert Ledger(home).verify().ok


@settings(max_examples=200)
@given(name=st.sampled_from(["n", "rate", "flag", "tags", "weights", "maybe", "mode", "config"]),
       text=st.one_of(st.text(max_size=30), st.sampled_from(
           ["1", "-1", "1e400", "nan", "inf", "true", "[1, 2]", '["a"]', '{"a": 1}', '{"a": "x"}', "null",
            "FAST", "fast", '{"depth": 2, "rate": 1}', '{"depth": "deep"}', "0x10", "1_000", " 5 "])))
def test_any_parameter_text_converts_or_is_refused_clearly(name, text):
    try:
        params = params_from_text(everything, [f"n=1", f"{name}={text}"])
    except ParameterError as e:
        assert name in str(e) and "\n" not in str(e)
        return
    declared = {p.name: p.type for p in everything.params}
    from ledgerflow.types import conform

    conform(params[name], declared[name])  # whatever got through has the declared type


def test_a_ledger_file_that_is_not_duckdb(tmp_path):
    (tmp_path / "ledger.duckdb").write_bytes(b"this is not a database\x00" * 100)
    for args in (["list"], ["show", "01M8"], ["verify"], ["query", "sql", "SELECT 1"]):
        result = invoke(tmp_path, *args)
        one_line_error(result)
        assert "ledger.duckdb" in result.output or "ledger" in result.output


def test_a_store_object_replaced_by_a_symlink_is_caught(tmp_path):
    store = Store.open(tmp_path / "store")
    digest = store.put_bytes(b"precious bytes")
    target = store.local_path(digest)
    target.chmod(0o644)
    target.unlink()
    os.symlink("/etc/hostname", target)
    with pytest.raises(Exception) as err:
        store.get_bytes(digest)
    assert digest in str(err.value)
    home = tmp_path
    Ledger(home)  # an empty ledger: verify still re-hashes the store
    result = invoke(home, "verify")
    one_line_error(result)
    assert digest in result.output


def test_directory_trees_that_reach_outside_are_refused(home, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_text("fine")
    os.symlink("/etc/passwd", tree / "escape")
    with pytest.raises(ValueError, match="escape"):
        Directory.from_path(tree)
    (tree / "escape").unlink()
    odd = os.fsencode(tree) + b"/caf\xe9-\xff.bin"  # not UTF-8
    with open(odd, "wb") as fh:
        fh.write(b"bytes")
    handle = Directory.from_path(tree)
    names = sorted(os.listdir(os.fsencode(handle.path)))
    assert b"caf\xe9-\xff.bin" in names


def test_file_from_a_path_that_does_not_exist(home, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a file"):
        File.from_path(tmp_path / "nope.csv")


# ---- bounded readers: one query can neither exhaust the machine nor hold the ledger -----


@pytest.mark.slow
def test_a_slow_query_is_stopped_by_its_timeout_and_the_ledger_stays_usable(recorded):
    home, ex = recorded
    with pytest.raises(LedgerError, match=r"stopped: it ran past the 0\.5 s timeout \(--timeout"):
        Ledger(home).sql("SELECT sum(hash(range)) AS x FROM range(1000000000000)", timeout=0.5)
    result = invoke(home, "query", "sql", "--timeout", "0.5", "--memory", "100GB",
                    "SELECT sum(hash(range)) AS x FROM range(1000000000000)")
    one_line_error(result)
    assert "ran past the 0.5 s timeout" in result.output and len(result.output.strip().splitlines()) == 1
    # Nothing is left held: a run records, and readers and verify answer.
    again = run(everything, {"n": 2}, home=home)
    assert again.status == "succeeded"
    assert Ledger(home).sql("SELECT count(*) AS n FROM executions WHERE execution_id = ?",
                            [again.id]).to_pylist() == [{"n": 1}]
    assert Ledger(home).verify().ok


def test_a_query_that_needs_too_much_memory_is_stopped(recorded):
    home, _ = recorded
    with pytest.raises(LedgerError, match="needed more than its 64MB memory limit"):
        Ledger(home).sql("SELECT list(range) AS l FROM range(100000000)", memory="64MB")
    result = invoke(home, "query", "sql", "--memory", "64MB", "SELECT list(range) AS l FROM range(100000000)")
    one_line_error(result)
    assert "--memory" in result.output
    one_line_error(invoke(home, "query", "sql", "--memory", "lots", "SELECT 1"))
    # The limit is locked: the query cannot raise it for itself.
    one_line_error(invoke(home, "query", "sql", "SET memory_limit = '100GB'"))
    with pytest.raises(LedgerError):
        Ledger(home).sql("SELECT 1; SET memory_limit = '100GB'")
    assert Ledger(home).sql("SELECT current_setting('memory_limit') AS m").to_pylist()[0]["m"] != "100GB"
    assert invoke(home, "query", "sql", "--timeout", "0", "SELECT 42 AS answer").exit_code == 0
