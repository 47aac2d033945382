"""A read stream that checks the content against its digest as it is read."""

from __future__ import annotations

import io
from typing import BinaryIO

from ledgerflow.errors import IntegrityError
from ledgerflow.store.digest import Hasher


class VerifyingReader(io.RawIOBase):
    """Reads `raw` through, hashing; raises IntegrityError once the end shows a mismatch.

    Not seekable: a seek would leave bytes unhashed, so verification could not
    be trusted. Ask the store for an unverified stream (or `local_path`) for
    random access.

    >>> import io
    >>> from ledgerflow.store.digest import digest_bytes
    >>> r = VerifyingReader(io.BytesIO(b"abc"), digest_bytes(b"abc"), 3, "mem")
    >>> r.read()
    b'abc'
    """

    def __init__(self, raw: BinaryIO, digest: str, size: int, location: str):
        super().__init__()
        self._raw = raw
        self._hasher = Hasher()
        self._digest = digest
        self._size = size
        self._location = location
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._raw.readinto(b) or 0
        if n:
            with memoryview(b) as view:
                self._hasher.update(view[:n])
        if not self._checked and (n == 0 or self._hasher.size >= self._size):
            self._check()
        return n

    def _check(self) -> None:
        self._checked = True
        actual = self._hasher.digest()
        if actual != self._digest or self._hasher.size != self._size:
            raise IntegrityError(
                f"object {self._digest} at {self._location} is corrupt: "
                f"its {self._hasher.size} bytes hash to {actual}",
                digest=self._digest,
                location=self._location,
            )

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
