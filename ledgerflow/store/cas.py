"""The content-addressable store: immutable objects named by the digest of their bytes."""

from __future__ import annotations

import contextlib
import io
import os
import types
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ledgerflow.errors import IntegrityError, LedgerflowError, ObjectNotFound
from ledgerflow.store import directory
from ledgerflow.store.digest import PREFIX, THREADED_MIN, Hasher, digest_bytes, digest_file, validate_digest
from ledgerflow.store.layout import CHECKOUTS
from ledgerflow.store.local import LocalBackend
from ledgerflow.store.manifest import Manifest
from ledgerflow.store.readahead import read_chunks
from ledgerflow.store.verifying import VerifyingReader
from ledgerflow.store.writer import Writer

_READ_BUFFER = 1 << 20


# Files this process has hashed and found right, by (path, device, inode, size, mtime): 200
# steps reading one 100 MiB Dataset on a node re-hashed it 200 times (bench/scale.py). Any
# change to the file (a rewrite, a replacement, a touch) changes its identity and forces
# a new hash, so verify-on-read still catches tampering between reads.
_verified: dict[tuple, str] = {}


def _identity(path: Path) -> tuple:
    st = os.stat(path)
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _ClassOrInstance:
    """A method that binds to the class when called on it and to the instance otherwise.

    The public API names two things `open`: `Store.open(url)` opens a store and
    `store.open(digest)` opens one of its objects. The two never meet, since one
    takes a class and the other an instance, so one name can serve both.
    """

    def __init__(self, on_class, on_instance):
        self._on_class = on_class
        self._on_instance = on_instance
        self.__doc__ = f"On the class: {on_class.__doc__}\n\nOn an instance: {on_instance.__doc__}"

    def __get__(self, instance, owner=None):
        if instance is None:
            return types.MethodType(self._on_class, owner)
        return types.MethodType(self._on_instance, instance)


class Store:
    """A content-addressable store at a local path or an fsspec URL.

    Objects live at `<root>/objects/<2 hex>/<62 hex>`; they are written to
    `<root>/tmp/` and renamed into place, so an object is either whole or absent.
    Reads verify the content against its digest unless told not to.

    >>> import tempfile
    >>> store = Store.open(tempfile.mkdtemp())
    >>> d = store.put_bytes(b"hello")
    >>> store.get_bytes(d)
    b'hello'

    A Store pickles as its URL (it is sent to Ray workers), and reopens there.
    """

    __slots__ = ("url", "_is_local", "_backend_")

    def __init__(self, url: str, is_local: bool):
        self.url = url
        self._is_local = is_local
        self._backend_ = None

    def _open_store(cls, url_or_path: str | os.PathLike) -> "Store":
        """Open the store at a local path, a `file://` URL or any fsspec URL (`s3://bucket/prefix`).

        Nothing is created or contacted until the store is first used.

        >>> Store.open("memory://example").url
        'memory://example'
        """
        s = os.fspath(url_or_path)
        if s.startswith("file://"):
            s = urllib.parse.unquote(urllib.parse.urlparse(s).path)
        if "://" not in s and "::" not in s:
            return cls(os.path.abspath(os.path.expanduser(s)), True)
        return cls(s.rstrip("/"), False)

    @property
    def _backend(self):
        if self._backend_ is None:
            if self._is_local:
                self._backend_ = LocalBackend(self.url)
            else:
                from ledgerflow.store.remote import RemoteBackend

                self._backend_ = RemoteBackend(self.url)
        return self._backend_

    @property
    def is_local(self) -> bool:
        """True for a store on this machine's filesystem, where reading an object back is cheap."""
        return self._is_local

    def __reduce__(self):
        return (_reopen, (self.url,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- writing --------------------------------------------------------------

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Store `data`; return its digest. Storing the same bytes again writes nothing.

        >>> import tempfile
        >>> Store.open(tempfile.mkdtemp()).put_bytes(b"")
        'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
        """
        digest = digest_bytes(data)
        size = memoryview(data).nbytes
        backend = self._backend
        if backend.size_of(digest) == size:
            return digest
        temp = backend.create_temp()
        temp.write(data)
        temp.publish(digest, size)
        return digest

    def put_file(self, path: str | os.PathLike) -> tuple[str, int]:
        """Store the file at `path`, hashing while copying (one read); return (digest, size).

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
        >>> _ = p.write_bytes(b"data")
        >>> digest, size = Store.open(tempfile.mkdtemp()).put_file(p)
        >>> size
        4
        """
        with open(path, "rb", buffering=0) as src:
            big = os.fstat(src.fileno()).st_size >= THREADED_MIN
            with self.writer() as w:
                for chunk in read_chunks(src, ahead=big):
                    w.write(chunk)
        return w.digest, w.size

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        """Stream an object in; it is published, atomically, when the block ends without error.

        >>> import tempfile
        >>> store = Store.open(tempfile.mkdtemp())
        >>> with store.writer() as w:
        ...     _ = w.write(b"part 1, ")
        ...     _ = w.write(b"part 2")
        >>> store.get_bytes(w.digest), w.size
        (b'part 1, part 2', 14)

        An exception in the block discards what was written: no object appears.
        """
        w = Writer(self._backend.create_temp())
        try:
            yield w
        except BaseException:
            w._discard()
            raise
        w._publish()

    def put_directory(self, path: str | os.PathLike) -> str:
        """Store a directory tree as a manifest of its files; return the manifest's digest.

        See `ledgerflow.store.directory` for what is recorded (files, their
        executable bit; not empty directories) and which symlinks are refused.
        """
        return directory.put_directory(self, Path(path))

    # -- reading --------------------------------------------------------------

    def has(self, digest: str) -> bool:
        """Whether the store holds an object with this digest (checks presence only)."""
        return self._backend.size_of(digest) is not None

    def size(self, digest: str) -> int:
        """The size in bytes of an object; ObjectNotFound if absent."""
        size = self._backend.size_of(digest)
        if size is None:
            raise ObjectNotFound(digest, self.url)
        return size

    def get_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """The content of an object; IntegrityError if it no longer matches its digest."""
        data, location = self._backend.read(digest)
        if verify:
            self._check(digest, digest_bytes(data), location)
        return data

    def _open_object(self, digest: str, *, verify: bool = True) -> BinaryIO:
        """A readable binary stream of an object.

        With `verify`, the stream is hashed as it is read and raises
        IntegrityError when the end is reached with a mismatch, and it cannot
        seek; with `verify=False` it is the plain (seekable) file.
        """
        raw, size, location = self._backend.open_raw(validate_digest(digest))
        if not verify:
            return io.BufferedReader(raw, _READ_BUFFER) if isinstance(raw, io.RawIOBase) else raw
        return io.BufferedReader(VerifyingReader(raw, digest, size, location), _READ_BUFFER)

    open = _ClassOrInstance(_open_store, _open_object)

    def local_path(self, digest: str, *, verify: bool = False) -> Path:
        """A local file holding the object: the object itself for a local store (do not
        modify it: it is read-only for that reason), or a verified read-through cache
        copy for a remote one, downloaded once.
        """
        path = self._backend.local_path(digest)
        if verify:
            identity = _identity(path)
            if _verified.get(identity) == digest:
                return path  # hashed already by this process, and the file has not changed since
            actual, _ = digest_file(path)
            if actual != digest and not self._is_local:
                path.unlink(missing_ok=True)  # a damaged cache copy: fetch it again
                path = self._backend.local_path(digest)
                actual, _ = digest_file(path)
            self._check(digest, actual, str(path))
            _verified[_identity(path)] = digest
        return path

    def verify(self, digest: str) -> None:
        """Re-hash an object; IntegrityError if it no longer matches, ObjectNotFound if absent.

        For a remote store this reads the object in the store, not the node's cached copy.
        """
        if not self._is_local:
            actual, location = self._backend.hash_remote(validate_digest(digest))
            self._check(digest, actual, location)
            return
        raw, size, location = self._backend.open_raw(validate_digest(digest))
        hasher = Hasher()
        with raw:
            for chunk in read_chunks(raw, ahead=size >= THREADED_MIN):
                hasher.update(chunk)
        self._check(digest, hasher.digest(), location)

    def scratch(self) -> Path:
        """A local folder for work in progress beside the store: for a local store, on the same
        filesystem as its objects, so a finished file is published by rename."""
        return self._backend.scratch()

    def checkout_problems(self) -> Iterator[tuple[str, str]]:
        """(manifest digest, what is wrong) for each shared checkout that no longer matches its
        directory (a file edited in place, added or removed): re-hashes every checked-out file."""
        root = self._backend.scratch() / CHECKOUTS
        try:
            names = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
        except FileNotFoundError:
            return
        for path in names:
            digest = PREFIX + path.name
            try:
                manifest = self.get_manifest(digest)
            except LedgerflowError as exc:
                yield digest, f"shared checkout at {path}: its directory cannot be read: {exc}"
                continue
            for problem in directory.verify_checkout(path, manifest):
                yield digest, f"shared checkout at {path}: {problem}"

    def iter_digests(self) -> Iterator[str]:
        """Every object's digest, in digest order."""
        return self._backend.iter_digests()

    def get_manifest(self, digest: str) -> Manifest:
        """The directory manifest stored under `digest` (verified; hostile paths refused)."""
        return Manifest.from_bytes(self.get_bytes(digest))

    def checkout(self, digest: str, dest: Path | None = None, *, verify: bool = True) -> Path:
        """Materialize a directory manifest as real files (copies); return its path.

        Without `dest`, a shared read-only checkout in the store's
        `checkouts/<hex>` (for a remote store, in the local cache) is built
        once and reused. With `dest`, which must not exist or be empty, a
        private writable copy is made there.
        """
        return directory.checkout(self, digest, dest, verify=verify)

    # -- upkeep ---------------------------------------------------------------

    def remove(self, digest: str) -> bool:
        """Delete an object (for `lineage gc`); True if it was there, False if it was absent.

        Objects are immutable, never edited: removal is the one way one goes away, and only
        gc, which records what it removed in the ledger, should call this. A shared checkout
        of a removed manifest goes with it.
        """
        return self._backend.remove(validate_digest(digest))

    def modified_at(self, digest: str) -> float | None:
        """When the object was written, as seconds since the epoch; None if absent or unknown."""
        return self._backend.modified_at(validate_digest(digest))

    def clean_tmp(self, older_than_s: float = 3600) -> int:
        """Remove temp files older than `older_than_s` left by crashed writers; return how many."""
        return self._backend.clean_tmp(older_than_s)

    @staticmethod
    def _check(digest: str, actual: str, location: str) -> None:
        if actual != digest:
            raise IntegrityError(
                f"object {digest} at {location} is corrupt: its content hashes to {actual}",
                digest=digest,
                location=location,
            )


def _reopen(url: str) -> Store:
    return Store.open(url)
