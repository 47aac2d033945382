"""What every handle kind is: the `Handle` base class, how a kind's bytes are kept
(`Storage`), and the registry of kinds by their ledger name (`HANDLE_KINDS`).

The kinds themselves (File, Directory, Model, Dataset) are in handles.py; a user's module may
declare more. This module knows no kind by name, so the type-inspection modules (annotations,
tables) can depend on it without depending on the kinds, whose methods use them.

>>> from ledgerflow.types.handles import File
>>> HANDLE_KINDS["file"] is File, storage_of("dataset")
(True, <Storage.TABLE: 'table'>)
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, ClassVar

import attrs

from ledgerflow.errors import HandleTypeError, ParameterError, WorkflowTypeError
from ledgerflow.store import Store
from ledgerflow.store import active as active_store


def _store_for(url: str | None) -> Store:
    return Store.open(url) if url else active_store.current()


class Storage(enum.Enum):
    """How a kind's bytes are kept in the store, which says what else a digest reaches."""

    BLOB = "blob"          # one object: the bytes themselves
    MANIFEST = "manifest"  # a Merkle manifest object naming one object per file
    TABLE = "table"        # one object: a canonical Arrow IPC stream (its schema is readable)


@attrs.frozen(eq=False)
class Handle:
    """Base of all handles: a digest, the size in bytes, and the store that holds the bytes."""

    digest: str
    size: int = 0
    store_url: str | None = attrs.field(default=None, repr=False)
    # "EXECUTION_ID:step.slot" when a run made this handle: where it came from, not what it
    # is (so not part of equality). Passed into another run, it links the two by provenance.
    origin: str | None = attrs.field(default=None, repr=False, kw_only=True)

    kind: ClassVar[str] = "handle"
    tag: ClassVar[str | None] = None
    base: ClassVar[type] = None  # the untagged kind class, set on each kind (handles.py)
    storage: ClassVar[Storage] = Storage.BLOB
    # Fields beyond digest and size that the encoded form carries (written when not None).
    wire_fields: ClassVar[dict[str, type]] = {}
    # Whether the encoded form names the refinement: a tag does; a schema does not (the
    # digest does not say which of two schemas a table was written for).
    refinement_on_wire: ClassVar[bool] = True
    openlineage_type: ClassVar[str] = "HANDLE"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # a kind of its own, not a refinement (File["csv"]) of one
            cls.base = cls
            HANDLE_KINDS[cls.kind] = cls

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Handle) and other.kind == self.kind and other.digest == self.digest

    def __hash__(self) -> int:
        return hash((self.kind, self.digest))

    def __class_getitem__(cls, tag: Any) -> type:
        return refine(cls.base, tag)

    def __reduce__(self):
        # Refined classes are made at run time; pickle them by (kind, tag) so they can
        # travel to Ray workers and come back as the same cached class.
        return (_rebuild, (self.base, self.refinement(), attrs.asdict(self, recurse=False)))

    @classmethod
    def refinement(cls) -> Any:
        return cls.tag

    @property
    def store(self) -> Store:
        return _store_for(self.store_url)

    def wire(self) -> dict[str, Any]:
        """The kind's own fields for the encoded form (see `wire_fields`)."""
        return {name: v for name in self.wire_fields if (v := getattr(self, name)) is not None}

    @classmethod
    def takes_kind_of(cls, given: type) -> bool:
        """Whether a handle of class `given` may go where this class is declared, by kind and
        tag (the hierarchy governs kinds; see the module's docstring). A Dataset's schema is
        compared column by column by `types.compat`, which knows column types."""
        if not issubclass(given.base, cls.base):
            return False
        return cls.tag is None or (given.base is cls.base and given.tag == cls.tag)

    @classmethod
    def narrow(cls, value: "Handle") -> "Handle":
        """`value`, a handle of this class's kind or a child kind, as this class declares it.
        HandleTypeError (a TypeError) saying why when its refinement does not fit."""
        if type(value) is cls:
            return value
        if value.base is not cls.base:  # a child kind where a parent is declared: a Model as Directory
            if cls.refinement() is not None:
                raise HandleTypeError(f"a {value.kind} is not a {cls.kind} tagged {cls.refinement()!r}")
            return cls._retyped(value)
        if cls.tag is None or type(value).tag == cls.tag:
            return value
        if type(value).tag is not None:
            raise HandleTypeError(f"tag {type(value).tag!r} is not {cls.tag!r}")
        return cls._retyped(value)

    @classmethod
    def _retyped(cls, value: "Handle") -> "Handle":
        return cls(**{f.name: getattr(value, f.name) for f in attrs.fields(cls) if hasattr(value, f.name)})

    @classmethod
    def coerce(cls, value: Any) -> "Handle":
        """A handle of this class from what a task may return instead of one (a path for the
        file kinds, a table for Dataset). HandleTypeError (a TypeError) saying what it takes otherwise."""
        if isinstance(value, (str, os.PathLike)):
            return cls.from_path(value)
        raise HandleTypeError(f"return a {cls.kind} handle or a path")

    @classmethod
    def value_from_path(cls, path: Path) -> Any:
        """What an existing path given for this kind on the command line stands for (something
        `coerce` takes). ParameterError (a ValueError) saying why not."""
        if path.is_dir():
            raise ParameterError(f"{path} is a directory; a {cls.__name__} parameter takes a file")
        return path


# Every kind by its name in the ledger; a class that declares `kind` adds itself.
HANDLE_KINDS: dict[str, type] = {}
_refined: dict[tuple[type, Any], type] = {}


def refine(base: type, tag: Any) -> type:
    """`base` refined by `tag` (`File["csv"]`, `Dataset[Schema]`): made once, then the same class."""
    if tag is None:
        return base
    key = (base, tag)
    cls = _refined.get(key)
    if cls is None:
        cls = base._make_refined(tag)
        _refined[key] = cls
    return cls


def _rebuild(base: type, tag: Any, fields: dict) -> Handle:
    return refine(base, tag)(**fields)


def tagged_class(base: type, tag: Any) -> type:
    """A new subclass of `base` whose `tag` is `tag`, a non-empty string (a kind's `_make_refined`)."""
    if not isinstance(tag, str) or not tag:
        raise WorkflowTypeError(f"{base.__name__}[...] takes a format tag, a non-empty string such as "
                        f"{base.__name__}['csv']; got {tag!r}")
    return type(f"{base.__name__}[{tag!r}]", (base,), {"tag": tag, "__module__": base.__module__,
                                                      "__slots__": ()})


# The ledger's `kind` of an artifact that is a plain value (kept in the ledger as JSON, not in
# the store); every other kind is a handle kind's name (HANDLE_KINDS).
VALUE_KIND = "value"


def storage_of(kind: str | None) -> Storage | None:
    """How a recorded artifact of `kind` (the ledger's text) is stored; None for a plain value.

    >>> storage_of("model"), storage_of("value")
    (<Storage.MANIFEST: 'manifest'>, None)
    """
    cls = HANDLE_KINDS.get(kind)
    return cls.storage if cls is not None else None
