"""Execution ids: ULIDs, unique and sortable by time, like `01JD3Q8ZKX7V2M5N9P4R6T8W0Y`."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_lock = threading.Lock()
_last = (0, 0)


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds then 80 random bits, increasing within a process.

    >>> a, b = new_id(), new_id()
    >>> len(a), a < b
    (26, True)
    """
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        if ms <= last_ms:
            # Same millisecond (or a clock step back): count up so ids keep their order.
            ms, rand = last_ms, last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for counting up
        _last = (ms, rand)
    value = (ms << 80) | rand
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))
