"""The `lineage` command group, and what every command does on failure: one line, one exit code.

Exit codes, for scripts (`EXIT_CODES` maps error classes to them, in one table; README.md
lists it):
  0  done; for `verify`, the ledger and the store are intact
  1  a problem was found (`verify`, a failed run or replay), or the ledger could not be read
  2  bad input: a usage mistake, an unknown id or ref, an ambiguous prefix, bad or writing
     SQL, a model or keep/gc request that cannot be done, or no ledger where the command looked

Errors are one line on stderr, usage mistakes included, never a traceback. `--json` prints
stable, machine-readable JSON on stdout (the shape of each value's `to_json()`, documented in
docs/ledger.md). A command module adds itself with `@cli.command()` and `@guarded`:

>>> @cli.command("hello")
... @guarded
... def hello() -> None:
...     click.echo("hello")
>>> "hello" in cli.commands
True
>>> del cli.commands["hello"]
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

import click

from ledgerflow.errors import LedgerflowError, NoLedger, QueryError, RefError, RegistryError, RetentionError
from ledgerflow.printable import printable

if TYPE_CHECKING:
    from ledgerflow.lineage.ledger import Ledger

__all__ = ["EXIT_CODES", "EXIT_OK", "EXIT_PROBLEM", "EXIT_USAGE", "cli", "exit_code", "fail", "guarded",
           "open_ledger"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ledgerflow")
    except Exception:
        import ledgerflow

        return getattr(ledgerflow, "__version__", "unknown")


def fail(message: str, code: int) -> None:
    """Say `message` as the one error line on stderr and exit with `code` (EXIT_USAGE, EXIT_PROBLEM)."""
    click.echo(f"lineage: error: {printable(message)}", err=True)
    sys.exit(code)


# Error class -> exit code, most specific first; any other LedgerflowError is a problem (1).
EXIT_CODES: tuple = (
    (RefError, EXIT_USAGE),        # an id, ref or prefix that names nothing or more than one thing
    (NoLedger, EXIT_USAGE),        # no ledger where the command looked
    (QueryError, EXIT_USAGE),      # bad, writing or failing SQL; a bad limit; a negative depth
    (RegistryError, EXIT_USAGE),   # a model name, alias or version that cannot be used as asked
    (RetentionError, EXIT_USAGE),  # a keep/gc request that cannot be done as asked
)


def exit_code(exc: LedgerflowError) -> int:
    """The exit code for `exc`, by its class alone (`EXIT_CODES`).

    >>> exit_code(RefError("no such execution")), exit_code(LedgerflowError("broken"))
    (2, 1)
    """
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_PROBLEM


def guarded(fn):
    """Turn Ledgerflow and DuckDB errors into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LedgerflowError as exc:
            fail(_first_line(exc), exit_code(exc))
        except OSError as exc:
            # The machine said no (a name too long, a path under /proc, a full disk): say what and where.
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            fail(f"{exc.strerror or _first_line(exc)}{where}", EXIT_PROBLEM)
        except RecursionError:
            fail("the input is nested too deeply to handle", EXIT_USAGE)
        except Exception as exc:
            # duckdb is imported only by commands that open the ledger: if it is not loaded,
            # this can't be one of its errors (and `lineage --help` stays free of it).
            duckdb = sys.modules.get("duckdb")
            if duckdb is not None and isinstance(exc, duckdb.Error):
                fail(f"ledger error: {_first_line(exc)}", EXIT_PROBLEM)
            psycopg = sys.modules.get("psycopg")  # a team ledger's server (lineage/server.py)
            if psycopg is not None and isinstance(exc, psycopg.Error):
                fail(f"ledger server error: {_first_line(exc)}", EXIT_PROBLEM)
            if os.environ.get("LEDGERFLOW_DEBUG"):
                raise
            # A bug of ours: still one line, with what to do about it.
            fail(f"internal error: {type(exc).__name__}: {_first_line(exc)} (set LEDGERFLOW_DEBUG=1 for the "
                  "traceback, and please report it)", EXIT_PROBLEM)

    return wrapper


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


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
            fail(f"{e.format_message()} (see '{where} --help')", EXIT_USAGE)
        except click.ClickException as e:
            fail(e.format_message(), e.exit_code)
        except click.Abort:
            fail("aborted", EXIT_PROBLEM)
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


def open_ledger(ctx: click.Context, *, must_exist: bool = True) -> Ledger:
    """The ledger of the home the command was given or found; NoLedger, saying where it
    looked, when nothing was ever recorded there (unless the command creates one)."""
    from ledgerflow.home import Home
    from ledgerflow.lineage.ledger import Ledger

    home = Home.resolve(ctx.obj["home"])
    if must_exist and not home.exists and not ctx.obj.get("ledger"):
        raise NoLedger(f"no ledger found: looked for {home.looked_in}; run a workflow first, or give --home or "
                       "LEDGERFLOW_HOME")
    return Ledger(home, ledger=ctx.obj.get("ledger"))
