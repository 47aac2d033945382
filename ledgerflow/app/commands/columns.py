"""Plain aligned columns, for listings that may run to thousands of rows.

rich draws a Table cell by cell (measuring, wrapping, styling): ~0.5 ms a row, half a
second for `lineage list` on a ledger of 1,000 executions. A listing needs none of that:
pad each column to its widest cell, colour the status on a terminal, and write it in one go.
"""

from __future__ import annotations

import click

from ledgerflow.printable import printable


def render(headers: tuple, rows: list, *, styles: dict | None = None, color: bool = False) -> str:
    """`rows` (tuples of text) under `headers`, two spaces between columns, no trailing blanks.

    `styles`: column index -> {cell text: click.style keywords}, applied when `color`.

    >>> print(render(("id", "status"), [("01JD", "succeeded"), ("01JE", "failed")]))
    id    status
    01JD  succeeded
    01JE  failed
    """
    # A name recorded by someone else must not move the cursor or recolour the terminal: cells
    # are made printable here, and only the colours added below reach it.
    cells = [tuple(headers)] + [tuple(printable(str(c)) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    styles = styles or {}
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, cell in enumerate(row):
            padded = cell if i == len(row) - 1 else cell.ljust(widths[i])
            style = styles.get(i, {}).get(cell) if color and n else None
            parts.append(click.style(padded, **style) if style else padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
