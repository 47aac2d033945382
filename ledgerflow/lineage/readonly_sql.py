"""Running a user's SQL against the ledger without letting it write or reach outside.

Three guards, each enough on its own for the common cases, together for the rest:
the statement type (DuckDB's own parser says what each statement is; only SELECT and
EXPLAIN pass), a read-only connection (DuckDB refuses writes), and
`enable_external_access=false` locked in the configuration (no ATTACH, COPY, INSTALL,
LOAD or reading files such as `read_csv('/etc/passwd')`).
"""

from __future__ import annotations

import duckdb

from ledgerflow.errors import LedgerError

_ALLOWED = {"SELECT", "EXPLAIN"}

READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


def check(query: str) -> None:
    """Raise LedgerError unless every statement in `query` only reads.

    >>> check("SELECT 1")
    >>> check("DELETE FROM edges")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.LedgerError: query sql is read-only: refused a DELETE statement (statement 1)
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise LedgerError(f"bad SQL: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise LedgerError("bad SQL: no statement given")
    for i, st in enumerate(statements, 1):
        kind = st.type.name
        if kind not in _ALLOWED:
            raise LedgerError(f"query sql is read-only: refused a {kind} statement (statement {i})")
