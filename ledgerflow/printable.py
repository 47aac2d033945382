"""Text from workflows and the ledger, made safe to show on a terminal.

A task's error message, a metric name or a recorded parameter can hold ESC and OSC
sequences: printed raw, they clear the screen, move the cursor, print a fake green line
over a failure or retitle the window. Everything Ledgerflow writes for people goes
through `printable` (or a `SafeStream`): control characters and the Unicode controls that
reorder text are shown as escapes (`\\x1b`), so what is recorded is visible, not obeyed.
JSON output needs none of this: `json.dumps` escapes them itself and keeps the data exact.
"""

from __future__ import annotations

import functools
import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates ("Trojan Source": text that reads differently than it is).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# The one escape sequence Ledgerflow itself writes to a terminal: rich's colours (SGR).
_OWN_STYLE = re.compile("\x1b\\[[0-9;]*m")


def _shown(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as an escape.

    >>> printable("ok\\x1b[2J\\x1b]0;pwned\\x07 done\\n")
    'ok\\\\x1b[2J\\\\x1b]0;pwned\\\\x07 done\\n'
    """
    return _UNSAFE.sub(_shown, text)


class SafeStream:
    """A text stream that writes through `printable`, except the colour codes of the renderer
    that owns it (`styled=True`: rich's, on a terminal)."""

    def __init__(self, stream, *, styled: bool = False):
        self._stream = stream
        self._styled = styled

    def write(self, text: str) -> int:
        if not self._styled:
            return self._stream.write(printable(text))
        parts, end = [], 0
        for m in _OWN_STYLE.finditer(text):
            parts += [printable(text[end:m.start()]), m.group()]
            end = m.end()
        parts.append(printable(text[end:]))
        return self._stream.write("".join(parts))

    def __getattr__(self, name):  # flush, isatty, encoding, fileno: the stream's own
        return getattr(self._stream, name)


@functools.lru_cache(maxsize=16)
def is_terminal(stream) -> bool:
    """Whether `stream` is a terminal (False for anything that cannot say). Asked for every step
    of every run, of the same few streams: one system call each, once."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
