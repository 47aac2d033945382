"""Retry remote filesystem calls that fail for passing reasons.

Object stores drop connections, throttle and time out now and then; a bounded
exponential backoff rides over that without hiding a store that is really down.

This is the only retry layer: the remote backend turns off botocore's and
s3fs's own retries (see `ledgerflow.store.remote`), so a dead endpoint costs
`TRIES` attempts and at most about `sum(delays)` seconds of sleep, not the
product of three nested retry loops.
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import TypeVar

from ledgerflow.errors import StoreError

T = TypeVar("T")

TRIES = 5
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0
_sleep = time.sleep  # a seam for tests

# Errors that will fail the same way however often they are retried.
# FileNotFoundError passes through untouched: callers turn it into ObjectNotFound
# or treat it as "not there yet".
_PERMANENT = (FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError)

# OSErrors (s3fs maps S3 error codes to errnos) that no retry will fix: a
# malformed request, an object too large, a full or read-only local disk.
_PERMANENT_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EINVAL", "EMSGSIZE", "ENAMETOOLONG", "ENOSPC", "EROFS", "EDQUOT", "EACCES", "EPERM")
    if hasattr(errno, name)
)

# Libraries whose own exceptions mean "the store failed", never a bug of ours:
# anything they raise that is not recognised as transient becomes a StoreError.
_STORE_LIBRARIES = ("botocore", "aiobotocore", "boto3", "s3fs", "gcsfs", "adlfs", "azure", "aiohttp", "google", "urllib3", "requests", "fsspec")

# Class names, anywhere in an exception's MRO, of connection-level failures
# that libraries raise without subclassing OSError (botocore's ConnectionError
# and HTTPClientError, aiohttp's ClientConnectionError and ClientPayloadError...).
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "HTTPClientError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "IncompleteReadError",
        "ResponseStreamingError",
        "ResponseParserError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "ServerTimeoutError",
        "ProtocolError",
        "IncompleteRead",
        "ChunkedEncodingError",
    }
)


def _library_of(e: BaseException) -> str | None:
    for cls in type(e).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in _STORE_LIBRARIES:
            return root
    return None


def _http_status(e: BaseException) -> int | None:
    for attr in ("status", "code", "status_code"):
        value = getattr(e, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def is_transient(e: BaseException) -> bool:
    """Whether trying again may succeed: a dropped connection, a timeout, throttling, a 5xx."""
    if isinstance(e, FileNotFoundError) or isinstance(e, _PERMANENT):
        return False
    if isinstance(e, OSError) and e.errno in _PERMANENT_ERRNOS:
        return False
    if isinstance(e, (OSError, TimeoutError, ConnectionError)):
        return True
    if _library_of(e) is None:
        return False
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(e).__mro__):
        return True
    status = _http_status(e)
    return status is not None and (status == 429 or status >= 500)


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
        except Exception as e:
            if not is_transient(e):
                if isinstance(e, (_PERMANENT, OSError)) or _library_of(e) is not None:
                    raise StoreError(f"{what} failed in the store at {url}: {_describe(e)}") from e
                raise  # not a store failure (a bug, an IntegrityError): let it through as it is
            if attempt == TRIES:
                raise StoreError(
                    f"{what} failed in the store at {url} after {TRIES} tries: {_describe(e)}"
                ) from e
            # Jitter keeps many workers that failed together from retrying together.
            _sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"
