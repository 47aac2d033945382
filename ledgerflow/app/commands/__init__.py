"""The `lineage` CLI: one module of commands per topic, on the group in group.py."""

from ledgerflow.app.commands import audit, exchange, live, logs, registry, retention, runs, runtime, team, ui  # noqa: F401  (they register their commands)
from ledgerflow.app.commands.group import cli


def main(argv: list | None = None) -> None:
    """Console-script entry point (`lineage`)."""
    cli.main(args=argv, prog_name="lineage")


__all__ = ["cli", "main"]
