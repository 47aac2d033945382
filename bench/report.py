"""Writes one benchmark's section into docs/benchmarks.md, leaving the other sections alone."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of docs/benchmarks.md with body."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nRun by hand; never asserted in tests.\n"
    stamp = f"_Measured {dt.date.today().isoformat()} on {machine()}._\n\n"
    section = f"## {title}\n\n{stamp}{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
