"""`lineage ui`: serve a local, read-only web app over the ledger (see docs/ui.md)."""

from __future__ import annotations

import click

from ledgerflow.app.commands.group import EXIT_USAGE, cli, fail, guarded, open_ledger
from ledgerflow.app.commands.output import echo


@cli.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than this machine's loopback lets others read the ledger.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the executions page in the default web browser.")
@click.pass_context
@guarded
def ui_cmd(ctx, host, port, open_browser):
    """Browse executions, graphs, artifacts, lineage, models and metrics in a web browser.

    Read-only: no page changes the ledger. Serves until Ctrl-C.
    """
    home = open_ledger(ctx).home  # NoLedger, saying where it looked, when there is none
    # Imported here, not at the top: starlette and uvicorn would slow every `lineage` command.
    from ledgerflow.app.ui import serving
    from ledgerflow.app.ui.routes import make_app

    warning = serving.host_warning(host)
    if warning:
        echo(warning, err=True)
    try:
        sock = serving.bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE)
    url = serving.url_of(sock)
    echo(f"lineage ui: serving {home.path} at {url} (Ctrl-C stops it)")
    if open_browser:
        import webbrowser

        webbrowser.open(url + "executions")
    try:
        serving.serve(make_app(home), sock)
    except KeyboardInterrupt:
        pass  # uvicorn stops on the first Ctrl-C; a second one lands here
    finally:
        sock.close()
    echo("lineage ui: stopped")
