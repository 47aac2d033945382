"""A store on any fsspec filesystem (s3://, gs://, az://, memory://, ...).

Writing. An object is first spooled to a local file (in the node's cache) while
the Writer hashes it, so its digest is known before anything is sent. It is then
uploaded in one call to its final key: on an object store (S3, GCS, Azure) a
PUT, or a multipart upload's completion, makes the whole object visible at once
or not at all, so no reader ever sees a partial object under a digest, and a
writer that dies mid-upload leaves nothing there (at most an incomplete
multipart upload, invisible, which s3fs aborts on error and a bucket lifecycle
rule expires after a crash). The alternative, streaming to a temp key and then
copying it into place, needs a server-side copy of every object (slow and, on S3,
split into parts above 5 GiB) and cannot retry a stream half sent; from a local
file the whole upload is simply tried again. On filesystems that are not object
stores (sftp, hdfs, ...) a write is not atomic, so there the file goes to
`<root>/tmp/` first and is moved into place. The spool file then becomes the
node's cached copy: the producer never downloads what it wrote.

Reading. `local_path` and `open` go through a per-node read-through cache
(`LEDGERFLOW_CACHE`, default `~/.cache/ledgerflow`, one directory per store
URL): an object is downloaded once per node, verified against its digest before
it is visible in the cache, and a per-object lock makes concurrent steps on one
node wait for a single download instead of each fetching it. `get_bytes`
(small objects: manifests, values) and `Store.verify` read the store itself.

Failures. Every call goes through `retrying`, the one retry layer: botocore's
and s3fs's own retries are turned off and the connect timeout kept short, so a
server that is down gives a StoreError naming the store's URL after a few
seconds rather than minutes.

Endpoint and credentials come from the usual places: for S3, botocore reads
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ... and
fsspec's own configuration (`FSSPEC_S3='{"endpoint_url": ...}'` or
`~/.config/fsspec/*.json`) is honoured, its settings winning over the defaults here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import blake3

from ledgerflow.errors import IntegrityError, ObjectNotFound, StoreError
from ledgerflow.store.digest import Hasher, digest_file
from ledgerflow.store.layout import OBJECTS, TMP, digest_of_key, object_key
from ledgerflow.store.local import OBJECT_MODE, store_error
from ledgerflow.store.retry import retrying

try:
    import fcntl
except ImportError:  # Windows: no lock, at worst a duplicate download
    fcntl = None

# Protocols where one upload call publishes the whole object atomically.
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
UPLOAD_PART_SIZE: int | None = None  # None: s3fs's default (50 MiB parts)
_WRITE_BUFFER = 256 << 10
_HASH_CHUNK = 8 << 20
LOCKS = "locks"


def cache_root(url: str) -> Path:
    """The local read-through cache of the remote store at `url`.

    One directory per store URL (named by its hash), so two stores never share
    cached paths even where their object keys coincide.
    """
    base = os.environ.get("LEDGERFLOW_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ledgerflow")
    return Path(base) / blake3.blake3(url.encode()).hexdigest()[:16]


def storage_options(url: str) -> dict:
    """fsspec options for `url`: bounded timeouts and a single retry layer, under the user's fsspec config."""
    import fsspec.config
    import fsspec.core

    if "::" in url:  # a chained URL: its parts are configured by the user
        return {}
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol not in ("s3", "s3a"):
        return {}
    user = fsspec.config.conf.get(protocol, {})
    config = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "retries": {"total_max_attempts": 1},  # ours retry; botocore's would multiply them
        **user.get("config_kwargs", {}),
    }
    # A store shared by many writers must not answer "absent" from a stale listing.
    options = {"use_listings_cache": False, **user, "config_kwargs": config}
    # botocore reads these variables itself; naming the endpoint here as well
    # keys fsspec's instance cache by it, so a changed endpoint gets a new client.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    ignored = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
    if endpoint and not ignored and not options.get("endpoint_url") and "endpoint_url" not in options.get("client_kwargs", {}):
        options["endpoint_url"] = endpoint
    return options


class RemoteBackend:
    __slots__ = ("url", "fs", "root", "_cache", "_atomic_put", "_put_kwargs")

    def __init__(self, url: str):
        import fsspec.core  # not needed by local stores, and slow to import

        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options(url))
        except ImportError as e:
            raise StoreError(f"cannot open the store at {url}: {e} (for s3://, pip install 'ledgerflow[s3]')") from e
        self.root = self.root.rstrip("/")
        self._cache = cache_root(url)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        self._atomic_put = bool(ATOMIC_PUT_PROTOCOLS.intersection(protocols))
        self._put_kwargs = {}
        if "s3" in protocols:
            self.fs.retries = 1  # s3fs's own loop; `retrying` is the one retry layer
            if UPLOAD_PART_SIZE:
                self._put_kwargs["chunksize"] = UPLOAD_PART_SIZE

    def _key(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def location(self, digest: str) -> str:
        return f"{self.url}/{object_key(digest)}"

    def cached(self, digest: str) -> Path:
        """Where the node's cached copy of an object is (or would be)."""
        return self._cache / object_key(digest)

    # -- reading --------------------------------------------------------------

    def size_of(self, digest: str) -> int | None:
        try:
            return retrying("looking up an object", self.url, self.fs.size, self._key(object_key(digest)))
        except FileNotFoundError:
            return None

    def open_raw(self, digest: str) -> tuple[BinaryIO, int, str]:
        path = self.local_path(digest)
        try:
            f = open(path, "rb", buffering=0)
        except OSError as e:
            raise store_error("open", str(path), e) from e
        return f, os.fstat(f.fileno()).st_size, str(path)

    def read(self, digest: str) -> tuple[bytes, str]:
        # Straight from the store, one GET: get_bytes serves small objects
        # (manifests, values), and its verification then speaks for the store.
        try:
            data = retrying("read", self.url, self.fs.cat_file, self._key(object_key(digest)))
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.url) from None
        return data, self.location(digest)

    def local_path(self, digest: str) -> Path:
        """A verified local copy, downloaded on first use, once per node."""
        cached = self.cached(digest)
        if cached.exists():
            return cached
        with self._download_lock(digest):
            if not cached.exists():  # another process may have fetched it while we waited
                self._download(digest, cached)
        return cached

    @contextlib.contextmanager
    def _download_lock(self, digest: str) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        locks = self._cache / LOCKS
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / object_key(digest).replace("/", "-"), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise store_error("create a lock in the cache at", str(locks), e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _download(self, digest: str, cached: Path) -> None:
        tmp_dir = self._cache / TMP
        tmp = tmp_dir / f"get-{os.getpid()}-{secrets.token_hex(8)}"
        location = self.location(digest)
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            try:
                retrying("downloading an object", self.url, self.fs.get_file, self._key(object_key(digest)), str(tmp))
            except FileNotFoundError:
                raise ObjectNotFound(digest, self.url) from None
            actual, size = digest_file(tmp)
            if actual != digest:
                raise IntegrityError(
                    f"object {digest} at {location} is corrupt: its {size} bytes hash to {actual}",
                    digest=digest,
                    location=location,
                )
            os.chmod(tmp, OBJECT_MODE)
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, cached)
        except OSError as e:
            raise store_error("cache the object at", str(cached), e) from e
        finally:
            tmp.unlink(missing_ok=True)

    def hash_remote(self, digest: str) -> tuple[str, str]:
        """Re-hash the object in the store itself (not the cached copy): (actual digest, location)."""
        key = self._key(object_key(digest))

        def hash_once() -> str:
            hasher = Hasher()
            with self.fs.open(key, "rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    hasher.update(chunk)
            return hasher.digest()

        try:
            actual = retrying("verifying an object", self.url, hash_once)
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.url) from None
        return actual, self.location(digest)

    def iter_digests(self) -> Iterator[str]:
        objects = self._key(OBJECTS)
        try:
            keys = retrying("listing", self.url, self.fs.find, objects)
        except FileNotFoundError:
            return
        for key in sorted(keys):
            fanout, _, name = key[len(objects) + 1 :].partition("/")
            if (digest := digest_of_key(fanout, name)) is not None:
                yield digest

    # -- writing --------------------------------------------------------------

    def create_temp(self) -> "RemoteTemp":
        return RemoteTemp(self)

    def scratch(self) -> Path:
        return self._cache

    def upload(self, spool: Path, digest: str) -> None:
        """Publish the complete local file `spool` as the object `digest`, atomically."""
        final = self._key(object_key(digest))
        if self._atomic_put:
            try:
                retrying("uploading an object", self.url, self.fs.put_file, str(spool), final, **self._put_kwargs)
            except FileNotFoundError as e:
                raise StoreError(f"could not upload {digest} to the store at {self.url}: {e} (does the bucket exist?)") from e
            return
        temp_key = self._key(f"{TMP}/{os.getpid()}-{secrets.token_hex(8)}")
        try:
            try:
                retrying("uploading an object", self.url, self.fs.put_file, str(spool), temp_key)
            except FileNotFoundError:
                retrying("creating the temp directory", self.url, self.fs.makedirs, self._key(TMP), exist_ok=True)
                retrying("uploading an object", self.url, self.fs.put_file, str(spool), temp_key)
            try:
                retrying("publishing an object", self.url, self.fs.mv, temp_key, final)
            except FileNotFoundError:
                retrying("creating a directory", self.url, self.fs.makedirs, final.rsplit("/", 1)[0], exist_ok=True)
                retrying("publishing an object", self.url, self.fs.mv, temp_key, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(temp_key)  # a leftover is harmless; clean_tmp removes it
            raise

    def adopt(self, spool: Path, digest: str) -> None:
        """Make a just-published spool file the node's cached copy (best effort)."""
        cached = self.cached(digest)
        try:
            if cached.exists():
                spool.unlink()
                return
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.replace(spool, cached)
        except OSError:
            spool.unlink(missing_ok=True)  # the object is in the store; the cache is only a cache

    def remove(self, digest: str) -> bool:
        self.cached(digest).unlink(missing_ok=True)  # this node's copy goes too
        # An object store answers a DELETE of a missing key with success: ask first.
        if self.size_of(digest) is None:
            return False
        try:
            retrying("removing an object", self.url, self.fs.rm, self._key(object_key(digest)))
        except FileNotFoundError:
            return False
        return True

    def modified_at(self, digest: str) -> float | None:
        try:
            info = retrying("looking up an object", self.url, self.fs.info, self._key(object_key(digest)))
        except FileNotFoundError:
            return None
        stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
        return stamp.timestamp() if hasattr(stamp, "timestamp") else stamp

    # -- upkeep ---------------------------------------------------------------

    def clean_tmp(self, older_than_s: float) -> int:
        """Remove temp objects in the store and spool/download files in this node's cache."""
        cutoff = time.time() - older_than_s
        removed = self._clean_local_tmp(cutoff)
        try:
            infos = retrying("listing", self.url, self.fs.ls, self._key(TMP), detail=True)
        except FileNotFoundError:
            return removed
        for info in infos:
            modified = info.get("mtime") or info.get("LastModified") or info.get("created")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
            # Unknown age: leave it; a temp file of a live writer must never go.
            if stamp is not None and stamp < cutoff:
                try:
                    retrying("removing a temp file", self.url, self.fs.rm, info["name"])
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def _clean_local_tmp(self, cutoff: float) -> int:
        import shutil

        removed = 0
        try:
            entries = list(os.scandir(self._cache / TMP))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


class RemoteTemp:
    """An object being written: spooled to a local file, uploaded whole when complete."""

    __slots__ = ("_backend", "spool", "_file")

    def __init__(self, backend: RemoteBackend):
        self._backend = backend
        tmp_dir = backend._cache / TMP
        self.spool = tmp_dir / f"put-{os.getpid()}-{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                fd = os.open(self.spool, flags, OBJECT_MODE)
            except FileNotFoundError:
                tmp_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.spool, flags, OBJECT_MODE)
        except OSError as e:
            raise store_error("create a spool file", str(self.spool), e) from e
        self._file = open(fd, "wb", buffering=_WRITE_BUFFER)

    def write(self, data) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            self.discard()
            raise store_error("write", str(self.spool), e) from e

    def publish(self, digest: str, size: int) -> None:
        backend = self._backend
        try:
            try:
                self._file.close()
            except OSError as e:
                raise store_error("write", str(self.spool), e) from e
            # Same size: the same content (or a collision no one will ever find).
            # A different size can only be a torn or tampered object, so replace it.
            if backend.size_of(digest) != size:
                backend.upload(self.spool, digest)
        except BaseException:
            self.discard()
            raise
        backend.adopt(self.spool, digest)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.spool.unlink()
