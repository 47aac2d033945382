"""How `lineage` commands print: one line of text, JSON, tables, pages, short digests and times.

Everything a command prints may hold what a workflow or the ledger said, so it is made
printable (`ledgerflow.printable`) on its way out.

>>> short_digest("blake3:" + "ab" * 32)
'blake3:abababababab'
>>> format_duration(90.5)
'1m 30s'
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from ledgerflow.app.display import format_duration
from ledgerflow.engine.status import Status, display_of
from ledgerflow.printable import SafeStream, printable

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["STATUS_COLORS", "Table", "echo", "escape", "format_duration", "new_console", "page", "print_json",
           "print_paged", "short_digest", "status_markup", "timestamp"]


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



# Piped output is read by programs and pasted into tickets: wide enough that nothing wraps.
_PIPED_WIDTH = 1000


def new_console() -> Console:
    """A rich Console on stdout: styled on a terminal, wide and plain when piped."""
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
    console = new_console()
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


def print_json(data) -> None:
    """`data` (values with `to_json()`, lists, dicts) as indented JSON on stdout: what `--json` prints."""
    from ledgerflow.lineage.values import jsonable

    click.echo(json.dumps(jsonable(data), indent=2, sort_keys=False, default=str))


def short_digest(digest: str | None) -> str:
    """A digest as printed in tables: its algorithm and first 12 hex digits (`-` for none)."""
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def timestamp(at: datetime | None) -> str:
    """A recorded time as printed in tables (UTC, to the second; `-` for none)."""
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"




# The states' colours as click.style keywords, for plain listings (commands/columns.py).
STATUS_COLORS = {s.value: ({"dim": True} if s.display.colour == "dim" else {"fg": s.display.colour}) for s in Status}


def status_markup(status: str | None) -> str:
    """A state in its colour, as rich markup (`Status.display`)."""
    return f"[{display_of(status).colour}]{status or '-'}[/]"


