"""Where Ledgerflow keeps its ledger and store: `LEDGERFLOW_HOME` and `LEDGERFLOW_STORE`."""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path

import attrs

DEFAULT_HOME = ".ledgerflow"

# The home of the run a step belongs to: set around each step, in Ray workers too, so code
# inside a step (reading the model registry, say) sees the driver's home, not its own cwd.
_active: contextvars.ContextVar[str | None] = contextvars.ContextVar("ledgerflow_home", default=None)


@contextlib.contextmanager
def using(path: str | os.PathLike | None):
    """Make `path` the home that `Home.resolve()` finds inside the block."""
    token = _active.set(None if path is None else str(path))
    try:
        yield
    finally:
        _active.reset(token)


@attrs.frozen
class Home:
    """A Ledgerflow home: the ledger file and, unless `LEDGERFLOW_STORE` says otherwise, the store.

    >>> home = Home.resolve("/tmp/lf")
    >>> str(home.ledger_path)
    '/tmp/lf/ledger.duckdb'
    """

    path: Path
    store_url: str

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.duckdb"

    @property
    def journal_path(self) -> Path:
        """Where recording processes append their events before they are moved into the ledger."""
        return self.path / "journal"

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None, store: str | None = None) -> "Home":
        root = Path(path or _active.get() or os.environ.get("LEDGERFLOW_HOME") or DEFAULT_HOME).expanduser().absolute()
        store_url = store or os.environ.get("LEDGERFLOW_STORE") or str(root / "store")
        return cls(path=root, store_url=store_url)
