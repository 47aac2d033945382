"""The team ledger on a PostgreSQL server: `lineage ledger init` (see lineage/server.py)."""

from __future__ import annotations

import click

from ledgerflow.app.commands.group import cli, guarded
from ledgerflow.app.commands.output import echo, print_json


@cli.group("ledger")
def ledger_group():
    """Set up a team ledger on a PostgreSQL server."""


@ledger_group.command("init")
@click.argument("admin_url", metavar="POSTGRESQL_URL")
@click.option("--writer-password", help="Password of the writer role (default: generated for a new role, kept "
                                        "for an existing one).")
@click.option("--reader-password", help="Password of the reader role (default: as for the writer).")
@click.option("--writer", "writer_role", default="ledgerflow_writer", show_default=True,
              help="Name of the role that records (INSERT and SELECT only).")
@click.option("--reader", "reader_role", default="ledgerflow_reader", show_default=True,
              help="Name of the role that reads (SELECT only).")
@click.option("--json", "as_json", is_flag=True, help="Print the two URLs as JSON.")
@guarded
def init_cmd(admin_url, writer_password, reader_password, writer_role, reader_role, as_json):
    """Create the ledger in the database of POSTGRESQL_URL (connect as its owner or a superuser):
    the schema `ledgerflow`, its append-only tables (UPDATE, DELETE and TRUNCATE refused by
    privileges and by triggers), and a writer and a reader role. Running it again changes no
    row. Prints the URL each role connects with: give the writer's to whoever records
    (LEDGERFLOW_LEDGER), the reader's to dashboards and auditors."""
    from ledgerflow.lineage import server

    creds = server.init(admin_url, writer_password=writer_password, reader_password=reader_password,
                        writer=writer_role, reader=reader_role)
    if as_json:
        print_json({"writer": creds.writer_url, "reader": creds.reader_url})
        return
    echo(f"export LEDGERFLOW_LEDGER='{creds.writer_url}'")
    echo(f"# reader (query, show, verify; cannot record): {creds.reader_url}", err=True)
