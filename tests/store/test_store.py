"""The content-addressable store, on real files (and fsspec's memory filesystem)."""

from __future__ import annotations

import io
import os
import pickle
import stat
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerflow.errors import IntegrityError, ObjectNotFound, StoreError
from ledgerflow.store import Manifest, ManifestEntry, Store, current, digest_bytes, using
from ledgerflow.store.layout import object_key
from ledgerflow.store.readahead import CHUNK_SIZE


@pytest.fixture
def store(tmp_path):
    return Store.open(tmp_path / "store")


@pytest.fixture
def mem_store():
    return Store.open(f"memory://lf-test-{uuid.uuid4().hex}")


def object_files(store):
    root = os.path.join(store.url, "objects")
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def corrupt(path):
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))


# -- objects ---------------------------------------------------------------------


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_put_get_round_trip(store, data):
    d = store.put_bytes(data)
    assert d == digest_bytes(data)
    assert store.has(d) and store.size(d) == len(data)
    assert store.get_bytes(d) == data
    with store.open(d) as f:
        assert f.read() == data


def test_layout_and_read_only_objects(store):
    d = store.put_bytes(b"layout")
    hex_ = d.removeprefix("blake3:")
    path = os.path.join(store.url, "objects", hex_[:2], hex_[2:])
    assert object_files(store) == [path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert store.local_path(d) == __import__("pathlib").Path(path)
    assert list(store.iter_digests()) == [d]


def test_identical_content_is_stored_once(store, tmp_path):
    d1 = store.put_bytes(b"same")
    src = tmp_path / "src"
    src.write_bytes(b"same")
    d2, size = store.put_file(src)
    with store.writer() as w:
        w.write(b"sa")
        w.write(b"me")
    assert d1 == d2 == w.digest and size == w.size == 4
    assert len(object_files(store)) == 1
    assert os.listdir(os.path.join(store.url, "tmp")) == []


@pytest.mark.parametrize("size", [0, 10, CHUNK_SIZE + 3, 3 * CHUNK_SIZE])
def test_put_file_round_trip(store, tmp_path, size):
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    d, n = store.put_file(src)
    assert (d, n) == (digest_bytes(data), size)
    assert store.get_bytes(d) == data
    store.verify(d)


def test_missing_object(store):
    d = digest_bytes(b"never stored")
    assert not store.has(d)
    for call in (store.get_bytes, store.size, store.verify, store.open, store.local_path):
        with pytest.raises(ObjectNotFound) as e:
            call(d)
        assert e.value.digest == d and d in str(e.value)


def test_malformed_digest_is_refused_before_touching_disk(store):
    with pytest.raises(ValueError, match="is not a digest"):
        store.has("blake3:../../etc/passwd")


def test_verify_on_read_catches_corruption(store):
    d = store.put_bytes(b"precious bytes " * 100)
    path = os.path.join(store.url, object_key(d))
    corrupt(path)
    for read in (store.get_bytes, store.verify, lambda d: store.open(d).read(), lambda d: store.local_path(d, verify=True)):
        with pytest.raises(IntegrityError) as e:
            read(d)
        assert e.value.digest == d and e.value.location == path
        assert d in str(e.value) and path in str(e.value)
    assert store.get_bytes(d, verify=False)[1:] == (b"precious bytes " * 100)[1:]


def test_a_torn_object_is_replaced_by_the_next_put(store):
    d = store.put_bytes(b"whole")
    path = os.path.join(store.url, object_key(d))
    os.chmod(path, 0o644)
    open(path, "wb").close()  # as a power loss before the data reached the disk might leave it
    assert store.put_bytes(b"whole") == d
    assert store.get_bytes(d) == b"whole"


def test_streaming_verify_reads_in_pieces(store):
    data = os.urandom(CHUNK_SIZE + 5)
    d = store.put_bytes(data)
    with store.open(d) as f:
        pieces = iter(lambda: f.read(1 << 16), b"")
        assert b"".join(pieces) == data
    corrupt(os.path.join(store.url, object_key(d)))
    with store.open(d) as f, pytest.raises(IntegrityError):
        while f.read(1 << 16):
            pass


def test_writer_publishes_atomically_and_a_crash_leaves_nothing(store):
    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        with store.writer() as w:
            w.write(b"half an object")
            raise Crash
    assert w.digest is None
    assert not store.has(digest_bytes(b"half an object"))
    assert object_files(store) == []
    assert os.listdir(os.path.join(store.url, "tmp")) == []


def test_writer_takes_arrow_ipc(store):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"x": list(range(1000)), "y": [str(i) for i in range(1000)]})
    with store.writer() as w:
        with pa.ipc.new_stream(w, table.schema) as ipc:
            ipc.write_table(table)
    with store.open(w.digest) as f:
        assert pa.ipc.open_stream(f).read_all().equals(table)


def test_clean_tmp_removes_only_old_leftovers(store):
    store.put_bytes(b"x")
    tmp = os.path.join(store.url, "tmp")
    old, new = os.path.join(tmp, "old"), os.path.join(tmp, "new")
    for p in (old, new):
        open(p, "wb").close()
    os.utime(old, (0, 0))
    assert store.clean_tmp(older_than_s=3600) == 1
    assert os.listdir(tmp) == ["new"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_store_gives_store_error(store):
    store.put_bytes(b"first")
    for d in (store.url, os.path.join(store.url, "tmp")):
        os.chmod(d, 0o555)
    try:
        with pytest.raises(StoreError, match="Permission denied") as e:
            store.put_bytes(b"second")
        assert store.url in str(e.value)
    finally:
        for d in (store.url, os.path.join(store.url, "tmp")):
            os.chmod(d, 0o755)


def test_unwritable_store_gives_store_error_naming_cause_and_path(tmp_path):
    # Works as root too: a file where the store's tmp directory should be.
    root = tmp_path / "store"
    root.mkdir()
    (root / "tmp").write_bytes(b"")
    store = Store.open(root)
    with pytest.raises(StoreError, match="Not a directory") as e:
        store.put_bytes(b"data")
    assert str(root / "tmp") in str(e.value)
    assert not store.has(digest_bytes(b"data"))


# -- opening, pickling, the current store ------------------------------------


def test_open_forms(tmp_path):
    assert Store.open(tmp_path).url == str(tmp_path)
    assert Store.open(f"file://{tmp_path}").url == str(tmp_path)
    assert Store.open("memory://bucket/prefix/").url == "memory://bucket/prefix"
    s = Store.open(tmp_path / "s")
    assert pickle.loads(pickle.dumps(s)) == s
    s.put_bytes(b"used")  # a used store (with its backend made) pickles as its URL too
    assert pickle.loads(pickle.dumps(s)).get_bytes(digest_bytes(b"used")) == b"used"


def test_current_and_using(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEDGERFLOW_STORE", raising=False)
    assert current().url == str(tmp_path / "home" / "store")
    inner = Store.open(tmp_path / "inner")
    with using(inner) as s:
        assert s is inner and current() is inner
        with using(tmp_path / "innermost"):
            assert current().url == str(tmp_path / "innermost")
        assert current() is inner
    assert current().url == str(tmp_path / "home" / "store")


# -- remote (fsspec) ------------------------------------------------------------


def test_memory_store_round_trip(mem_store, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_CACHE", str(tmp_path / "cache"))
    d = mem_store.put_bytes(b"remote bytes")
    assert mem_store.has(d) and mem_store.size(d) == 12
    assert mem_store.get_bytes(d) == b"remote bytes"
    mem_store.verify(d)
    with mem_store.open(d) as f:
        assert f.read() == b"remote bytes"
    src = tmp_path / "f"
    src.write_bytes(b"remote bytes")
    assert mem_store.put_file(src) == (d, 12)
    assert list(mem_store.iter_digests()) == [d]
    local = mem_store.local_path(d)
    assert local.read_bytes() == b"remote bytes"
    assert str(local).startswith(str(tmp_path / "cache"))
    assert mem_store.local_path(d, verify=True) == local
    assert pickle.loads(pickle.dumps(mem_store)).get_bytes(d) == b"remote bytes"


def test_memory_store_corruption_and_crash(mem_store):
    import fsspec

    fs = fsspec.filesystem("memory")
    d = mem_store.put_bytes(b"to be damaged")
    key = mem_store.url.removeprefix("memory://") + "/" + object_key(d)
    fs.pipe_file(key, b"To be damaged")
    with pytest.raises(IntegrityError) as e:
        mem_store.get_bytes(d)
    assert e.value.location.endswith(object_key(d)) and mem_store.url in e.value.location
    with pytest.raises(RuntimeError):
        with mem_store.writer() as w:
            w.write(b"never")
            raise RuntimeError
    assert not mem_store.has(digest_bytes(b"never"))
    with pytest.raises(ObjectNotFound):
        mem_store.get_bytes(digest_bytes(b"never"))


@pytest.mark.slow
def test_transient_remote_errors_are_retried_then_reported():
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class Flaky(MemoryFileSystem):
        protocol = "flaky"
        failures = 0

        def cat_file(self, path, *args, **kwargs):
            if Flaky.failures:
                Flaky.failures -= 1
                raise ConnectionError("connection reset by peer")
            return super().cat_file(path, *args, **kwargs)

    fsspec.register_implementation("flaky", Flaky, clobber=True)
    store = Store.open(f"flaky://lf-{uuid.uuid4().hex}")
    d = store.put_bytes(b"eventually")
    Flaky.failures = 2
    assert store.get_bytes(d) == b"eventually"
    Flaky.failures = 99
    with pytest.raises(StoreError, match="after 5 tries") as e:
        store.get_bytes(d)
    assert store.url in str(e.value)
    Flaky.failures = 0


# -- directories ----------------------------------------------------------------


def make_tree(root, order=None):
    files = {
        "README.md": b"hello",
        "bin/run.sh": b"#!/bin/sh\necho hi\n",
        "data/a/x.bin": b"\x00" * 100,
        "data/b/x.bin": b"\x00" * 100,  # identical to data/a/x.bin
        "data/b/deep/er/y.txt": b"y",
    }
    for rel in order or files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])
    os.chmod(root / "bin/run.sh", 0o755)
    return files


def test_directory_round_trip(store, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    d = store.put_directory(src)
    m = store.get_manifest(d)
    assert m.digest == d
    assert [e.path for e in m.entries] == sorted(files)
    assert {e.path: e.executable for e in m.entries}["bin/run.sh"] is True
    assert sum(e.executable for e in m.entries) == 1
    # 4 distinct contents + the manifest itself
    assert len(object_files(store)) == 5

    out = store.checkout(d)
    assert out == __import__("pathlib").Path(store.url) / "checkouts" / d.removeprefix("blake3:")
    for rel, content in files.items():
        assert (out / rel).read_bytes() == content
    assert os.access(out / "bin/run.sh", os.X_OK) and not os.stat(out / "README.md").st_mode & 0o111
    assert os.stat(out / "README.md").st_ino != os.stat(store.local_path(digest_bytes(b"hello"))).st_ino
    assert store.checkout(d) == out  # reused

    mine = store.checkout(d, tmp_path / "mine")
    (mine / "README.md").write_bytes(b"edited")  # a private copy: editable, and the store is untouched
    assert store.get_bytes(digest_bytes(b"hello")) == b"hello"
    assert os.stat(mine / "bin/run.sh").st_mode & stat.S_IXUSR
    with pytest.raises(FileExistsError):
        store.checkout(d, mine)


def test_damaged_shared_checkout_is_rebuilt(store, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    d = store.put_directory(src)
    out = store.checkout(d)
    os.unlink(out / "README.md")
    assert (store.checkout(d) / "README.md").read_bytes() == b"hello"


def test_manifest_digest_is_independent_of_creation_order(store, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    files = make_tree(a)
    make_tree(b, order=list(reversed(list(files))))
    assert store.put_directory(a) == store.put_directory(b)
    os.chmod(b / "bin/run.sh", 0o644)
    assert store.put_directory(a) != store.put_directory(b)


def test_empty_directories_are_not_recorded(store, tmp_path):
    (tmp_path / "e" / "empty").mkdir(parents=True)
    d = store.put_directory(tmp_path / "e")
    assert store.get_manifest(d).entries == ()
    out = store.checkout(d, tmp_path / "out")
    assert out.is_dir() and list(out.iterdir()) == []


def test_symlinks_inside_are_followed_outside_refused(store, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "real.txt").write_bytes(b"real")
    (src / "link.txt").symlink_to("real.txt")
    m = store.get_manifest(store.put_directory(src))
    assert [(e.path, e.size) for e in m.entries] == [("link.txt", 4), ("real.txt", 4)]

    (tmp_path / "secret").write_bytes(b"secret")
    (src / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="points outside"):
        store.put_directory(src)
    os.unlink(src / "escape")
    (src / "loop").symlink_to(".")
    with pytest.raises(ValueError, match="loops"):
        store.put_directory(src)


@pytest.mark.parametrize("path", ["../evil", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.", "", "a\0b"])
def test_hostile_manifest_paths_are_refused(store, path):
    good = Manifest((ManifestEntry("ok", digest_bytes(b""), 0, False),)).to_bytes()
    hostile = good.replace(b'"path":"ok"', b'"path":' + __import__("json").dumps(path).encode())
    d = store.put_bytes(hostile)
    with pytest.raises(ValueError, match="unsafe manifest entry path"):
        store.get_manifest(d)
    with pytest.raises(ValueError, match="unsafe manifest entry path"):
        store.checkout(d)
    with pytest.raises(ValueError):
        ManifestEntry(path, digest_bytes(b""), 0, False)


def test_manifest_rejects_malformed_documents():
    e = ManifestEntry("a", digest_bytes(b""), 0, False)
    with pytest.raises(ValueError, match="twice"):
        Manifest((e, e))
    with pytest.raises(ValueError, match="as a file and as the directory"):
        Manifest((e, ManifestEntry("a/b", digest_bytes(b""), 0, False)))
    for bad in (b"not json", b"[]", b'{"format":"other","entries":[]}', Manifest((e,)).to_bytes().replace(b",", b", ")):
        with pytest.raises(ValueError):
            Manifest.from_bytes(bad)


@settings(max_examples=20)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,3}(/[a-z]{1,3}){0,2}", fullmatch=True), st.booleans(), max_size=8))
def test_manifest_bytes_round_trip(paths):
    try:
        m = Manifest(tuple(ManifestEntry(p, digest_bytes(p.encode()), len(p), x) for p, x in paths.items()))
    except ValueError:  # a path that is also another's directory
        return
    assert Manifest.from_bytes(m.to_bytes()) == m
    assert Manifest(tuple(reversed(m.entries))).digest == m.digest


def test_memory_store_directory_round_trip(mem_store, tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src"
    files = make_tree(src)
    d = mem_store.put_directory(src)
    out = mem_store.checkout(d)
    assert str(out).startswith(str(tmp_path / "cache"))
    for rel, content in files.items():
        assert (out / rel).read_bytes() == content
