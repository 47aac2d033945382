"""The `lineage` command group and what its commands share: errors, JSON, formatting.

Exit codes, for scripts (one table, `EXIT_CODES`, maps error classes to them; README.md
lists it):
  0  done; for `verify`, the ledger and the store are intact
  1  a problem was found (`verify`, a failed run or replay), or the ledger could not be read
  2  bad input: a usage mistake, an unknown id or ref, an ambiguous prefix, bad or writing
     SQL, or no ledger where the command looked

Errors are one line on stderr, usage mistakes included, never a traceback. `--json` prints stable, machine-readable
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

from ledgerflow.engine.status import Status, display_of
from ledgerflow.errors import LedgerflowError, NoLedger, RefError
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


# Columns that hold what a reader copies into the next command: never cut nor wrapped.
WHOLE_COLUMNS = frozenset({"id", "ref", "execution", "digest"})


def Table(*columns, **options):  # noqa: N802 - stands in for rich.table.Table
    """A rich table whose id, ref, execution and digest columns are kept whole (the other
    columns wrap to make room): the thing a reader copies must never be the thing cut."""
    from rich.table import Table as RichTable

    class WholeIdTable(RichTable):
        def add_row(self, *cells, **kwargs):
            super().add_row(*cells, **kwargs)
            for column, cell in zip(self.columns, cells):
                if str(column.header) in WHOLE_COLUMNS and isinstance(cell, str):
                    column.no_wrap = True
                    column.min_width = max(column.min_width or 0, len(cell))

    return WholeIdTable(*columns, **options)



def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ledgerflow")
    except Exception:
        import ledgerflow

        return getattr(ledgerflow, "__version__", "unknown")


# Piped output is read by programs and pasted into tickets: wide enough that nothing wraps.
_PIPED_WIDTH = 1000


def _console() -> Console:
    from rich.console import Console

    # Wide when piped, so tables aren't cut to 80 columns in logs. Whatever a cell holds, no
    # control character reaches the terminal but rich's own colours.
    tty = sys.stdout.isatty()
    return Console(file=SafeStream(sys.stdout, styled=tty), width=None if tty else _PIPED_WIDTH, highlight=False,
                   force_terminal=tty)


def _needs_pager(text: str) -> bool:
    import shutil

    if not sys.stdout.isatty():
        return False
    size = shutil.get_terminal_size()
    return text.count("\n") >= size.lines - 1 or any(len(line) > size.columns for line in text.splitlines())


def _pager(text: str) -> None:
    # As git does: quit if it fits, keep colours, cut long lines (scroll sideways), leave the screen.
    os.environ.setdefault("LESS", "FRSX")
    click.echo_via_pager(text, color=True)


def page(text: str) -> None:
    """Print `text`; on a terminal, through the pager ($PAGER, else less) when it would not fit."""
    if _needs_pager(text):
        _pager(text)
    else:
        click.echo(text)


def print_paged(renderable, *, wide: bool = False) -> None:
    """Print a rich renderable (a tree, a table) like `page`; `wide`: at its natural width,
    however wide, rather than squeezed to the terminal's."""
    console = _console()
    if not sys.stdout.isatty():
        console.print(renderable)
        return
    if wide:
        console.width = _PIPED_WIDTH
    with console.capture() as captured:
        console.print(renderable)
    text = captured.get()
    if wide:
        text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    if _needs_pager(text):
        _pager(text)
    else:
        click.echo(text, nl=False)


def _fail(message: str, code: int) -> None:
    click.echo(f"lineage: error: {printable(message)}", err=True)
    sys.exit(code)


# Error class -> exit code, most specific first; any other LedgerflowError is a problem (1).
EXIT_CODES: tuple = ((RefError, EXIT_USAGE), (NoLedger, EXIT_USAGE))


def _exit_code(exc: LedgerflowError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    text = str(exc)
    # readonly_sql says what was wrong with a query in its message; it is the user's input.
    return EXIT_USAGE if text.startswith(("query sql is read-only", "bad SQL", "SQL error")) else EXIT_PROBLEM


def _guarded(fn):
    """Turn Ledgerflow and DuckDB errors into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LedgerflowError as exc:
            _fail(_first_line(exc), _exit_code(exc))
        except OSError as exc:
            # The machine said no (a name too long, a path under /proc, a full disk): say what and where.
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or _first_line(exc)}{where}", EXIT_PROBLEM)
        except RecursionError:
            _fail("the input is nested too deeply to handle", EXIT_USAGE)
        except Exception as exc:
            # duckdb is imported only by commands that open the ledger: if it is not loaded,
            # this can't be one of its errors (and `lineage --help` stays free of it).
            duckdb = sys.modules.get("duckdb")
            if duckdb is not None and isinstance(exc, duckdb.Error):
                _fail(f"ledger error: {_first_line(exc)}", EXIT_PROBLEM)
            psycopg = sys.modules.get("psycopg")  # a team ledger's server (lineage/server.py)
            if psycopg is not None and isinstance(exc, psycopg.Error):
                _fail(f"ledger server error: {_first_line(exc)}", EXIT_PROBLEM)
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


# The states' colours as click.style keywords, for plain listings (commands/columns.py).
STATUS_COLORS = {s.value: ({"dim": True} if s.display.colour == "dim" else {"fg": s.display.colour}) for s in Status}


def _status(status: str | None) -> str:
    return f"[{display_of(status).colour}]{status or '-'}[/]"


def _print_version(ctx: click.Context, param, value) -> None:
    # The version is looked up only when asked for: package metadata is slow to read, and
    # every `lineage` command (and `--help`) would pay for it at start-up.
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"lineage, version {_version()}", color=ctx.color)
    ctx.exit()


def _home_after_verb(ctx: click.Context, param, value) -> None:
    if value is not None:  # `lineage list --home X` is `lineage --home X list`
        ctx.find_root().obj[param.name] = value


_LEDGER_HELP = ("The team ledger to use instead of the home's ledger.duckdb: postgresql://USER:PASSWORD@HOST/DB "
                "(default: $LEDGERFLOW_LEDGER).")


class LineageGroup(click.Group):
    """The `lineage` group: every command also takes `--home` after its verb, and a usage
    mistake is one line on stderr, like every other error."""

    group_class = type  # `query`, `model`, ... are LineageGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "home" for p in cmd.params):  # commands and groups (`lineage query --home X`)
            cmd.params.append(click.Option(
                ["--home"], type=click.Path(file_okay=False), expose_value=False, callback=_home_after_verb,
                help="Ledgerflow home (as `lineage --home`; default: $LEDGERFLOW_HOME, or the .ledgerflow "
                     "found here or above)."))
        if not any(p.name == "ledger" for p in cmd.params):
            cmd.params.append(click.Option(["--ledger"], metavar="URL", expose_value=False,
                                           callback=_home_after_verb, help=_LEDGER_HELP))
        super().add_command(cmd, name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `lineage`, `lineage query`: the help, as asked
            click.echo(e.ctx.get_help())
            sys.exit(EXIT_OK)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else (prog_name or "lineage")
            _fail(f"{e.format_message()} (see '{where} --help')", EXIT_USAGE)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.Abort:
            _fail("aborted", EXIT_PROBLEM)
        sys.exit(code if isinstance(code, int) else EXIT_OK)  # `ctx.exit(n)` comes back as n


@click.group(cls=LineageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.option(
    "--home",
    envvar="LEDGERFLOW_HOME",
    type=click.Path(file_okay=False),
    help="Ledgerflow home holding ledger.duckdb (default: $LEDGERFLOW_HOME, or the .ledgerflow found in this "
         "folder or the nearest one above it, as git finds .git).",
)
@click.option("--ledger", envvar="LEDGERFLOW_LEDGER", metavar="URL", help=_LEDGER_HELP)
@click.pass_context
def cli(ctx: click.Context, home: str | None, ledger: str | None) -> None:
    """Audit what Ledgerflow ran: executions, lineage, SQL, and tamper checks."""
    ctx.obj = {"home": home, "ledger": ledger or None}


def _ledger(ctx: click.Context, *, must_exist: bool = True) -> Ledger:
    """The ledger of the home the command was given or found; NoLedger, saying where it
    looked, when nothing was ever recorded there (unless the command creates one)."""
    from ledgerflow.home import Home
    from ledgerflow.lineage.ledger import Ledger

    home = Home.resolve(ctx.obj["home"])
    if must_exist and not home.exists and not ctx.obj.get("ledger"):
        raise NoLedger(f"no ledger found: looked for {home.looked_in}; run a workflow first, or give --home or "
                       "LEDGERFLOW_HOME")
    return Ledger(home, ledger=ctx.obj.get("ledger"))
