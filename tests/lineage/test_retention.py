"""Store retention: `lineage tag ID keep`, and `gc`, which removes what no kept execution needs."""

from __future__ import annotations

import json
import os
import textwrap
import time
import uuid
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from click.testing import CliRunner

from ledgerflow import File, Ledger, register, replay, run
from ledgerflow.engine.loading import import_file
from ledgerflow.errors import RetentionError
from ledgerflow.lineage import retention
from ledgerflow.app.cli import cli
from ledgerflow.store import Store

PIPELINE = '''
import pathlib, tempfile
from ledgerflow import Directory, File, Model, task, workflow

def _dir(n, names):
    out = pathlib.Path(tempfile.mkdtemp())
    for name in names:
        (out / name).write_text(f"{name} of run {n}")
    return out

@task(cache=True)
def make(n: int) -> File:
    path = pathlib.Path(tempfile.mkdtemp()) / "data.txt"
    path.write_text(f"data of run {n}")
    return File.from_path(path)

@task(cache=True)
def pack(n: int) -> Directory:
    return Directory.from_path(_dir(n, ["a.txt", "b.txt"]))

@task(cache=True)
def train(f: File, d: Directory) -> Model["toy"]:
    return Model.from_path(_dir(f.read_bytes().decode(), ["weights.bin"]), flavor="toy")

@workflow
def pipeline(n: int = 0) -> Model["toy"]:
    return train(f=make(n=n), d=pack(n=n))

@task
def size(f: File) -> int:
    return len(f.read_bytes())

@workflow
def with_file(f: File) -> int:
    return size(f=f)
'''


@pytest.fixture
def mod(tmp_path):
    path = tmp_path / f"ret_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(PIPELINE))
    return import_file(path)


def cli_run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def objects_of(led: Ledger, store: Store, execution_id: str) -> set:
    """Every store object an execution references: its handles, their manifest entries, its code snapshot."""
    detail = led.execution(execution_id)
    out = {detail.code_digest} | {e.digest for e in store.get_manifest(detail.code_digest).entries}
    for step in detail.steps:
        for b in step.inputs + step.outputs:
            if b.artifact.kind in ("file", "dataset"):
                out.add(b.artifact.digest)
            elif b.artifact.kind in ("directory", "model"):
                out.add(b.artifact.digest)
                out |= {e.digest for e in store.get_manifest(b.artifact.digest).entries}
    return out


@pytest.fixture
def four(home, mod):
    """Four executions, oldest first, each with its own File, Directory and Model; one code snapshot."""
    ids = [run(mod.pipeline, {"n": n}).id for n in range(4)]
    led = Ledger(home)
    store = Store.open(home / "store")
    refs = {eid: objects_of(led, store, eid) for eid in ids}
    return led, store, ids, refs


def only(refs: dict, eid: str) -> set:
    """Objects of one execution no other references."""
    others = set().union(*(r for e, r in refs.items() if e != eid))
    return refs[eid] - others


@pytest.mark.slow
def test_gc_keeps_the_newest_and_the_tagged_and_removes_the_rest(four, home):
    led, store, (e0, e1, e2, e3), refs = four
    led.tag(e0, "keep", why="the paper's numbers")
    before = set(store.iter_digests())
    report = led.gc(keep_last=2, older_than_days=0)
    gone = only(refs, e1)
    assert len(gone) == 6  # its data file, directory manifest + 2 files, model manifest + 1 file
    assert {r.digest for r in report.removed} == gone
    assert set(store.iter_digests()) == before - gone
    assert set(report.kept_executions) == {e0, e2, e3} and report.unkept_executions == (e1,)
    assert all(r.reason == "unkept" for r in report.removed)
    assert report.bytes_removed == sum(r.size for r in report.removed) > 0
    # The shared code snapshot stays: kept executions need it.
    assert store.has(led.execution(e1).code_digest)
    # Each removal is in the ledger, with who and the policy, and the chain still verifies.
    rows = led.sql("SELECT digest, size, reason, removed_at, who, policy FROM gc_log ORDER BY seq").to_pylist()
    assert {r["digest"] for r in rows} == gone
    policy = json.loads(rows[0]["policy"])
    assert policy["keep_last"] == 2 and policy["older_than_days"] == 0 and policy["keep_tag"] == "keep"
    assert "@" in rows[0]["who"] and rows[0]["removed_at"] is not None
    assert led.verify().ok
    # The lineage of what was collected is still there; only its bytes are gone.
    assert led.execution(e1).status == "succeeded"
    # A second gc with the same policy finds nothing more to do.
    assert led.gc(keep_last=2, older_than_days=0).removed == ()


@pytest.mark.slow
def test_a_cached_output_that_was_collected_is_a_miss(four, home, mod):
    led, store, (e0, e1, e2, e3), refs = four
    led.gc(keep_last=1, older_than_days=0)
    with pytest.warns(UserWarning, match="cannot be used"):
        again = run(mod.pipeline, {"n": 0})
    assert again.steps["make"].status == "succeeded"  # ran again rather than reuse what is gone
    assert led.execution(again.id).outputs[0].artifact.digest == led.execution(e0).outputs[0].artifact.digest


@pytest.mark.slow
def test_older_than_keeps_recent_executions(four, home):
    led, store, ids, refs = four
    now = datetime.now(timezone.utc)
    # Everything ran in the last minute: a 1-day policy keeps it all, whatever keep_last says.
    report = retention.collect(led, retention.Policy(keep_last=0, older_than_days=1), dry_run=True, now=now)
    assert report.removed == () and set(report.kept_executions) == set(ids)
    # Two days later the same policy keeps nothing but what keep_last asks for.
    later = now + timedelta(days=2)
    report = retention.collect(led, retention.Policy(keep_last=1, older_than_days=1), dry_run=True, now=later)
    assert report.kept_executions == (ids[3],) and set(report.unkept_executions) == set(ids[:3])
    assert {r.digest for r in report.removed} == (refs[ids[0]] | refs[ids[1]] | refs[ids[2]]) - refs[ids[3]]


@pytest.mark.slow
def test_dry_run_removes_and_records_nothing(four, home):
    led, store, ids, refs = four
    before = set(store.iter_digests())
    out = cli_run(home, "gc", "--keep-last", "1", "--older-than", "0", "--dry-run", "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["dry_run"] is True and len(report["removed"]) > 0
    assert {r["digest"] for r in report["removed"]} == set().union(*(only(refs, e) for e in ids[:3]))
    assert all(r["removed_at"] is None for r in report["removed"])
    assert set(store.iter_digests()) == before
    assert led.sql("SELECT count(*) AS n FROM gc_log").to_pylist()[0]["n"] == 0
    human = cli_run(home, "gc", "--keep-last", "1", "--older-than", "0", "--dry-run")
    assert "would remove" in human.output and set(store.iter_digests()) == before


@pytest.mark.slow
def test_registered_models_are_never_removed(four, home):
    led, store, (e0, e1, e2, e3), refs = four
    model = led.execution(e0).outputs[0].artifact
    register("toy", _model_handle(model, store), why="the one we shipped")
    led.gc(keep_last=0, older_than_days=0)
    assert store.has(model.digest)
    assert all(store.has(e.digest) for e in store.get_manifest(model.digest).entries)
    assert not any(store.has(d) for d in only(refs, e0) - {model.digest} - _entries(store, model.digest))
    assert led.verify().ok


def _model_handle(artifact, store):
    from ledgerflow.types import Model

    return Model["toy"](digest=artifact.digest, size=artifact.size, store_url=store.url, flavor="toy")


def _entries(store, digest):
    return {e.digest for e in store.get_manifest(digest).entries}


@pytest.mark.slow
def test_tags_keep_until_removed(four, home):
    led, store, (e0, e1, e2, e3), refs = four
    assert led.tag(e1[:10], "keep") == ("keep",)  # a unique prefix will do
    assert led.tag(e1, "keep") == ("keep",)  # tagging twice changes nothing
    assert led.tag(e1, "baseline") == ("baseline", "keep")
    led.gc(keep_last=0, older_than_days=0)
    assert all(store.has(d) for d in refs[e1])
    assert not any(store.has(d) for d in only(refs, e0))
    assert led.tag(e1, "keep", remove=True, why="superseded") == ("baseline",)
    with pytest.raises(RetentionError, match="not tagged 'keep'"):
        led.tag(e1, "keep", remove=True)
    led.gc(keep_last=0, older_than_days=0)
    assert not any(store.has(d) for d in only(refs, e1))
    history = led.sql("SELECT tag, action, why FROM tag_log ORDER BY seq").to_pylist()
    assert history == [{"tag": "keep", "action": "add", "why": None}, {"tag": "baseline", "action": "add", "why": None},
                       {"tag": "keep", "action": "remove", "why": "superseded"}]
    assert led.tags(e1) == ("baseline",)
    assert led.verify().ok


def test_orphans_are_removed_once_older_than_an_hour(home, mod):
    run(mod.pipeline, {"n": 0})
    led = Ledger(home)
    store = Store.open(home / "store")
    orphan = store.put_bytes(b"written by a run that crashed before recording it")
    report = led.gc(keep_last=1)
    assert report.removed == () and report.young_orphans == 1 and store.has(orphan)
    path = store.local_path(orphan)
    old = time.time() - 2 * 3600
    os.utime(path, (old, old))
    report = led.gc(keep_last=1)
    assert [(r.digest, r.reason) for r in report.removed] == [(orphan, "orphan")]
    assert not store.has(orphan)
    assert led.collected(orphan).reason == "orphan"


@pytest.mark.slow
def test_replaying_a_collected_execution_says_it_was_collected(home, mod, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("one")
    second.write_text("two")
    old = run(mod.with_file, {"f": File.from_path(first)})
    run(mod.with_file, {"f": File.from_path(second)})
    led = Ledger(home)
    led.gc(keep_last=1, older_than_days=0)
    r = replay(old.id)
    assert r.verdict == "could not replay" and r.id is None
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert "input 'f'" in r.reason and f"was collected by `lineage gc` on {day}" in r.reason, r.reason
    # Removed behind gc's back, it says so too, without blaming gc.
    third = tmp_path / "third.txt"
    third.write_text("three")
    f3 = File.from_path(third)
    ex = run(mod.with_file, {"f": f3})
    path = Store.open(home / "store").local_path(f3.digest)
    path.chmod(0o644)
    path.unlink()
    assert "no `lineage gc` recorded removing it" in replay(ex.id).reason


@pytest.mark.slow
def test_tag_and_gc_cli(four, home):
    led, store, (e0, e1, e2, e3), refs = four
    out = cli_run(home, "tag", e0, "keep", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout) == {"execution_id": e0, "tags": ["keep"]}
    assert cli_run(home, "tag", e0).output.strip() == f"{e0}: keep"
    bad = cli_run(home, "tag", e0, "bad tag")
    assert bad.exit_code == 2 and "tag 'bad tag'" in bad.stderr
    missing = cli_run(home, "tag", e1, "--remove", "keep")
    assert missing.exit_code == 2 and "not tagged 'keep'" in missing.stderr
    assert cli_run(home, "tag", "nonexistent", "keep").exit_code == 2
    no_policy = cli_run(home, "gc")
    assert no_policy.exit_code == 2 and "needs a policy" in no_policy.stderr
    out = cli_run(home, "gc", "--keep-last", "1", "--older-than", "0", "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert set(report["kept_executions"]) == {e0, e3}
    assert {r["digest"] for r in report["removed"]} == only(refs, e1) | only(refs, e2)
    assert all(r["removed_at"].endswith("Z") for r in report["removed"])
    human = cli_run(home, "gc", "--keep-last", "1", "--older-than", "0")
    assert human.exit_code == 0 and "removed 0 objects" in human.output
    assert cli_run(home, "verify").exit_code == 0


@pytest.mark.slow
def test_gc_refuses_to_run_on_an_unreadable_kept_manifest(four, home):
    led, store, (e0, e1, e2, e3), refs = four
    manifest = led.execution(e3).outputs[0].artifact.digest
    path = store.local_path(manifest)
    path.chmod(0o644)
    path.write_bytes(b"not a manifest")
    before = set(store.iter_digests())
    with pytest.raises(RetentionError, match="nothing was removed"):
        led.gc(keep_last=1, older_than_days=0)
    assert set(store.iter_digests()) == before


@pytest.mark.slow
def test_gc_on_a_version_1_ledger(home, mod):
    from ledgerflow.lineage import schema

    ids = [run(mod.pipeline, {"n": n}).id for n in range(2)]
    led = Ledger(home)
    led.sync()  # the runs' journals moved into the file
    con = duckdb.connect(str(led.path))
    for view in ("models", "aliases", "tags"):
        con.execute(f"DROP VIEW {view}").fetchall()
    for t in schema.V2_TABLES:
        con.execute(f"DROP TABLE {t.name}").fetchall()
    con.execute("DELETE FROM meta").fetchall()
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')").fetchall()
    con.close()
    report = led.gc(keep_last=1, older_than_days=0)
    assert report.unkept_executions == (ids[0],) and report.removed
    assert led.sql("SELECT count(*) AS n FROM gc_log").to_pylist()[0]["n"] == len(report.removed)
    assert led.verify().ok


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path):
    if request.param == "local":
        return Store.open(tmp_path / "store")
    s3 = request.getfixturevalue("s3_server")
    return Store.open(s3.url(f"gc-{uuid.uuid4().hex[:8]}"))


@pytest.mark.slow
def test_store_remove_and_modified_at(any_store, tmp_path):
    digest = any_store.put_bytes(b"to be collected")
    stamp = any_store.modified_at(digest)
    assert stamp is not None and abs(stamp - time.time()) < 300
    any_store.local_path(digest)  # a remote store's node cache holds a copy now
    assert any_store.remove(digest) is True
    assert not any_store.has(digest) and any_store.modified_at(digest) is None
    assert any_store.remove(digest) is False  # already gone: nothing to do, no error
    assert list(any_store.iter_digests()) == []


def test_removing_a_manifest_removes_its_checkout(tmp_path):
    store = Store.open(tmp_path / "store")
    src = tmp_path / "tree"
    src.mkdir()
    (src / "a.txt").write_text("a")
    manifest = store.put_directory(src)
    checkout = store.checkout(manifest)
    assert checkout.is_dir()
    assert store.remove(manifest) and not checkout.exists()
