"""Storage faults, injected for real, and planted payloads: each gives one clear error naming
the cause and the place, and the ledger stays valid.

- a full disk (a small tmpfs) under the store during an artifact write, and under the home
  during a ledger flush, both at the end of a run and in the middle of one;
- a read-only home (a read-only remount: as root, chmod does not stop writes);
- an artifact deleted, and one corrupted, behind the engine's back: a consumer, cache
  reuse and `lineage verify` each name the digest and where it is;
- the S3 server stopping while a step runs;
- nothing read from the store or the ledger executes code: pickle payloads planted as store
  objects, as ledger values and as a replayed code snapshot never run.

The tmpfs tests need `mount` (root, or CAP_SYS_ADMIN); without it they skip, saying so.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

import ledgerflow
from ledgerflow import Dataset, Directory, File, Ledger, replay, run, task, workflow
from ledgerflow.errors import IntegrityError, LedgerError, ObjectNotFound, StoreError
from ledgerflow.app.cli import cli
from ledgerflow.store import Store, retry

# -- helpers ---------------------------------------------------------------------------


class Tmpfs:
    """A tmpfs of a fixed size mounted at `path`; `fill(leave)` takes all but `leave` bytes."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        self.mounted = True

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> Path:
        ballast = self.path / "ballast"
        with open(ballast, "ab") as f:
            f.write(b"\0" * max(self.free() - leave, 0))
        return ballast

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


@pytest.fixture
def tmpfs(tmp_path):
    made = []

    def mount(name: str, size: str) -> Tmpfs:
        fs = Tmpfs(tmp_path / name, size)
        made.append(fs)
        return fs

    yield mount
    for fs in made:
        fs.unmount()


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Where steps write the files they return (never inside a faulty mount)."""
    path = tmp_path / "scratch"
    path.mkdir()
    monkeypatch.setenv("LF_FAULT_SCRATCH", str(path))
    monkeypatch.delenv("LEDGERFLOW_STORE", raising=False)
    return path


def all_objects_verify(store_dir: Path) -> int:
    """Every object under a digest matches it (nothing partial is visible); returns how many."""
    store = Store.open(store_dir)
    n = 0
    for digest in store.iter_digests():
        store.verify(digest)
        n += 1
    return n


def tmp_debris(store_dir: Path) -> list:
    tmp = store_dir / "tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def invoke(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


# -- workflows -------------------------------------------------------------------------


@task
def big_file(mb: int) -> File:
    path = Path(os.environ["LF_FAULT_SCRATCH"]) / f"big-{mb}-{uuid.uuid4().hex[:8]}.bin"
    path.write_bytes(np.random.default_rng(mb).bytes(mb << 20))
    return path


@task
def big_table(mb: int) -> Dataset:
    return pa.table({"x": np.random.default_rng(mb).random((mb << 20) // 8)})


@workflow
def file_wf(mb: int = 8) -> File:
    return big_file(mb=mb)


@workflow
def table_wf(mb: int = 8) -> Dataset:
    return big_table(mb=mb)


@task
def text(i: int, width: int) -> str:
    return f"{i:06d}" * (width // 6)


@task
def count(parts: list[str]) -> int:
    return sum(len(p) for p in parts)


STEPS = 120


@workflow
def wide(width: int = 4096) -> int:
    return count(parts=[text(i=i, width=width) for i in range(STEPS)])


@task
def gate(parts: int) -> int:
    """Waits until the test creates the flag file (so the test can break things meanwhile)."""
    scratch = Path(os.environ["LF_FAULT_SCRATCH"])
    (scratch / "gate-open").touch()
    deadline = time.monotonic() + 60
    while not (scratch / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.02)
    return parts


@workflow
def gated(width: int = 4096) -> int:
    return gate(parts=count(parts=[text(i=i, width=width) for i in range(STEPS)]))


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- (a) full disk during an artifact write --------------------------------------------


@pytest.mark.parametrize("wf", [file_wf, table_wf], ids=["File", "Dataset"])
@pytest.mark.slow
def test_full_disk_during_an_artifact_write(tmpfs, scratch, tmp_path, monkeypatch, wf):
    store_fs = tmpfs("store", "4m")
    monkeypatch.setenv("LEDGERFLOW_STORE", str(store_fs.path))
    home = tmp_path / "home"

    with pytest.raises(ledgerflow.ExecutionFailed) as err:
        run(wf, {"mb": 8}, home=home, progress=False)  # 8 MiB into a 4 MiB store
    cause = err.value.__cause__
    assert isinstance(cause, StoreError), repr(cause)
    assert "No space left on device" in str(cause) and str(store_fs.path) in str(cause), str(cause)
    assert "No space left on device" in str(err.value)
    assert err.value.execution.status == "failed"

    # Nothing partial under a digest, no temp debris, and the ledger says what happened.
    all_objects_verify(store_fs.path)
    assert tmp_debris(store_fs.path) == []
    ledger = Ledger(home)
    assert ledger.verify().ok
    [summary] = ledger.executions()
    assert summary.status == "failed" and "No space left on device" in summary.error

    # The same store takes a run that fits.
    ok = run(wf, {"mb": 1}, home=home, progress=False)
    assert ok.status == "succeeded"
    assert ledger.verify().ok


# -- (b) full disk while a run journals its events --------------------------------------------


@pytest.mark.slow
def test_full_disk_during_the_final_journal_append(tmpfs, scratch, tmp_path, monkeypatch):
    # Room for the ledger, the next run's ~3 MiB journal and the WAL of moving it.
    home_fs = tmpfs("home", "16m")
    monkeypatch.setenv("LEDGERFLOW_STORE", str(tmp_path / "store"))  # only the ledger is on the small disk
    home = home_fs.path
    first = run(wide, {"width": 12}, home=home, progress=False)
    ledger = Ledger(home)
    rows_before = ledger.verify().rows
    ballast = home_fs.fill(leave=64 << 10)

    with pytest.raises(LedgerError) as err:
        run(wide, {"width": 8192}, home=home, progress=False)  # ~1 MiB of values to record
    message = str(err.value)
    assert "No space left on device" in message and str(home / "journal") in message, message
    assert "\n" not in message

    # Readers work on the full disk, with what the file holds (moving the journal needs room).
    report = ledger.verify()
    assert report.ok and report.rows >= rows_before
    assert first.id in {e.id for e in ledger.executions()}

    ballast.unlink()
    again = run(wide, {"width": 8192}, home=home, progress=False)
    assert again.status == "succeeded"
    report = ledger.verify()
    assert report.ok and report.rows > rows_before
    assert ledger.executions()[0].id == again.id and ledger.executions()[0].status == "succeeded"
    # What the failed run journaled before the disk filled is in the chain too, never half a record.
    statuses = {e.id: e.status for e in ledger.executions()}
    assert len(statuses) == 3 and statuses[first.id] == "succeeded"


@pytest.mark.slow
def test_a_disk_full_mid_run_then_freed_loses_nothing(tmpfs, scratch, tmp_path, monkeypatch):
    home_fs = tmpfs("home", "8m")
    monkeypatch.setenv("LEDGERFLOW_STORE", str(tmp_path / "store"))
    home = home_fs.path
    run(wide, {"width": 12}, home=home, progress=False)  # the ledger exists
    ballast = home_fs.fill(leave=64 << 10)

    recorder = Ledger(home, flush_interval=0.05)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.setdefault("ex", run(gated, {"width": 8192}, home=home,
                                                                           recorder=recorder, progress=False)))
    runner.start()
    try:
        wait_for(lambda: (scratch / "gate-open").exists(), "the gate step")
        # The background append has tried and failed (the error is kept, the events are kept).
        wait_for(lambda: isinstance(recorder._error, LedgerError), "a failed background append")
        assert "No space left on device" in str(recorder._error)
        ballast.unlink()
    finally:
        (scratch / "go").touch()
        runner.join(60)
    recorder.close()
    ex = result["ex"]
    assert ex.status == "succeeded"
    ledger = Ledger(home)
    assert ledger.verify().ok
    detail = ledger.execution(ex.id)
    assert detail.status == "succeeded"
    assert sum(s.status == "succeeded" for s in detail.steps) == STEPS + 2  # every step recorded


# -- (c) a read-only home --------------------------------------------------------------------


WF_FILE = """
from ledgerflow import task, workflow

@task
def square(i: int) -> int:
    return i * i

@workflow
def squares(n: int = 3) -> int:
    return square(i=n)
"""


@pytest.mark.parametrize("store_inside", [True, False], ids=["store-in-home", "store-elsewhere"])
@pytest.mark.slow
def test_a_read_only_home(tmpfs, scratch, tmp_path, monkeypatch, store_inside):
    home_fs = tmpfs("home", "16m")
    home = home_fs.path
    if not store_inside:
        monkeypatch.setenv("LEDGERFLOW_STORE", str(tmp_path / "store"))
    script = tmp_path / "ro_flow.py"
    script.write_text(WF_FILE)
    first = invoke(home, "run", f"{script}:squares", "-p", "n=2")
    assert first.exit_code == 0, first.output
    rows = Ledger(home).verify().rows  # (moves the run's journal into the file)
    before = {p.relative_to(home): p.stat().st_size for p in home.rglob("*") if p.is_file()}
    home_fs.remount("ro")
    try:
        result = invoke(home, "run", f"{script}:squares", "-p", "n=3")
        assert result.exit_code == 1
        errors = [ln for ln in result.output.splitlines() if ln.startswith("lineage: error:")]
        assert len(errors) == 1, result.output
        assert "Traceback" not in result.output
        assert "Read-only file system" in errors[0]
        # It names the place that refused the write: the store's temp file, or the journal.
        assert str(home / ("store" if store_inside else "journal")) in errors[0], errors[0]
        # Reading still works on a read-only home.
        assert invoke(home, "list").exit_code == 0
        verified = invoke(home, "verify")
        assert verified.exit_code == 0, verified.output
    finally:
        home_fs.remount("rw")
    after = {p.relative_to(home): p.stat().st_size for p in home.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written
    assert Ledger(home).verify().rows == rows
    assert invoke(home, "run", f"{script}:squares", "-p", "n=3").exit_code == 0
    assert Ledger(home).verify().ok


# -- (d) an artifact deleted or corrupted behind the engine's back ----------------------------


@task(cache=True)
def produce(n: int) -> File:
    path = Path(os.environ["LF_FAULT_SCRATCH"]) / f"produced-{uuid.uuid4().hex[:8]}.bin"
    path.write_bytes(bytes(range(256)) * n)
    return path


@task(cache=True)
def consume(f: File) -> int:
    return sum(f.read_bytes())


@task(cache=True)
def consume_path(f: File) -> int:
    return len(f.path.read_bytes())


@workflow
def produce_consume(n: int = 64) -> int:
    return consume(f=produce(n=n))


@workflow
def consume_only(f: File) -> int:
    return consume_path(f=f)


def damage(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    else:  # one bit flipped: same size, so nothing but a hash notices
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["deleted", "corrupted"])
@pytest.mark.slow
def test_a_damaged_artifact_is_named_by_verify_consumers_and_cache_reuse(scratch, tmp_path, how):
    home = tmp_path / "home"
    first = run(produce_consume, home=home, progress=False)
    made: File = first.steps["produce"].outputs["return"]
    store = Store.open(home / "store")
    where = store.local_path(made.digest)
    damage(where, how)
    expected_place = str(where) if how == "corrupted" else str(home / "store")

    # `lineage verify` names the digest and where, and exits 1.
    result = invoke(home, "verify")
    assert result.exit_code == 1
    assert made.digest in result.output and expected_place in result.output, result.output
    assert ("missing" if how == "deleted" else "corrupt") in result.output
    report = Ledger(home).verify()
    assert not report.ok and report.problems == ()  # the chain is intact; the store is not
    [problem] = report.object_problems
    assert problem.digest == made.digest
    if how == "deleted":
        assert f"{first.id}:produce" in problem.detail

    # A consumer that is handed the artifact says which digest and where.
    with pytest.raises(ledgerflow.ExecutionFailed) as err:
        run(consume_only, {"f": made}, home=home, progress=False)
    cause = err.value.__cause__
    assert isinstance(cause, ObjectNotFound if how == "deleted" else IntegrityError), repr(cause)
    assert made.digest in str(cause) and expected_place in str(cause)

    # Cache reuse notices, says so, runs the step again, and the re-run repairs the store.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = run(produce_consume, home=home, progress=False)
    said = [str(w.message) for w in caught if "cached outputs" in str(w.message)]
    assert len(said) == 1 and made.digest in said[0] and expected_place in said[0], said
    assert f"{first.id}:produce" in said[0]
    assert again.steps["produce"].status == "succeeded"
    assert again.steps["consume"].status == "cached"  # its input has the same digest as before
    store.verify(made.digest)
    assert Ledger(home).verify().ok


@task
def tree(files: int) -> Directory:
    root = Path(os.environ["LF_FAULT_SCRATCH"]) / f"tree-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    for i in range(files):
        (root / f"part-{i}.txt").write_text(f"part {i}\n" * 100)
    return root


@workflow
def tree_wf(files: int = 3) -> Directory:
    return tree(files=files)


def test_a_file_deleted_from_inside_a_directory_is_named(scratch, tmp_path):
    home = tmp_path / "home"
    ex = run(tree_wf, home=home, progress=False)
    handle: Directory = ex.outputs
    store = Store.open(home / "store")
    entry = [e for e in store.get_manifest(handle.digest).entries if e.path == "part-1.txt"][0]
    store.local_path(entry.digest).unlink()
    report = Ledger(home).verify()
    assert not report.ok
    [problem] = report.object_problems
    assert problem.digest == entry.digest
    assert "part-1.txt" in problem.detail and handle.digest in problem.detail and str(home / "store") in problem.detail


def test_gc_removals_are_not_reported_as_missing(scratch, tmp_path):
    home = tmp_path / "home"
    run(produce_consume, {"n": 1}, home=home, progress=False)
    run(produce_consume, {"n": 2}, home=home, progress=False)
    ledger = Ledger(home)
    report = ledger.gc(keep_last=1)
    assert report.removed  # the first execution's objects went, recorded in gc_log
    assert ledger.verify().ok


# -- (e) the S3 server stopping mid-run ----------------------------------------------------


@task
def s3_first(n: int) -> Dataset:
    return pa.table({"x": list(range(n))})


@task
def s3_second(data: Dataset) -> File:
    scratch = Path(os.environ["LF_FAULT_SCRATCH"])
    rows = data.to_arrow().num_rows
    (scratch / "gate-open").touch()
    deadline = time.monotonic() + 60
    while not (scratch / "go").exists():  # the test stops the server, then says go
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.02)
    out = scratch / "report.txt"
    out.write_text(f"rows={rows}\n")
    return out  # stored when the step returns: the server is down by then


@workflow
def s3_midrun(n: int = 100) -> File:
    return s3_second(data=s3_first(n=n))


def test_the_s3_server_stopping_mid_run(s3_server, scratch, tmp_path, monkeypatch):
    from conftest import start_moto_server

    server, endpoint = start_moto_server()  # a server of this test's own, to stop
    try:
        url = s3_server.url(f"faults-{uuid.uuid4().hex[:8]}")  # moto shares buckets between servers in a process
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("LEDGERFLOW_STORE", url)
        monkeypatch.setenv("LEDGERFLOW_CACHE", str(tmp_path / "cache"))
        home = tmp_path / "home"
        outcome: dict = {}

        def go():
            try:
                outcome["ex"] = run(s3_midrun, home=home, progress=False)
            except BaseException as e:  # handed to the test thread
                outcome["error"] = e

        runner = threading.Thread(target=go)
        runner.start()
        wait_for(lambda: (scratch / "gate-open").exists() or not runner.is_alive(), "the second step")
        server.stop()
        stopped = time.monotonic()
        (scratch / "go").touch()
        runner.join(60)
        assert not runner.is_alive()
        took = time.monotonic() - stopped
    finally:
        server.stop()

    error = outcome.get("error")
    assert isinstance(error, ledgerflow.ExecutionFailed), repr(outcome)
    cause = error.__cause__
    assert isinstance(cause, StoreError), repr(cause)
    assert url in str(cause) and f"after {retry.TRIES} tries" in str(cause), str(cause)
    assert took < 30  # bounded retries, not a hang
    ledger = Ledger(home)
    assert ledger.verify(store=False).ok  # the ledger is local; the store is unreachable
    [summary] = ledger.executions()
    assert summary.status == "failed" and url in summary.error
    steps = {s.step: s.status for s in ledger.execution(summary.id).steps}
    assert steps == {"s3_first": "succeeded", "s3_second": "failed"}
    # What was written before the outage is whole, as the server that stayed up shows.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    assert Ledger(home).verify().ok


# -- nothing read from the store or the ledger executes code ----------------------------------


class Payload:
    """Unpickling this writes the marker file: proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def live_payload(marker: Path) -> bytes:
    """A pickle that really does write `marker` when loaded (checked, then the marker removed)."""
    data = pickle.dumps(Payload(marker), protocol=2)
    pickle.loads(data)
    assert marker.exists(), "the payload must be live for the tests below to prove anything"
    marker.unlink()
    return data


@task(cache=True)
def value_step(n: int) -> list[int]:
    return list(range(n))


@task(cache=True)
def table_step(n: int) -> Dataset:
    return pa.table({"x": list(range(n))})


@workflow
def planted(n: int = 5) -> list[int]:
    table_step(n=n)
    return value_step(n=n)


@pytest.mark.slow
def test_pickles_planted_in_the_ledger_never_run(scratch, tmp_path):
    marker = tmp_path / "MARKER"
    payload = live_payload(marker)
    home = tmp_path / "home"
    ex = run(planted, home=home, progress=False)
    value_digest = ex.steps["value_step"].outputs["return"]
    ledger = Ledger(home)
    ledger.sync()  # the run's journal moved into the file the payloads go into
    # Plant payloads where the ledger keeps values and parameters: raw pickle bytes (as text,
    # the only way into a VARCHAR), base64, and a jsonpickle-style object naming a function.
    import base64

    variants = [payload.decode("latin-1"), base64.b64encode(payload).decode(),
                json.dumps({"py/reduce": [{"py/function": "builtins.exec"}, {"py/tuple": ["import os"]}]})]
    con = duckdb.connect(str(ledger.path))
    try:
        for i, text in enumerate(variants):
            con.execute("UPDATE artifacts SET value = ? WHERE kind = 'value' AND first_step <> '@params' "
                        "AND value IS NOT NULL AND seq = (SELECT min(seq) FROM artifacts WHERE kind = 'value' "
                        "AND first_step <> '@params')", [text])
            con.execute("UPDATE execution_log SET params = ?, environment = ? WHERE workflow IS NOT NULL",
                        [text, text])
            for args in (["list", "--json"], ["show", ex.id], ["show", ex.id, "--json"],
                         ["query", "upstream", f"{ex.id}:value_step", "--json"],
                         ["query", "downstream", f"{ex.id}:table_step"], ["verify"],
                         ["query", "sql", "SELECT value, params FROM artifacts, executions"], ["replay", ex.id]):
                con.close()
                result = invoke(home, *args)
                assert "Traceback" not in result.output, (args, result.output)
                assert not marker.exists(), f"{args} ran a planted payload"
                con = duckdb.connect(str(ledger.path))
            # Cache reuse decodes a recorded value: a planted one is refused, the step runs again.
            con.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                again = run(planted, home=home, progress=False)
            assert again.outputs == [0, 1, 2, 3, 4]
            assert not marker.exists()
            con = duckdb.connect(str(ledger.path))
    finally:
        con.close()
    assert not Ledger(home).verify().ok  # and the edits themselves are caught
    assert not marker.exists()


def test_pickles_planted_in_the_store_never_run(scratch, tmp_path):
    marker = tmp_path / "MARKER"
    payload = live_payload(marker)
    store = Store.open(tmp_path / "store")
    digest = store.put_bytes(payload)  # a well-formed object: its digest matches its bytes

    # Read as each kind of handle, the bytes are only ever bytes, Arrow IPC or JSON.
    file = File(digest=digest, size=len(payload), store_url=store.url)
    assert file.read_bytes() == payload and file.path.read_bytes() == payload
    with pytest.raises(Exception):
        Dataset(digest=digest, size=len(payload), store_url=store.url).to_arrow()
    with pytest.raises(Exception):
        Dataset(digest=digest, size=len(payload), store_url=store.url).to_pandas()
    for kind in (Directory, ledgerflow.Model):
        with pytest.raises(ValueError):
            kind(digest=digest, size=len(payload), store_url=store.url).path  # not a manifest
    with pytest.raises(ValueError):
        store.get_manifest(digest)

    # An Arrow stream whose column claims pyarrow's old pickled extension type
    # (CVE-2023-47248) with the payload as its metadata: read as plain binary.
    storage = pa.array([b"x"], pa.binary())
    field = pa.field("x", pa.binary(), metadata={b"ARROW:extension:name": b"arrow.py_extension_type",
                                                  b"ARROW:extension:metadata": payload})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([field])) as w:
        w.write_table(pa.Table.from_arrays([storage], schema=pa.schema([field])))
    ipc = sink.getvalue().to_pybytes()
    with store.writer() as wr:
        wr.write(ipc)
    sneaky = Dataset(digest=wr.digest, size=wr.size, store_url=store.url)
    assert sneaky.to_arrow().column("x").to_pylist() == [b"x"]
    sneaky.to_pandas()
    assert not marker.exists()


@pytest.mark.slow
def test_a_replay_runs_only_the_recorded_code(tmp_path, monkeypatch):
    """Replay imports the execution's code snapshot: it must be the code the ledger's digest
    names. A same-size edit of the store's shared checkout (only checked by sizes) or of the
    object itself must never run."""
    marker = tmp_path / "MARKER"
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "replayed_flow.py").write_text(WF_FILE + "# " + "padding " * 20 + "\n")
    monkeypatch.syspath_prepend(str(code_dir))
    import importlib

    module = importlib.import_module("replayed_flow")
    home = tmp_path / "home"
    ex = run(module.squares, home=home, progress=False)
    store = Store.open(home / "store")
    snapshot = Ledger(home).execution(ex.id).code_digest
    [entry] = [e for e in store.get_manifest(snapshot).entries if e.path == "replayed_flow.py"]
    original = store.get_bytes(entry.digest)
    evil = f"open({str(marker)!r}, 'w').write('ran')\n".encode() + WF_FILE.encode()
    evil += b"#" * (len(original) - len(evil) - 1) + b"\n"
    assert len(evil) == len(original)

    shared = store.checkout(snapshot)  # the shared checkout, edited in place
    target = shared / "replayed_flow.py"
    target.chmod(0o644)
    target.write_bytes(evil)
    (shared / "__pycache__").mkdir(exist_ok=True)
    r = replay(ex.id, home=home)
    assert r.identical, r.reason
    assert not marker.exists(), "replay ran code from the shared checkout"

    path = store.local_path(entry.digest)  # now the object itself
    path.chmod(0o644)
    path.write_bytes(evil)
    r = replay(ex.id, home=home)
    assert not r.identical and entry.digest in r.reason and "corrupt" in r.reason
    assert not marker.exists(), "replay ran code that does not match its digest"
