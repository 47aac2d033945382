"""Where an object lives in a store tree: `objects/<2 hex>/<62 hex>`, as in git.

The two-character fan-out keeps directories small (256 of them, each with
1/256 of the objects), which matters to filesystems that slow down with
large directories and to object stores that list by prefix.
"""

from __future__ import annotations

from ledgerflow.store.digest import PREFIX, is_digest, validate_digest

OBJECTS = "objects"
TMP = "tmp"
CHECKOUTS = "checkouts"


def object_key(digest: str) -> str:
    """The object's path relative to the store root.

    >>> object_key("blake3:" + "ab" + "0" * 62)
    'objects/ab/00000000000000000000000000000000000000000000000000000000000000'
    """
    hex_ = validate_digest(digest)[len(PREFIX) :]
    return f"{OBJECTS}/{hex_[:2]}/{hex_[2:]}"


def digest_of_key(fanout: str, name: str) -> str | None:
    """The digest an `objects/<fanout>/<name>` entry stands for, or None if it is not an object."""
    candidate = PREFIX + fanout + name
    return candidate if is_digest(candidate) else None
