"""Running executions, from any terminal on the machine: watch and cancel."""

from __future__ import annotations

import sys
import time

import click

from ledgerflow.app.commands.group import EXIT_OK, EXIT_PROBLEM, cli, guarded, open_ledger
from ledgerflow.app.commands.output import echo, new_console, print_json
from ledgerflow.engine.status import Status

WATCH_POLL_S = 1.0


@cli.command("watch")
@click.argument("execution")
@click.option("--interval", type=click.FloatRange(min=0.1), default=WATCH_POLL_S, show_default=True,
              help="Seconds between looks at the ledger.")
@click.pass_context
@guarded
def watch_cmd(ctx, execution, interval):
    """Follow a running execution live (the tree `show` prints, redrawn), until it ends.

    On a terminal the tree is redrawn in place; piped, each step's change of state is a line.
    Exit 0 when it succeeded, 1 when it failed, was cancelled or interrupted.
    """
    from ledgerflow.app.commands.audit import execution_tree

    ledger = open_ledger(ctx)
    eid = ledger.execution(execution).summary.id  # an execution ref; RefError (one line) for anything else
    if sys.stdout.isatty():
        from rich.live import Live

        with Live(console=new_console(), refresh_per_second=4, auto_refresh=False) as live:
            while True:
                d = ledger.execution(eid)
                live.update(execution_tree(ledger, d), refresh=True)
                if d.summary.status != Status.RUNNING:
                    break
                time.sleep(interval)
    else:
        seen: dict[str, str] = {}
        while True:
            d = ledger.execution(eid)
            for st in d.steps:
                if seen.get(st.step) != st.status:
                    seen[st.step] = st.status
                    echo(f"{time.strftime('%H:%M:%S')} {st.step} {st.status}")
            if d.summary.status != Status.RUNNING:
                break
            time.sleep(interval)
        echo(f"execution {eid} {d.summary.status}" + (f": {d.summary.error}" if d.summary.error else ""))
    sys.exit(EXIT_OK if d.summary.status == Status.SUCCEEDED else EXIT_PROBLEM)


@cli.command("cancel")
@click.argument("execution")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for it to stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the execution's summary once it stopped, as JSON.")
@click.pass_context
@guarded
def cancel_cmd(ctx, execution, wait, as_json):
    """Stop a running execution started anywhere on this machine, as Ctrl-C in its terminal
    would: the steps running are recorded cancelled, the rest not started."""
    summary = open_ledger(ctx).cancel(execution, wait=wait)
    if as_json:
        print_json(summary)
        return
    echo(f"execution {summary.id}: {summary.status}")
