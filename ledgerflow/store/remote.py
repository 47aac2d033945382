"""A store on any fsspec filesystem (s3://, gs://, memory://, ...).

Every call goes through `retrying`, so a dropped connection or a throttled
request costs a short wait rather than a failed step.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import blake3

from ledgerflow.errors import IntegrityError, ObjectNotFound, StoreError
from ledgerflow.store.digest import Hasher
from ledgerflow.store.layout import OBJECTS, TMP, digest_of_key, object_key
from ledgerflow.store.local import OBJECT_MODE, store_error
from ledgerflow.store.readahead import read_chunks
from ledgerflow.store.retry import retrying


def cache_root(url: str) -> Path:
    """The local read-through cache of the remote store at `url`.

    One directory per store URL (named by its hash), so two stores never share
    cached paths even where their object keys coincide.
    """
    base = os.environ.get("LEDGERFLOW_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ledgerflow")
    return Path(base) / blake3.blake3(url.encode()).hexdigest()[:16]


class RemoteBackend:
    __slots__ = ("url", "fs", "root", "_cache")

    def __init__(self, url: str):
        import fsspec.core  # not needed by local stores, and slow to import

        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.root = self.root.rstrip("/")
        self._cache = cache_root(url)

    def _key(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def location(self, digest: str) -> str:
        return f"{self.url}/{object_key(digest)}"

    def size_of(self, digest: str) -> int | None:
        try:
            return retrying("stat", self.url, self.fs.size, self._key(object_key(digest)))
        except FileNotFoundError:
            return None

    def open_raw(self, digest: str) -> tuple[BinaryIO, int, str]:
        key = self._key(object_key(digest))
        try:
            f = retrying("open", self.url, self.fs.open, key, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.url) from None
        size = getattr(f, "size", None)
        if size is None:
            size = retrying("stat", self.url, self.fs.size, key)
        return f, size, self.location(digest)

    def read(self, digest: str) -> tuple[bytes, str]:
        try:
            data = retrying("read", self.url, self.fs.cat_file, self._key(object_key(digest)))
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.url) from None
        return data, self.location(digest)

    def create_temp(self) -> "RemoteTemp":
        return RemoteTemp(self)

    def scratch(self) -> Path:
        return self._cache

    def local_path(self, digest: str) -> Path:
        """A verified local copy, downloaded on first use."""
        cached = self._cache / object_key(digest)
        if cached.exists():
            return cached
        tmp_dir = self._cache / TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{os.getpid()}-{secrets.token_hex(8)}"
        raw, size, location = self.open_raw(digest)
        hasher = Hasher()
        try:
            with raw, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OBJECT_MODE), "wb") as out:
                for chunk in read_chunks(raw, ahead=size >= (1 << 20)):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.digest() != digest:
                raise IntegrityError(
                    f"object {digest} at {location} is corrupt: its {hasher.size} bytes hash to {hasher.digest()}",
                    digest=digest,
                    location=location,
                )
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, cached)
        except OSError as e:
            raise store_error("cache the object at", str(cached), e) from e
        finally:
            tmp.unlink(missing_ok=True)
        return cached

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

    def clean_tmp(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        try:
            infos = retrying("listing", self.url, self.fs.ls, self._key(TMP), detail=True)
        except FileNotFoundError:
            return 0
        removed = 0
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


class RemoteTemp:
    """An object being uploaded under `<root>/tmp`, moved into place when complete."""

    __slots__ = ("_backend", "key", "_file")

    def __init__(self, backend: RemoteBackend):
        self._backend = backend
        self.key = backend._key(f"{TMP}/{os.getpid()}-{secrets.token_hex(8)}")
        fs, url = backend.fs, backend.url
        try:
            self._file = retrying("creating a temp object", url, fs.open, self.key, "wb")
        except FileNotFoundError:
            retrying("creating the temp directory", url, fs.makedirs, backend._key(TMP), exist_ok=True)
            self._file = retrying("creating a temp object", url, fs.open, self.key, "wb")

    def write(self, data) -> None:
        try:
            self._file.write(data)
        except Exception as e:  # a half-sent stream cannot be retried from here
            self.discard()
            raise StoreError(f"could not write to {self._backend.url}: {e!r}") from e

    def publish(self, digest: str, size: int) -> None:
        backend = self._backend
        fs, url = backend.fs, backend.url
        final = backend._key(object_key(digest))
        try:
            retrying("uploading an object", url, self._file.close)
            if backend.size_of(digest) == size:
                self.discard()
                return
            try:
                retrying("publishing an object", url, fs.mv, self.key, final)
            except FileNotFoundError:
                retrying("creating a directory", url, fs.makedirs, final.rsplit("/", 1)[0], exist_ok=True)
                retrying("publishing an object", url, fs.mv, self.key, final)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        try:
            self._file.close()
        except Exception:
            pass
        try:
            self._backend.fs.rm(self.key)
        except Exception:
            pass  # a leftover temp object is harmless; clean_tmp removes it
