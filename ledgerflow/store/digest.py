"""Content digests: `"blake3:<64 lowercase hex>"`.

BLAKE3 because it is fast (SIMD and multithreaded) and cryptographically
strong, so a digest can name content without collisions in practice.
"""

from __future__ import annotations

import os
import re

import blake3

from ledgerflow.errors import DigestError
from ledgerflow.store.readahead import read_chunks

PREFIX = "blake3:"
HEX_LENGTH = 64

# Below this, starting worker threads costs more than it saves (measured: at
# 64 KiB, AUTO is ~40% slower; at 1 MiB, ~50% faster on 2 cores).
THREADED_MIN = 1 << 20

_DIGEST = re.compile(r"blake3:[0-9a-f]{64}")

# blake3's worker threads do not survive fork(): a forked child (multiprocessing's default on
# Linux) that hashed with them would wait forever for threads that were never copied. So a
# forked process hashes on its own thread (found by tests/system/test_crash.py, which forks runs).
_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _threads(size: int | None = None) -> int:
    if _forked or (size is not None and size < THREADED_MIN):
        return 1
    return blake3.blake3.AUTO


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """The digest of `data`.

    >>> digest_bytes(b"")
    'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'
    """
    return PREFIX + blake3.blake3(data, max_threads=_threads(len(data))).hexdigest()


def digest_file(path: str | os.PathLike) -> tuple[str, int]:
    """The digest and size of the file at `path`, read once in constant memory.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"")
    >>> digest_file(p) == (digest_bytes(b""), 0)
    True
    """
    with open(path, "rb", buffering=0) as f:
        small = os.fstat(f.fileno()).st_size < THREADED_MIN
        if small:  # the hot path for most step outputs: no thread, one read
            data = f.read()
            if len(data) < THREADED_MIN:  # the file may have grown since fstat
                return digest_bytes(data), len(data)
            hasher = Hasher()
            hasher.update(data)
        else:
            hasher = Hasher()
        for chunk in read_chunks(f):
            hasher.update(chunk)
    return hasher.digest(), hasher.size


class Hasher:
    """Incremental digest, for content that arrives in pieces.

    >>> h = Hasher()
    >>> h.update(b"ab"); h.update(b"c")
    >>> h.digest() == digest_bytes(b"abc"), h.size
    (True, 3)
    """

    __slots__ = ("_hash", "_size")

    def __init__(self) -> None:
        self._hash = blake3.blake3(max_threads=_threads())
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self._size += len(data) if not isinstance(data, memoryview) else data.nbytes

    def digest(self) -> str:
        return PREFIX + self._hash.hexdigest()

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size


def validate_digest(s: str) -> str:
    """Return `s` if it is a well-formed digest, else raise DigestError (a ValueError).

    Store paths are built from digests, so this also keeps a hostile string
    such as `"blake3:../../x"` from naming a path outside the store.

    >>> validate_digest("sha256:00")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.DigestError: 'sha256:00' is not a digest: expected 'blake3:' followed by 64 hex characters
    """
    if isinstance(s, str) and _DIGEST.fullmatch(s):
        return s
    raise DigestError(f"{s!r} is not a digest: expected 'blake3:' followed by 64 hex characters")


def is_digest(s: object) -> bool:
    """Whether `s` is a well-formed digest.

    >>> is_digest("blake3:" + "0" * 64), is_digest("blake3:XYZ")
    (True, False)
    """
    return isinstance(s, str) and _DIGEST.fullmatch(s) is not None
