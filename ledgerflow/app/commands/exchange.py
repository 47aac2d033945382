"""Exchange commands: export (OpenLineage events, or the ledger as Parquet) and import."""

from __future__ import annotations

import os

import click

from ledgerflow.errors import ExchangeError
from ledgerflow.app.commands.group import EXIT_USAGE, cli, fail, guarded, open_ledger
from ledgerflow.app.commands.output import echo, new_console, print_json


@cli.command("export")
@click.argument("target", required=False)
@click.option("--format", "fmt", type=click.Choice(["openlineage", "parquet"]), required=True,
              help="openlineage: one execution's run events as JSON lines. parquet: every ledger table.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="openlineage: write to this file instead of standard output.")
@click.option("--namespace", default=None,
              help="OpenLineage job namespace (default: $OPENLINEAGE_NAMESPACE or 'ledgerflow').")
@click.option("--dataset-namespace", default=None,
              help="OpenLineage namespace of every dataset (default: the URL of the store holding it).")
@click.option("--json", "as_json", is_flag=True, help="parquet: print what was written as JSON.")
@click.pass_context
@guarded
def export_cmd(ctx, target, fmt, output, namespace, dataset_namespace, as_json):
    """Export an execution as OpenLineage events, or the whole ledger as Parquet.

    \b
    lineage export ID --format openlineage [-o FILE]   START and COMPLETE/FAIL/ABORT events
                                                        of the execution and of each step attempt
    lineage export --format parquet DIR                 every ledger table, chain columns included,
                                                        for other tools or `lineage import`
    """
    if target is None:
        fail(f"export --format {fmt} needs {'an execution ID' if fmt == 'openlineage' else 'a DIR'}", EXIT_USAGE)
    ledger = open_ledger(ctx)
    if fmt == "parquet":
        if output or namespace or dataset_namespace:
            fail("--output, --namespace and --dataset-namespace are for --format openlineage", EXIT_USAGE)
        try:
            from ledgerflow.lineage.exchange import export

            report = export(ledger, target)
        except ExchangeError as exc:
            fail(str(exc), EXIT_USAGE)
        if as_json:
            print_json(report.to_json())
        else:
            rows = sum(n for t, n in report.tables.items() if t != "meta")
            new_console().print(f"wrote {len(report.tables)} tables ({rows} chained rows, head seq {report.head_seq} "
                             f"{report.head_hash[:16]}) to {target}")
        return
    try:
        from ledgerflow.lineage.openlineage import export_events, to_json
    except ImportError:
        fail("--format openlineage needs openlineage-python: pip install 'ledgerflow[openlineage]'", EXIT_USAGE)
    events = export_events(ledger, target, namespace=namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or "ledgerflow",
                           dataset_namespace=dataset_namespace)
    text = "".join(to_json(e) + "\n" for e in events)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        echo(f"wrote {len(events)} events to {output}", err=True)
    else:
        echo(text, nl=False)


@cli.command("import")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
@click.pass_context
@guarded
def import_cmd(ctx, directory, as_json):
    """Merge a `lineage export --format parquet` DIR into this home's ledger.

    The export's chain is verified first (a tampered export is refused, exit 1); its rows
    are appended to this ledger's chain in their original order, skipping executions and
    artifacts already here. Store objects are not copied.
    """
    from ledgerflow.lineage.exchange import import_export

    try:
        report = import_export(open_ledger(ctx, must_exist=False), directory)
    except ExchangeError as exc:
        fail(str(exc), EXIT_USAGE)
    if as_json:
        print_json(report.to_json())
        return
    rows = sum(report.imported.values())
    line = f"imported {len(report.executions_imported)} executions ({rows} rows"
    line += f", seq {report.first_seq}..{report.last_seq})" if rows else ")"
    if report.executions_skipped:
        line += f"; skipped {len(report.executions_skipped)} already here"
    new_console().print(line)
