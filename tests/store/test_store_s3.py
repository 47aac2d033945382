"""The store on S3: a real S3-compatible server (moto's server mode) on 127.0.0.1, through s3fs.

Nothing here mocks an S3 call: every request goes over HTTP to the server the
`s3_server` fixture starts. Requests are counted from the server's own access
log, and objects are inspected or damaged with boto3 behind the store's back.
"""

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pyarrow as pa
import pytest

import ledgerflow
from ledgerflow import Dataset, File, MemoryRecorder, task, workflow
from ledgerflow.errors import IntegrityError, ObjectNotFound, StoreError
from ledgerflow.store import Store, digest_bytes, retry, using
from ledgerflow.store.layout import object_key

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")


@pytest.fixture
def prefix():
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh read-through cache for the test; `cache.fresh()` gives another (a second node)."""

    class Cache:
        n = 0

        def fresh(self):
            Cache.n += 1
            path = tmp_path / f"cache{Cache.n}"
            monkeypatch.setenv("LEDGERFLOW_CACHE", str(path))
            return path

    c = Cache()
    c.root = c.fresh()
    return c


@pytest.fixture
def store(s3_server, prefix, cache):
    return Store.open(s3_server.url(prefix))


def keys(s3_server, prefix):
    out = []
    for page in s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=s3_server.bucket, Prefix=prefix + "/"):
        out += [o["Key"][len(prefix) + 1 :] for o in page.get("Contents", [])]
    return sorted(out)


def object_keys(s3_server, prefix):
    return [k for k in keys(s3_server, prefix) if k.startswith("objects/")]


class RequestLog(logging.Handler):
    """The server's access log: which requests reached it."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def gets(self, prefix):
        return [ln for ln in self.lines if f'"GET /ledgerflow-test/{prefix}/objects/' in ln]


@pytest.fixture
def requests():
    log = logging.getLogger("werkzeug")
    handler, level = RequestLog(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def spool_files(cache_root):
    tmp = cache_root / "tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


# -- round trips ------------------------------------------------------------------


def test_bytes_and_files_round_trip_and_dedupe(store, s3_server, prefix, tmp_path, cache):
    d = store.put_bytes(b"remote bytes")
    assert store.has(d) and store.size(d) == 12
    assert store.get_bytes(d) == b"remote bytes"
    store.verify(d)
    with store.open(d) as f:
        assert f.read() == b"remote bytes"
    assert object_keys(s3_server, prefix) == [object_key(d)]

    # The same content again, as bytes, as a file, through a writer: still one object.
    assert store.put_bytes(b"remote bytes") == d
    src = tmp_path / "f.bin"
    src.write_bytes(b"remote bytes")
    assert store.put_file(src) == (d, 12)
    with store.writer() as w:
        w.write(b"remote ")
        w.write(b"bytes")
    assert w.digest == d
    assert keys(s3_server, prefix) == [object_key(d)]  # no temp keys either
    assert list(store.iter_digests()) == [d]
    assert spool_files(cache.root) == []

    big = os.urandom(3 << 20)
    digest, size = store.put_file(_write(tmp_path / "big", big))
    assert size == len(big) and store.get_bytes(digest) == big
    assert list(store.iter_digests()) == sorted([d, digest])
    with pytest.raises(ObjectNotFound, match=store.url):
        store.get_bytes(digest_bytes(b"never stored"))
    assert not store.has(digest_bytes(b"never stored"))


def _write(path, data):
    path.write_bytes(data)
    return path


def test_directory_manifest(store, s3_server, prefix, tmp_path, cache):
    tree = tmp_path / "tree"
    files = {"README.md": b"hello", "bin/run.sh": b"#!/bin/sh\necho hi\n", "data/a.bin": b"\0" * 100,
             "data/copy.bin": b"\0" * 100}
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    os.chmod(tree / "bin/run.sh", 0o755)
    m = store.put_directory(tree)
    manifest = store.get_manifest(m)
    assert sorted(e.path for e in manifest.entries) == sorted(files)
    assert len(object_keys(s3_server, prefix)) == 3 + 1  # duplicates stored once, plus the manifest

    cache.fresh()  # another node checks it out
    fresh = Store.open(store.url)
    out = fresh.checkout(m)
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert os.access(out / "bin/run.sh", os.X_OK)
    assert fresh.checkout(m) == out
    private = fresh.checkout(m, tmp_path / "mine")
    assert (private / "data/a.bin").read_bytes() == b"\0" * 100


def test_dataset_handle(s3_server, prefix, cache):
    table = pa.table({"x": list(range(1000)), "y": [str(i % 7) for i in range(1000)]})
    with using(Store.open(s3_server.url(prefix))) as st:
        ds = Dataset.from_arrow(table)
    assert ds.store_url == s3_server.url(prefix) and ds.num_rows == 1000
    assert object_keys(s3_server, prefix) == [object_key(ds.digest)]
    cache.fresh()  # read it on "another node"
    assert ds.to_arrow().equals(table)
    assert st.local_path(ds.digest).is_relative_to(cache.root.parent)


# -- integrity --------------------------------------------------------------------


@pytest.mark.parametrize("damage", [b"To be damaged", b"truncated"])
def test_corrupted_object_is_caught_on_read(store, s3_server, prefix, cache, damage):
    d = store.put_bytes(b"to be damaged")
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{object_key(d)}", Body=damage)

    for read in (store.verify, store.get_bytes):
        with pytest.raises(IntegrityError) as e:
            read(d)
        assert e.value.digest == d and d in str(e.value)
        assert e.value.location == f"{store.url}/{object_key(d)}" and store.url in str(e.value)

    root = cache.fresh()  # a node that has no copy yet downloads the damaged bytes
    other = Store.open(store.url)
    with pytest.raises(IntegrityError) as e:
        other.local_path(d)
    assert e.value.digest == d and store.url in str(e.value)
    assert not (root.exists() and any(p.is_file() for p in (root.glob("*/objects/**/*")))), "a corrupt copy was cached"
    assert spool_files(next(root.iterdir())) == []

    # Putting the content again repairs a damaged object of a different size.
    store.put_bytes(b"to be damaged")
    if len(damage) != len(b"to be damaged"):
        assert other.get_bytes(d) == b"to be damaged"


# -- the read-through cache ---------------------------------------------------------


def test_read_through_cache_downloads_once_per_node(store, s3_server, prefix, cache, requests):
    data = os.urandom(1 << 20)
    d = store.put_bytes(data)
    assert store.local_path(d).read_bytes() == data
    assert requests.gets(prefix) == [], "the producer's node keeps what it wrote"

    root = cache.fresh()
    node = Store.open(store.url)
    first = node.local_path(d)
    assert first.is_relative_to(root) and first.read_bytes() == data
    assert len(requests.gets(prefix)) == 1
    stat = first.stat()
    again = Store.open(store.url)  # a new Store object on the same node
    assert again.local_path(d) == first and again.local_path(d, verify=True) == first
    with again.open(d) as f:
        assert f.read() == data
    assert len(requests.gets(prefix)) == 1
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    # Many steps of one node asking at once: one download between them.
    cache.fresh()
    node = Store.open(store.url)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(node.local_path(d))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1 and len(paths) == 8
    assert len(requests.gets(prefix)) == 2

    # A damaged cache copy is noticed (verify=True) and fetched again.
    path = paths[0]
    os.chmod(path, 0o644)
    path.write_bytes(b"x" * len(data))
    assert node.local_path(d, verify=True).read_bytes() == data
    assert len(requests.gets(prefix)) == 3


# -- atomic publication -----------------------------------------------------------


def test_failed_write_leaves_nothing(store, s3_server, prefix, cache):
    with pytest.raises(RuntimeError):
        with store.writer() as w:
            w.write(b"never")
            raise RuntimeError("the step failed mid-write")
    assert not store.has(digest_bytes(b"never"))
    assert keys(s3_server, prefix) == [] and spool_files(cache.root) == []


_CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import s3fs.core
    from ledgerflow.store import Store, remote

    remote.UPLOAD_PART_SIZE = 5 << 20
    real_call = s3fs.core.S3FileSystem._call_s3

    async def call_s3(self, method, *args, **kwargs):
        out = await real_call(self, method, *args, **kwargs)
        if method == "upload_part":  # one part is on the server: die, as a killed node does
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    s3fs.core.S3FileSystem._call_s3 = call_s3
    Store.open(sys.argv[1]).put_bytes(bytes(range(256)) * (41 << 10))
    """
)


def test_upload_killed_midway_leaves_nothing_under_the_digest(store, s3_server, prefix, cache):
    data = bytes(range(256)) * (41 << 10)  # 10.25 MiB: a multipart upload of 5 MiB parts
    digest = digest_bytes(data)
    child = subprocess.run([sys.executable, "-c", _CRASHING_WRITER, store.url], capture_output=True, timeout=60)
    assert child.returncode == -9, child.stderr.decode()[-2000:]

    client = s3_server.client()
    final = f"{prefix}/{object_key(digest)}"
    uploads = client.list_multipart_uploads(Bucket=s3_server.bucket, Prefix=prefix).get("Uploads", [])
    assert [u["Key"] for u in uploads] == [final], "the child did not die mid-upload"
    assert not store.has(digest) and keys(s3_server, prefix) == []
    with pytest.raises(ObjectNotFound):
        Store.open(store.url).local_path(digest)
    for u in uploads:  # what a bucket lifecycle rule does to abandoned uploads
        client.abort_multipart_upload(Bucket=s3_server.bucket, Key=u["Key"], UploadId=u["UploadId"])

    assert store.put_bytes(data) == digest
    store.verify(digest)
    assert object_keys(s3_server, prefix) == [object_key(digest)]


# -- a server that is down --------------------------------------------------------


@pytest.fixture
def doomed_s3(s3_server, monkeypatch):
    """A second server (sharing the first one's buckets: moto keeps state per process) that a test can stop."""
    from conftest import start_moto_server

    server, endpoint = start_moto_server()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    yield server
    server.stop()  # idempotent enough: stopping a stopped server is a no-op


def test_server_down_is_a_clear_error_after_bounded_retries(doomed_s3, s3_server, prefix, cache, monkeypatch):
    store = Store.open(s3_server.url(prefix))
    before = store.put_bytes(b"written before the outage")
    doomed_s3.stop()

    started = time.monotonic()
    with pytest.raises(StoreError) as e:
        store.put_bytes(b"written during the outage")
    assert time.monotonic() - started < 10
    message = str(e.value)
    assert store.url in message and f"after {retry.TRIES} tries" in message
    assert "Connect" in message  # says why: the endpoint refused the connection

    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0.01)  # the same again for the other paths, faster

    with pytest.raises(StoreError, match=store.url):
        with store.writer() as w:
            w.write(b"streamed during the outage")
    # Past the existence check, the upload itself fails the same way.
    with monkeypatch.context() as m:
        m.setattr(type(store._backend), "size_of", lambda self, digest: None)
        with pytest.raises(StoreError, match=f"uploading an object failed in the store at {store.url}"):
            store.put_bytes(b"uploaded during the outage")
    cache.fresh()
    with pytest.raises(StoreError, match=store.url):
        Store.open(store.url).local_path(before)
    with pytest.raises(StoreError, match=store.url):
        store.get_bytes(before)
    assert time.monotonic() - started < 20

    # Nothing half-written, as the server that stayed up (same buckets) shows.
    assert keys(s3_server, prefix) == [object_key(before)]
    assert spool_files(cache.root) == []


def test_closed_port_fails_fast(s3_server, prefix, cache, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(retry, "FIRST_DELAY_S", 0.01)
    store = Store.open(s3_server.url(prefix))
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"{store.url}.*after {retry.TRIES} tries"):
        store.has(digest_bytes(b"x"))
    assert time.monotonic() - started < 5


# -- end to end -------------------------------------------------------------------


@task
def make_table(n: int) -> Dataset:
    return pa.table({"x": list(range(n))})


@task
def write_report(data: Dataset) -> File:
    t = data.to_arrow()
    path = os.path.join(os.environ["LF_TEST_SCRATCH"], "report.txt")
    with open(path, "w") as f:
        f.write(f"rows={t.num_rows} sum={sum(t['x'].to_pylist())}\n")
    return path


@task
def read_report(report: File, data: Dataset) -> str:
    return report.path.read_text().strip() + f" again={data.to_arrow().num_rows}"


@workflow
def s3_pipeline(n: int = 10) -> str:
    d = make_table(n=n)
    return read_report(report=write_report(data=d), data=d)


def test_workflow_outputs_land_in_s3(s3_server, prefix, cache, tmp_path, monkeypatch):
    url = s3_server.url(prefix)
    monkeypatch.setenv("LEDGERFLOW_STORE", url)
    monkeypatch.setenv("LF_TEST_SCRATCH", str(tmp_path))
    rec = MemoryRecorder()
    ex = ledgerflow.run(s3_pipeline, params={"n": 10}, home=tmp_path / "home", recorder=rec)
    assert ex.status == "succeeded"
    assert ex.outputs == "rows=10 sum=45 again=10"

    produced = {ref.digest for e in rec.events for _, ref in getattr(e, "outputs", ()) or ()
                if getattr(ref, "kind", "value") in ("dataset", "file")}
    assert len(produced) == 2
    stored = object_keys(s3_server, prefix)
    for digest in produced:
        assert object_key(digest) in stored
    assert not (tmp_path / "home" / "store").exists(), "nothing went to the local store"

    # Another node reads the outputs straight from S3.
    cache.fresh()
    other = Store.open(url)
    for digest in produced:
        other.verify(digest)
        assert other.local_path(digest).stat().st_size == other.size(digest)
