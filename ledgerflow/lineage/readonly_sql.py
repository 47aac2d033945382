"""Running a user's SQL against the ledger without letting it write or reach outside.

Three guards, each enough on its own for the common cases, together for the rest:
the statement type (DuckDB's own parser says what each statement is; only SELECT and
EXPLAIN pass), a read-only connection (DuckDB refuses writes), and
`enable_external_access=false` locked in the configuration (no ATTACH, COPY, INSTALL,
LOAD or reading files such as `read_csv('/etc/passwd')`).

And two bounds, so that one query can neither exhaust the machine nor hold the ledger's
(shared) lock long enough to stall the writers waiting for it: a memory limit
(`memory_limit`, locked like the rest of the configuration, and no spilling to disk:
`max_temp_directory_size` 0) and a statement timeout (DuckDB has no such setting: a timer
thread calls `interrupt()` on the connection). Defaults: DEFAULT_TIMEOUT_S, DEFAULT_MEMORY;
`lineage query sql --timeout/--memory` and `Ledger.sql(timeout=, memory=)` change them.
"""

from __future__ import annotations

import re
import threading

import duckdb

from ledgerflow.errors import LedgerError, QueryError

_ALLOWED = {"SELECT", "EXPLAIN"}

READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY = "1GB"

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def config(memory: str = DEFAULT_MEMORY) -> dict:
    """The connection configuration of a read-only query using at most `memory` (e.g. "1GB").

    >>> config("512MB")["memory_limit"]
    '512MB'
    >>> config("lots")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.QueryError: bad memory limit 'lots': give a size such as 512MB or 2GB
    """
    if not isinstance(memory, str) or not _MEMORY.match(memory):
        raise QueryError(f"bad memory limit {memory!r}: give a size such as 512MB or 2GB")
    return {**READ_ONLY_CONFIG, "memory_limit": memory.replace(" ", ""), "max_temp_directory_size": "0B"}


def run(con, query: str, params, *, timeout: float | None = DEFAULT_TIMEOUT_S, memory: str = DEFAULT_MEMORY):
    """Run `query` on `con` (opened with `config(memory)`) as a pyarrow Table, stopped after
    `timeout` seconds (None or 0: no limit); LedgerError, in one line, for any failure."""
    if timeout is not None and timeout < 0:
        raise QueryError(f"bad timeout {timeout!r}: give seconds, or 0 for no limit")
    state = {"done": False, "fired": False}
    lock = threading.Lock()

    def stop():
        with lock:
            if not state["done"]:
                state["fired"] = True
                con.interrupt()

    timer = threading.Timer(timeout, stop) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        return con.sql(query, params=params or None).to_arrow_table()
    except duckdb.Error as exc:
        if state["fired"]:
            raise LedgerError(f"query sql stopped: it ran past the {timeout:g} s timeout "
                              "(--timeout SECONDS to allow more, 0 for no limit)") from None
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise LedgerError(f"query sql stopped: it needed more than its {memory} memory limit "
                              "(--memory SIZE to allow more, e.g. --memory 4GB)") from None
        raise QueryError(f"SQL error: {str(exc).splitlines()[0]}") from exc
    finally:
        with lock:
            state["done"] = True
        if timer is not None:
            timer.cancel()


def check(query: str) -> None:
    """Raise LedgerError unless every statement in `query` only reads.

    >>> check("SELECT 1")
    >>> check("DELETE FROM edges")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.QueryError: query sql is read-only: refused a DELETE statement (statement 1)
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise QueryError("bad SQL: no statement given")
    for i, st in enumerate(statements, 1):
        kind = st.type.name
        if kind not in _ALLOWED:
            raise QueryError(f"query sql is read-only: refused a {kind} statement (statement {i})")
