"""The store in effect: the one `using()` set, else the home's store."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Iterator

from ledgerflow.home import Home
from ledgerflow.store.cas import Store

# A ContextVar, not a global: threads and asyncio tasks each see the store
# their own `using()` set, and a Ray worker starts from the default.
_current: contextvars.ContextVar[Store | None] = contextvars.ContextVar("ledgerflow_store", default=None)


def current() -> Store:
    """The store set by the innermost `using()`, else the store of `Home.resolve()`.

    >>> import tempfile
    >>> with using(Store.open(tempfile.mkdtemp())) as s:
    ...     current() is s
    True
    """
    store = _current.get()
    if store is not None:
        return store
    return _open_cached(Home.resolve().store_url)


@functools.lru_cache(maxsize=32)
def _open_cached(url: str) -> Store:
    return Store.open(url)


@contextlib.contextmanager
def using(store: Store | str | os.PathLike) -> Iterator[Store]:
    """Make `store` (a Store, a path or a URL) the current store within the block."""
    if not isinstance(store, Store):
        store = Store.open(store)
    token = _current.set(store)
    try:
        yield store
    finally:
        _current.reset(token)
