"""The lineage ledger: an append-only, hash-chained DuckDB record of every execution.

>>> from ledgerflow.lineage import Ledger
"""

from ledgerflow.lineage.ledger import Ledger

__all__ = ["Ledger"]
