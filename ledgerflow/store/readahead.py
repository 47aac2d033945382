"""Read a file ahead of its consumer, on a second thread.

Hashing (blake3) and writing both release the GIL, so a reader thread that
fills the next buffer while the consumer hashes the current one overlaps I/O
with compute. Small buffers (2 MiB) in a short ring keep the data in the CPU
cache between the read and the hash, which measured faster here than large
buffers or windowed mmap, and never risks the SIGBUS a truncated mmap brings.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

CHUNK_SIZE = 2 << 20
DEPTH = 3  # one buffer held by the consumer, up to two filled ahead


def read_chunks(f: BinaryIO, *, chunk_size: int = CHUNK_SIZE, ahead: bool = True) -> Iterator[memoryview]:
    """Yield the rest of `f` as memoryviews over a few reused buffers.

    A yielded view is valid only until the next one is asked for: the buffer
    under it is refilled then. Memory use is `DEPTH * chunk_size` whatever the
    size of the file.

    >>> import io
    >>> [bytes(c) for c in read_chunks(io.BytesIO(b"abcde"), chunk_size=2, ahead=False)]
    [b'ab', b'cd', b'e']
    """
    if not ahead:
        yield from _read_inline(f, chunk_size)
        return

    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray | BaseException, int]] = queue.SimpleQueue()
    for _ in range(DEPTH):
        free.put(bytearray(chunk_size))

    def fill() -> None:
        try:
            while (buf := free.get()) is not None:
                n = f.readinto(buf) or 0
                full.put((buf, n))
                if n == 0:
                    return
        except BaseException as e:  # handed to the consumer, which re-raises it in its own thread
            full.put((e, 0))

    reader = threading.Thread(target=fill, name="ledgerflow-readahead", daemon=True)
    reader.start()
    try:
        while True:
            buf, n = full.get()
            if isinstance(buf, BaseException):
                raise buf
            if n == 0:
                return
            with memoryview(buf) as view:
                yield view[:n]
            free.put(buf)
    finally:
        # Also reached when the consumer stops early: the None wakes the reader
        # if it waits for a buffer, and it never blocks on `full` (unbounded).
        free.put(None)
        reader.join()


def _read_inline(f: BinaryIO, chunk_size: int) -> Iterator[memoryview]:
    buf = bytearray(chunk_size)
    with memoryview(buf) as view:
        while n := f.readinto(buf):
            yield view[:n]
