"""The one rule for names people give things: tasks, models, aliases, tags.

Names travel through CLIs, SQL, file names and terminals, so they are kept to letters,
digits, `.`, `_` and `-`, at most 128 characters, and never `.` or `..`. The whole name must
match (`fullmatch`: `re.match` with `$` let a trailing newline through, so a tag `keep\\n`
printed as `keep` while meaning something else).
"""

from __future__ import annotations

import re
from typing import Any

MAX_LENGTH = 128
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")


def check(what: str, name: Any, error: type = ValueError) -> str:
    """`name` if it follows the rule, else `error` saying what is wrong with it.

    >>> check("tag", "keep")
    'keep'
    >>> check("tag", "keep\\n")
    Traceback (most recent call last):
    ...
    ValueError: tag 'keep\\n': use only letters, digits, '.', '_' and '-'
    >>> check("alias", "..")
    Traceback (most recent call last):
    ...
    ValueError: alias '..' is not a name: '.' and '..' are taken by paths
    """
    if not isinstance(name, str) or not name:
        raise error(f"{what} must be a non-empty string, not {name!r}")
    if len(name) > MAX_LENGTH:
        raise error(f"{what} {name[:32]!r}... is {len(name)} characters long: at most {MAX_LENGTH}")
    if name in (".", ".."):
        raise error(f"{what} {name!r} is not a name: '.' and '..' are taken by paths")
    if not _ALLOWED.fullmatch(name):
        raise error(f"{what} {name!r}: use only letters, digits, '.', '_' and '-'")
    return name
