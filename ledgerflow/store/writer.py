"""Streaming an object into the store whose digest is known only at the end."""

from __future__ import annotations

import io

from ledgerflow.errors import StoreRefused
from ledgerflow.store.digest import Hasher


class Writer(io.RawIOBase):
    """A writable binary stream that hashes what it is given; see `Store.writer()`.

    `digest` and `size` are None until the object is published, when the
    `with` block that made the writer ends without an error.
    """

    def __init__(self, temp):
        super().__init__()
        self._temp = temp
        self._hasher = Hasher()
        self.digest: str | None = None
        self.size: int | None = None
        self._failed: BaseException | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.digest is not None:
            raise StoreRefused(f"object {self.digest} is already published; it cannot be written to")
        if self._failed is not None:
            # A write already failed (a full disk: the temp file is gone). A caller that writes
            # again on its way out, as pyarrow's stream writer does when its `with` block closes
            # it, gets that error again, not "write to closed file", which would hide the
            # cause (found by tests/system/test_faults.py).
            raise self._failed
        before = self._hasher.size
        self._hasher.update(data)
        try:
            self._temp.write(data)
        except BaseException as e:
            self._failed = e
            raise
        return self._hasher.size - before

    def tell(self) -> int:
        return self._hasher.size

    def _publish(self) -> None:
        digest, size = self._hasher.digest(), self._hasher.size
        self._temp.publish(digest, size)
        self.digest, self.size = digest, size

    def _discard(self) -> None:
        self._temp.discard()

    def __repr__(self) -> str:
        return f"<Writer {self.digest or 'unpublished'} size={self.size if self.digest else self.tell()}>"
