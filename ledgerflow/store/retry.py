"""Retry remote filesystem calls that fail for passing reasons.

Object stores drop connections, throttle and time out now and then; a bounded
exponential backoff rides over that without hiding a store that is really down.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from ledgerflow.errors import StoreError

T = TypeVar("T")

TRIES = 5
FIRST_DELAY_S = 0.05

# Errors that will fail the same way however often they are retried.
# FileNotFoundError passes through untouched: callers turn it into ObjectNotFound
# or treat it as "not there yet".
_PERMANENT = (FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError)


def retrying(what: str, url: str, fn: Callable[..., T], *args, **kwargs) -> T:
    """Call `fn(*args, **kwargs)`, retrying transient errors; StoreError when they persist.

    >>> retrying("listing", "memory://x", lambda: 42)
    42
    """
    delay = FIRST_DELAY_S
    for attempt in range(1, TRIES + 1):
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise
        except _PERMANENT as e:
            raise StoreError(f"{what} failed in the store at {url}: {e!r}") from e
        except (OSError, TimeoutError, ConnectionError) as e:
            if attempt == TRIES:
                raise StoreError(f"{what} failed in the store at {url} after {TRIES} tries: {e!r}") from e
            # Jitter keeps many workers that failed together from retrying together.
            time.sleep(delay * (0.5 + random.random()))
            delay *= 2
    raise AssertionError("unreachable")
