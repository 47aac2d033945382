"""Directory manifests: a directory as the list of its files' digests (a Merkle node).

The manifest's own digest names the whole tree: any change to any file's
content, name or executable bit changes it, and the order in which files were
created does not. Only files are recorded; directories are implied by the
paths under them, so an empty directory is not recorded (as in git).
"""

from __future__ import annotations

import functools
import json

import attrs

from ledgerflow.errors import ManifestError
from ledgerflow.store.digest import digest_bytes, validate_digest

FORMAT = "ledgerflow.manifest/1"


def check_entry_path(path: str) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise ManifestError (a ValueError).

    A manifest may come from anywhere (a shared store, a tampered object), so
    a path that would escape the checkout directory is refused when read.

    >>> check_entry_path("a/b.txt")
    'a/b.txt'
    >>> check_entry_path("../etc/passwd")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.ManifestError: unsafe manifest entry path '../etc/passwd': '..' components are not allowed
    """
    if not isinstance(path, str) or not path:
        raise ManifestError(f"unsafe manifest entry path {path!r}: expected a non-empty string")
    if path.startswith("/"):
        raise ManifestError(f"unsafe manifest entry path {path!r}: absolute paths are not allowed")
    if "\0" in path:
        raise ManifestError(f"unsafe manifest entry path {path!r}: NUL characters are not allowed")
    for part in path.split("/"):
        if part == "..":
            raise ManifestError(f"unsafe manifest entry path {path!r}: '..' components are not allowed")
        if part in ("", "."):
            raise ManifestError(f"unsafe manifest entry path {path!r}: empty or '.' components are not allowed")
    return path


def _check_path(_instance, _attribute, value: str) -> None:
    check_entry_path(value)


def _check_digest(_instance, _attribute, value: str) -> None:
    validate_digest(value)


def _check_size(_instance, _attribute, value: int) -> None:
    if type(value) is not int or value < 0:
        raise ManifestError(f"manifest entry size must be a non-negative integer, not {value!r}")


@attrs.frozen
class ManifestEntry:
    """One file of a directory: its relative POSIX path, content digest, size and executable bit.

    >>> ManifestEntry("bin/run", "blake3:" + "0" * 64, 10, True).path
    'bin/run'
    """

    path: str = attrs.field(validator=_check_path)
    digest: str = attrs.field(validator=_check_digest)
    size: int = attrs.field(validator=_check_size)
    executable: bool = attrs.field(validator=attrs.validators.instance_of(bool))

    def to_json(self) -> dict:
        return {"path": self.path, "digest": self.digest, "size": self.size, "executable": self.executable}


def _sorted_entries(entries) -> tuple[ManifestEntry, ...]:
    return tuple(sorted(entries, key=lambda e: e.path))


def _check_entries(_instance, _attribute, entries: tuple[ManifestEntry, ...]) -> None:
    paths = set()
    for entry in entries:
        if not isinstance(entry, ManifestEntry):
            raise ManifestError(f"manifest entries must be ManifestEntry, not {type(entry).__name__}")
        if entry.path in paths:
            raise ManifestError(f"manifest lists {entry.path!r} twice")
        paths.add(entry.path)
    # A path cannot be both a file and a directory holding other files.
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if (parent := "/".join(parts[:i])) in paths:
                raise ManifestError(f"manifest lists {parent!r} as a file and as the directory of {path!r}")


@attrs.frozen
class Manifest:
    """A directory tree: its file entries, sorted by path.

    >>> e = ManifestEntry("a.txt", "blake3:" + "0" * 64, 0, False)
    >>> m = Manifest((e,))
    >>> Manifest.from_bytes(m.to_bytes()) == m
    True
    """

    entries: tuple[ManifestEntry, ...] = attrs.field(converter=_sorted_entries, validator=_check_entries)

    def to_bytes(self) -> bytes:
        """Canonical JSON: keys sorted, no spaces, ASCII only (undecodable file names
        survive as escaped surrogates), so equal manifests give equal bytes."""
        doc = {"format": FORMAT, "entries": [e.to_json() for e in self.entries]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Manifest":
        """Parse and validate; ManifestError (a ValueError) on anything but a canonical, safe manifest."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"not a manifest: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
            raise ManifestError(f"not a manifest: expected an object with format {FORMAT!r} and a list of entries")
        entries = []
        for item in doc["entries"]:
            if not isinstance(item, dict) or set(item) != {"path", "digest", "size", "executable"}:
                raise ManifestError(f"not a manifest entry: {item!r}")
            entries.append(ManifestEntry(item["path"], item["digest"], item["size"], item["executable"]))
        manifest = cls(tuple(entries))
        # Non-canonical bytes would make manifest.digest differ from the digest
        # the manifest was fetched by; refuse rather than carry two names.
        if manifest.to_bytes() != bytes(data):
            raise ManifestError("manifest is not in canonical form")
        return manifest

    @functools.cached_property
    def digest(self) -> str:
        """The digest of `to_bytes()`: the name of the whole tree."""
        return digest_bytes(self.to_bytes())

    @property
    def size(self) -> int:
        """Total bytes of the files."""
        return sum(e.size for e in self.entries)
