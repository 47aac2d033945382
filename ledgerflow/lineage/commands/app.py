"""The `lineage` command group and what its commands share: errors, JSON, formatting.

Exit codes, for scripts:
  0  done; for `verify`, the ledger and the store are intact
  1  a problem was found (`verify`, a failed run or replay), or the ledger could not be read
  2  bad input: an unknown id or ref, an ambiguous prefix, bad or writing SQL, bad options

Errors are one line on stderr, never a traceback. `--json` prints stable, machine-readable
JSON on stdout (the shape of each value's `to_json()`, documented in docs/ledger.md).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime

from typing import TYPE_CHECKING

import click

from ledgerflow.errors import LedgerflowError, RefError
from ledgerflow.lineage.display import format_duration
from ledgerflow.printable import SafeStream, printable

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


# rich is imported by the commands that draw with it, not by `lineage --help` or `list` (~25 ms).
def escape(text: str) -> str:
    """`text` with rich markup characters escaped and control characters shown as escapes
    (`ledgerflow.printable`), so a recorded name prints as itself and moves no cursor."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


def echo(text: str = "", *, err: bool = False, **options) -> None:
    """click.echo for text that may hold what a workflow or the ledger said: made printable."""
    click.echo(printable(text), err=err, **options)


def Table(*columns, **options):  # noqa: N802 - stands in for rich.table.Table
    from rich.table import Table as RichTable

    return RichTable(*columns, **options)

_STATUS_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "failed": "red",
    "timeout": "red",
    "interrupted": "yellow",
    "running": "blue",
    "cancelled": "magenta",
    "skipped": "dim",
}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ledgerflow")
    except Exception:
        import ledgerflow

        return getattr(ledgerflow, "__version__", "unknown")


def _console() -> Console:
    from rich.console import Console

    # Wide when piped, so tables aren't cut to 80 columns in logs. Whatever a cell holds, no
    # control character reaches the terminal but rich's own colours.
    tty = sys.stdout.isatty()
    return Console(file=SafeStream(sys.stdout, styled=tty), width=None if tty else 160, highlight=False,
                   force_terminal=tty)


def _fail(message: str, code: int) -> None:
    click.echo(f"lineage: error: {printable(message)}", err=True)
    sys.exit(code)


def _guarded(fn):
    """Turn Ledgerflow and DuckDB errors into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RefError as exc:
            _fail(str(exc), EXIT_USAGE)
        except LedgerflowError as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            bad_input = text.startswith(("query sql is read-only", "bad SQL", "SQL error"))
            _fail(text, EXIT_USAGE if bad_input else EXIT_PROBLEM)
        except OSError as exc:
            # The machine said no (a name too long, a path under /proc, a full disk): say what and where.
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or type(exc).__name__}{where}", EXIT_PROBLEM)
        except RecursionError:
            _fail("the input is nested too deeply to handle", EXIT_USAGE)
        except Exception as exc:
            # duckdb is imported only by commands that open the ledger: if it is not loaded,
            # this can't be one of its errors (and `lineage --help` stays free of it).
            duckdb = sys.modules.get("duckdb")
            if duckdb is not None and isinstance(exc, duckdb.Error):
                _fail(f"ledger error: {_first_line(exc)}", EXIT_PROBLEM)
            if os.environ.get("LEDGERFLOW_DEBUG"):
                raise
            # A bug of ours: still one line, with what to do about it.
            _fail(f"internal error: {type(exc).__name__}: {_first_line(exc)} (set LEDGERFLOW_DEBUG=1 for the "
                  "traceback, and please report it)", EXIT_PROBLEM)

    return wrapper


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _print_json(data) -> None:
    from ledgerflow.lineage.values import jsonable

    click.echo(json.dumps(jsonable(data), indent=2, sort_keys=False, default=str))


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


_dur = format_duration


# The same colours as click.style keywords, for plain listings (commands/columns.py).
STATUS_COLORS = {status: ({"dim": True} if style == "dim" else {"fg": style}) for status, style in _STATUS_STYLE.items()}


def _status(status: str | None) -> str:
    status = status or "-"
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _print_version(ctx: click.Context, param, value) -> None:
    # The version is looked up only when asked for: package metadata is slow to read, and
    # every `lineage` command (and `--help`) would pay for it at start-up.
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"lineage, version {_version()}", color=ctx.color)
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.option(
    "--home",
    envvar="LEDGERFLOW_HOME",
    type=click.Path(file_okay=False),
    help="Ledgerflow home holding ledger.duckdb (default: $LEDGERFLOW_HOME or ./.ledgerflow).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Audit what Ledgerflow ran: executions, lineage, SQL, and tamper checks."""
    ctx.obj = {"home": home}


def _ledger(ctx: click.Context) -> Ledger:
    from ledgerflow.lineage.ledger import Ledger

    return Ledger(ctx.obj["home"])
