"""A store on the local filesystem, with plain os calls.

This is the engine's per-step hot path, so it avoids fsspec's layers: a put of
an object already present is one hash and one stat; a new one is an open, a
write and a rename.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ledgerflow.errors import IntegrityError, ObjectNotFound, StoreError
from ledgerflow.regular_files import NotARegularFile, describe, open_regular
from ledgerflow.store.digest import PREFIX
from ledgerflow.store.layout import CHECKOUTS, OBJECTS, TMP, digest_of_key, object_key

# Objects are immutable: read-only files make an accidental in-place edit fail
# loudly instead of silently corrupting every user of the object.
OBJECT_MODE = 0o444
_WRITE_BUFFER = 256 << 10  # coalesces the many small writes of e.g. Arrow IPC


def store_error(action: str, path: str, e: OSError) -> StoreError:
    reason = e.strerror or str(e)
    return StoreError(f"could not {action} {path}: {reason} (errno {errno.errorcode.get(e.errno, e.errno)})")


def not_a_file(digest: str, path: str, what: str) -> IntegrityError:
    return IntegrityError(f"object {digest} at {path} is {what}, not the file the store wrote: it was replaced "
                          "behind the store's back", digest=digest, location=path)


def _remove_tree(path: str) -> None:
    # Shared checkouts may have read-only directories: make them writable so rmtree can empty them.
    for top, dirs, _ in os.walk(path):
        for d in [top, *(os.path.join(top, name) for name in dirs)]:
            try:
                os.chmod(d, 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


class LocalBackend:
    __slots__ = ("root", "_tmp")

    def __init__(self, root: str):
        self.root = root
        self._tmp = os.path.join(root, TMP)

    def location(self, digest: str) -> str:
        return os.path.join(self.root, object_key(digest))

    def size_of(self, digest: str) -> int | None:
        try:
            return os.stat(self.location(digest)).st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise store_error("stat", self.location(digest), e) from e

    def open_raw(self, digest: str) -> tuple[BinaryIO, int, str]:
        path = self.location(digest)
        try:
            # Not following a link, not waiting on a FIFO: an object replaced by either (or by a
            # link to /dev/zero) would hang the reader or feed it endless bytes.
            f = open_regular(path, follow_symlinks=False, buffering=0)
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.root) from None
        except NotARegularFile as e:
            raise not_a_file(digest, path, e.what) from None
        except OSError as e:
            raise store_error("open", path, e) from e
        return f, os.fstat(f.fileno()).st_size, path

    def read(self, digest: str) -> tuple[bytes, str]:
        f, _, path = self.open_raw(digest)
        with f:
            try:
                return f.read(), path
            except OSError as e:
                raise store_error("read", path, e) from e

    def create_temp(self) -> "LocalTemp":
        return LocalTemp(self)

    def local_path(self, digest: str) -> Path:
        path = self.location(digest)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise ObjectNotFound(digest, self.root) from None
        if not stat.S_ISREG(st.st_mode):
            raise not_a_file(digest, path, describe(st.st_mode))
        return Path(path)

    def scratch(self) -> Path:
        """A local directory for checkouts and their temp dirs."""
        return Path(self.root)

    def iter_digests(self) -> Iterator[str]:
        objects = os.path.join(self.root, OBJECTS)
        try:
            fanouts = sorted(os.listdir(objects))
        except FileNotFoundError:
            return
        for fanout in fanouts:
            try:
                names = sorted(os.listdir(os.path.join(objects, fanout)))
            except NotADirectoryError:
                continue
            for name in names:
                if (digest := digest_of_key(fanout, name)) is not None:
                    yield digest

    def remove(self, digest: str) -> bool:
        path = self.location(digest)
        try:
            os.unlink(path)  # read-only files can still be unlinked: the directory is writable
        except FileNotFoundError:
            return False
        except OSError as e:
            raise store_error("remove", path, e) from e
        # A checkout of a removed manifest would otherwise outlive it, unaccounted for.
        checkout = os.path.join(self.root, CHECKOUTS, digest[len(PREFIX):])
        if os.path.isdir(checkout):
            aside = self.temp_name("removed-")
            self.ensure_tmp()
            try:
                os.rename(checkout, aside)
            except OSError:
                return True
            _remove_tree(aside)
        return True

    def modified_at(self, digest: str) -> float | None:
        try:
            return os.stat(self.location(digest)).st_mtime
        except FileNotFoundError:
            return None

    def clean_tmp(self, older_than_s: float) -> int:
        cutoff = time.time() - older_than_s
        removed = 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    if entry.is_dir(follow_symlinks=False):  # a checkout left by a crash

                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:  # another cleaner got there first
                pass
        return removed

    def temp_name(self, prefix: str = "") -> str:
        # pid + random: unique across processes and threads without a lock.
        return os.path.join(self._tmp, f"{prefix}{os.getpid()}-{secrets.token_hex(8)}")

    def ensure_tmp(self) -> None:
        try:
            os.makedirs(self._tmp, exist_ok=True)
        except OSError as e:
            raise store_error("create the temp directory", self._tmp, e) from e


class LocalTemp:
    """An object being written: a temp file in `<root>/tmp`, renamed into place when complete.

    The temp dir is on the same filesystem as `objects/`, so the rename is
    atomic: a reader sees the whole object or none, and a crash leaves only a
    temp file that `clean_tmp` removes.
    """

    __slots__ = ("_backend", "path", "_file")

    def __init__(self, backend: LocalBackend):
        self._backend = backend
        self.path = backend.temp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, OBJECT_MODE)
        except FileNotFoundError:
            backend.ensure_tmp()
            fd = self._open_again(flags)
        except OSError as e:
            raise store_error("create a temp file", self.path, e) from e
        self._file = open(fd, "wb", buffering=_WRITE_BUFFER)

    def _open_again(self, flags: int) -> int:
        try:
            return os.open(self.path, flags, OBJECT_MODE)
        except OSError as e:
            raise store_error("create a temp file", self.path, e) from e

    def write(self, data) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            self.discard()
            raise store_error("write", self.path, e) from e

    def publish(self, digest: str, size: int) -> None:
        final = self._backend.location(digest)
        try:
            self._file.close()
            # An object already under this name is replaced too, not kept: it holds the same
            # bytes, unless it was damaged behind the store's back, and damage that keeps the
            # size (a flipped bit) would then survive every re-run of the step that made it
            # (found by tests/system/test_faults.py). The temp file was hashed as it was written, so
            # it is right; the rename is atomic, so readers see the old file or the new one.
            # It costs what the unlink it replaces cost; put_bytes still skips known objects.
            try:
                os.replace(self.path, final)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(self.path, final)
            except IsADirectoryError:
                # A directory put where the object belongs (damage): moved aside, then replaced.
                aside = self._backend.temp_name("damaged-")
                os.rename(final, aside)
                _remove_tree(aside)
                os.replace(self.path, final)
        except OSError as e:
            self.discard()
            raise store_error("publish the object at", final, e) from e

    def discard(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # the write that failed already said why
        try:
            os.unlink(self.path)
        except OSError:
            pass
