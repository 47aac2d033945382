"""How durations and sizes are written for people, in the CLI and in graphs."""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """'0.05 ms', '12 ms', '1.24 s', '2m 03s', '1h 02m', or '-' when unknown.

    >>> format_duration(0.012), format_duration(125)
    ('12 ms', '2m 05s')
    """
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def format_size(size: int | None) -> str:
    """'512 B', '56.4 KiB', '1.5 GiB', or '-' when unknown.

    >>> format_size(57754)
    '56.4 KiB'
    """
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover
