"""Where Ledgerflow keeps its ledger and store: `LEDGERFLOW_HOME` and `LEDGERFLOW_STORE`.

With neither a path nor `LEDGERFLOW_HOME`, the home is found the way git finds `.git`: the
first `.ledgerflow` folder holding a ledger in this folder or one above it; if there is none,
`./.ledgerflow` (where a first run creates one).
"""

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
    # How the path was chosen: "given" (a path, the step's home, or LEDGERFLOW_HOME), "found"
    # (a .ledgerflow with a ledger in the working folder or above) or "default" (none found:
    # ./.ledgerflow). A reader with no ledger says where it looked (`looked_in`).
    found_by: str = attrs.field(default="given", eq=False)

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.duckdb"

    @property
    def journal_path(self) -> Path:
        """Where recording processes append their events before they are moved into the ledger."""
        return self.path / "journal"

    @property
    def exists(self) -> bool:
        """Whether this is a home: the ledger file, journals not yet moved into it, or the store."""
        return _is_home(self.path)

    @property
    def looked_in(self) -> str:
        """Where a home without a ledger was looked for, in words, for an error message."""
        if self.found_by == "given":
            return f"{self.path} (given by --home or LEDGERFLOW_HOME)"
        return f"{DEFAULT_HOME}/ in {self.path.parent} and every folder above it"

    @classmethod
    def resolve(cls, path: str | os.PathLike | None = None, store: str | None = None) -> "Home":
        given = path or _active.get() or os.environ.get("LEDGERFLOW_HOME")
        if given:
            root, found_by = Path(given).expanduser().absolute(), "given"
        else:
            found = discover(Path.cwd())
            root, found_by = (found, "found") if found is not None else (Path.cwd() / DEFAULT_HOME, "default")
        store_url = store or os.environ.get("LEDGERFLOW_STORE") or str(root / "store")
        return cls(path=root, store_url=store_url, found_by=found_by)


def discover(start: Path) -> Path | None:
    """The first `.ledgerflow` holding a ledger, journals or a store in `start` or a folder above it.

    >>> import tempfile; from pathlib import Path
    >>> top = Path(tempfile.mkdtemp()); (top / ".ledgerflow" / "journal").mkdir(parents=True)
    >>> (top / "a" / "b").mkdir(parents=True)
    >>> discover(top / "a" / "b") == top / ".ledgerflow"
    True
    """
    for folder in (start, *start.parents):
        if _is_home(folder / DEFAULT_HOME):
            return folder / DEFAULT_HOME
    return None


def _is_home(path: Path) -> bool:
    try:
        return (path / "ledger.duckdb").exists() or (path / "journal").is_dir() or (path / "store").is_dir()
    except OSError:  # a folder above this one that we may not read: not our home
        return False
