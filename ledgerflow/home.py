"""Where Ledgerflow keeps its ledger and store: `LEDGERFLOW_HOME` and `LEDGERFLOW_STORE`."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

DEFAULT_HOME = ".ledgerflow"


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

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None, store: str | None = None) -> "Home":
        root = Path(path or os.environ.get("LEDGERFLOW_HOME") or DEFAULT_HOME).expanduser().absolute()
        store_url = store or os.environ.get("LEDGERFLOW_STORE") or str(root / "store")
        return cls(path=root, store_url=store_url)
