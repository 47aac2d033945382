"""The states an execution or a step is in, with how every renderer shows each.

A state is a `StrEnum`: its value is the text the ledger writes (`"succeeded"`), so rows,
`--json` and SQL are unchanged, and a plain string read back from the ledger compares and
hashes equal to its member. What a state looks like (colour, symbol, progress label, graph
colours) and what it means (final, a success, OpenLineage's run state) live beside it, here,
so that a new state is one entry, not an edit in each renderer.

>>> Status("cached").final, Status.CACHED.ok, Status.FAILED.display.colour
(True, True, 'red')
>>> Status.SUCCEEDED == "succeeded"
True
"""

from __future__ import annotations

import enum

import attrs


@attrs.frozen
class Display:
    """How one state is shown: a rich/click colour, a one-character symbol, the word the live
    progress line counts it under, and its graph node colours (fill, stroke, text)."""

    colour: str
    symbol: str
    label: str
    fill: tuple[str, str, str]


class Status(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CACHED = "cached"
    SKIPPED = "skipped"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the process recording it died before it finished

    @property
    def display(self) -> Display:
        return _DISPLAY[self]

    @property
    def final(self) -> bool:
        """Nothing more will be recorded for it (a step may still be retried as a new attempt)."""
        return self is not Status.RUNNING

    @property
    def ok(self) -> bool:
        """It produced its outputs (ran, or reused them)."""
        return self in (Status.SUCCEEDED, Status.CACHED)

    @property
    def openlineage(self) -> str:
        """OpenLineage's run state for it: START, COMPLETE, FAIL or ABORT."""
        return _OPENLINEAGE[self]


_RED = ("#fee2e2", "#dc2626", "#7f1d1d")
_AMBER = ("#fef3c7", "#d97706", "#78350f")
_DISPLAY = {
    Status.RUNNING: Display("blue", "▶", "running", ("#dbeafe", "#2563eb", "#1e3a8a")),
    Status.SUCCEEDED: Display("green", "✓", "done", ("#dcfce7", "#16a34a", "#14532d")),
    Status.CACHED: Display("cyan", "↺", "cached", ("#ede9fe", "#7c3aed", "#3b0764")),
    Status.FAILED: Display("red", "✗", "failed", _RED),
    Status.TIMEOUT: Display("red", "⏱", "failed", _RED),
    Status.SKIPPED: Display("dim", "–", "skipped", ("#f1f5f9", "#94a3b8", "#475569")),
    Status.CANCELLED: Display("magenta", "■", "failed", _AMBER),
    Status.INTERRUPTED: Display("yellow", "!", "failed", _AMBER),
}
_OPENLINEAGE = {
    Status.RUNNING: "START", Status.SUCCEEDED: "COMPLETE", Status.CACHED: "COMPLETE", Status.SKIPPED: "COMPLETE",
    Status.FAILED: "FAIL", Status.TIMEOUT: "FAIL", Status.CANCELLED: "ABORT", Status.INTERRUPTED: "ABORT",
}
UNKNOWN = Display("white", "?", "unknown", ("#f8fafc", "#64748b", "#334155"))


def display_of(status: str | None) -> Display:
    """How a state read back from the ledger is shown; UNKNOWN for text this version does not know."""
    try:
        return Status(status).display
    except ValueError:
        return UNKNOWN


EXECUTION_STATES = (Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
STEP_STATES = tuple(Status)
