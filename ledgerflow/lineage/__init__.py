"""The lineage ledger: an append-only, hash-chained DuckDB record of every execution.

>>> from ledgerflow.lineage import Ledger
"""



def __getattr__(name: str):
    # PEP 562: `ledgerflow.lineage.Ledger` loads the ledger (duckdb, pyarrow) on first use,
    # so importing a submodule such as ledgerflow.app.running does not.
    if name == "Ledger":
        from ledgerflow.lineage.ledger import Ledger

        globals()["Ledger"] = Ledger
        return Ledger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Ledger"]
