"""`python -m ledgerflow.app.cli` and the `lineage` console script start here."""

from ledgerflow.app.commands import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
