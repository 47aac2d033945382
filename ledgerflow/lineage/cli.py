"""`python -m ledgerflow.lineage.cli` and the `lineage` console script start here."""

from ledgerflow.lineage.commands import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
