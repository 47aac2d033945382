"""Retention commands: tag (keep an execution's objects), gc (remove what nothing kept needs)."""

from __future__ import annotations

import click

from ledgerflow.errors import RefError
from ledgerflow.app.commands.group import cli, guarded, open_ledger
from ledgerflow.app.commands.output import Table, echo, escape, new_console, print_json, short_digest


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cli.command()
@click.argument("execution")
@click.argument("tag", required=False)
@click.option("--remove", is_flag=True, help="Remove TAG (recorded as a new row; the history stays).")
@click.option("--why", default=None, help="Why, for the record.")
@click.option("--json", "as_json", is_flag=True, help="Print the execution's tags as JSON.")
@click.pass_context
@guarded
def tag(ctx, execution, tag, remove, why, as_json):
    """Tag EXECUTION with TAG (`keep`: gc never removes its objects); without TAG, list its tags."""
    ledger = open_ledger(ctx)
    if tag is None and remove:
        raise click.UsageError("--remove needs the TAG to remove")
    resolved = ledger.resolve(execution)
    if resolved.kind != "execution":
        raise RefError(f"{execution!r} names {'an artifact' if resolved.kind == 'artifact' else 'a step'}, "
                       "not an execution: tags belong to executions")
    eid = resolved.execution_id
    tags = ledger.tags(eid) if tag is None else ledger.tag(eid, tag, remove=remove, why=why)
    if as_json:
        print_json({"execution_id": eid, "tags": list(tags)})
        return
    echo(f"{eid}: {', '.join(tags) if tags else 'no tags'}")


@cli.command()
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the objects of the N newest executions.")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Keep the objects of executions newer than DAYS days.")
@click.option("--dry-run", is_flag=True, help="Remove nothing: list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def gc(ctx, keep_last, older_than, dry_run, as_json):
    """Remove store objects that no kept execution references; record each removal in the ledger.

    Kept: the N newest executions and those newer than DAYS (an execution goes only when it is
    outside both), executions tagged `keep`, running ones, every registered model version, and
    everything they reference (manifest entries and code snapshots included). Objects nothing
    references (left by a crashed write) go too, once older than an hour.
    """
    report = open_ledger(ctx).gc(keep_last=keep_last, older_than_days=older_than, dry_run=dry_run)
    if as_json:
        print_json(report)
        return
    out = new_console()
    verb = "would remove" if dry_run else "removed"
    out.print(f"store {escape(report.store)}: {report.objects_seen} objects, {report.objects_kept} kept "
              f"({len(report.kept_executions)} executions kept, {len(report.unkept_executions)} not)")
    if report.removed:
        table = Table("digest", "size", "reason", box=None)
        for r in report.removed[:50]:
            table.add_row(short_digest(r.digest), _size(r.size or 0), r.reason)
        out.print(table)
        if len(report.removed) > 50:
            out.print(f"... and {len(report.removed) - 50} more (--json lists them all)")
    if report.young_orphans:
        out.print(f"left {report.young_orphans} unreferenced objects younger than an hour (a run may be writing them)")
    out.print(f"{verb} {len(report.removed)} objects, {_size(report.bytes_removed)}"
              + ("" if dry_run else "; recorded in the ledger (gc_log)"))
