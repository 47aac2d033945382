"""Typed, content-addressed handles: `File`, `Directory`, `Dataset`, `Model`.

A handle is a small frozen value naming bytes in the store by digest. Handles compare by
kind and digest, so the same content gives equal handles wherever it came from. A tag
(`File["csv"]`, `Model["sklearn"]`) or a schema (`Dataset[Digits]`) refines the kind at
the type level; tagged classes are made once and cached, so `File["csv"] is File["csv"]`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, ClassVar

import attrs

from ledgerflow import store as cas
from ledgerflow.store import Manifest, ManifestEntry, Store


def _store_for(url: str | None) -> Store:
    return Store.open(url) if url else cas.current()


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
    base: ClassVar[type] = None  # the untagged kind class, set on each kind below

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Handle) and other.kind == self.kind and other.digest == self.digest

    def __hash__(self) -> int:
        return hash((self.kind, self.digest))

    def __class_getitem__(cls, tag: Any) -> type:
        return _refine(cls.base, tag)

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


_refined: dict[tuple[type, Any], type] = {}


def _refine(base: type, tag: Any) -> type:
    if tag is None:
        return base
    key = (base, tag)
    cls = _refined.get(key)
    if cls is None:
        cls = base._make_refined(tag)
        _refined[key] = cls
    return cls


def _rebuild(base: type, tag: Any, fields: dict) -> Handle:
    return _refine(base, tag)(**fields)


def _tagged_class(base: type, tag: Any) -> type:
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"{base.__name__}[...] takes a format tag, a non-empty string such as "
                        f"{base.__name__}['csv']; got {tag!r}")
    return type(f"{base.__name__}[{tag!r}]", (base,), {"tag": tag, "__module__": base.__module__,
                                                      "__slots__": ()})


@attrs.frozen(eq=False)
class File(Handle):
    """One file in the store.

    >>> f = File.from_path("data.csv")          # doctest: +SKIP
    >>> f.digest, f.path.read_bytes()           # doctest: +SKIP
    A task annotated `-> File` may also return a path; `File["csv"]` tags the format.
    """

    name: str | None = attrs.field(default=None, repr=False)  # the original file name, for display

    kind: ClassVar[str] = "file"

    @classmethod
    def _make_refined(cls, tag: Any) -> type:
        return _tagged_class(cls, tag)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, store: Store | None = None) -> "File":
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"File.from_path: {p} is not a file")
        st = store or cas.current()
        digest, size = st.put_file(p)
        return cls(digest=digest, size=size, store_url=st.url, name=p.name)

    @property
    def path(self) -> Path:
        """A local path to the bytes (read-only: it is the store's copy), checked against the digest.

        Verified like `Dataset.to_arrow()`: a step reading a corrupted File through `.path` got
        the damaged bytes silently (found by tests/test_faults.py). The check is remembered
        per file identity (see `Store.local_path`), so reading the same file again is free.
        """
        return self.store.local_path(self.digest, verify=True)

    def open(self, *, verify: bool = True) -> IO[bytes]:
        return self.store.open(self.digest, verify=verify)

    def read_bytes(self) -> bytes:
        return self.store.get_bytes(self.digest)


@attrs.frozen(eq=False)
class Directory(Handle):
    """A directory tree, stored as a Merkle manifest of its files.

    >>> d = Directory.from_path("checkpoints/")  # doctest: +SKIP
    >>> sorted(p.name for p in d.path.iterdir())  # doctest: +SKIP
    """

    kind: ClassVar[str] = "directory"

    @classmethod
    def _make_refined(cls, tag: Any) -> type:
        return _tagged_class(cls, tag)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, store: Store | None = None) -> "Directory":
        p = Path(path)
        if not p.is_dir():
            raise NotADirectoryError(f"{cls.__name__}.from_path: {p} is not a directory")
        st = store or cas.current()
        digest = st.put_directory(p)
        size = sum(e.size for e in st.get_manifest(digest).entries)
        return cls(digest=digest, size=size, store_url=st.url)

    @property
    def path(self) -> Path:
        """A local copy of the tree (made once, then reused)."""
        return self.store.checkout(self.digest)


@attrs.frozen(eq=False)
class Model(Directory):
    """A trained model: a directory (or single file) plus its flavor (`Model["sklearn"]`).

    >>> m = Model.from_path("out/model", flavor="sklearn")   # doctest: +SKIP
    """

    flavor: str | None = None

    kind: ClassVar[str] = "model"

    @classmethod
    def refinement(cls) -> Any:
        return cls.tag

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, flavor: str | None = None,
                  store: Store | None = None) -> "Model":
        p = Path(path)
        st = store or cas.current()
        if p.is_file():
            # A single-file model is kept as a one-entry directory so every model has one shape.
            file_digest, file_size = st.put_file(p)
            entry = ManifestEntry(path=p.name, digest=file_digest, size=file_size,
                                  executable=os.access(p, os.X_OK))
            digest = st.put_bytes(Manifest(entries=(entry,)).to_bytes())
        elif p.is_dir():
            digest = st.put_directory(p)
        else:
            raise FileNotFoundError(f"Model.from_path: {p} does not exist")
        flavor = flavor or cls.tag
        if cls.tag and flavor != cls.tag:
            raise ValueError(f"{cls.__name__}.from_path: flavor {flavor!r} contradicts the tag {cls.tag!r}")
        size = sum(e.size for e in st.get_manifest(digest).entries)
        return _refine(Model, flavor)(digest=digest, size=size, store_url=st.url, flavor=flavor)


@attrs.frozen(eq=False)
class Dataset(Handle):
    """A table in the store, as canonical Arrow IPC; `Dataset[Schema]` types its columns.

    The digest depends only on the logical content and schema: the same table in one chunk
    or many, from pyarrow, pandas or polars, gets the same digest.

    >>> import pyarrow as pa
    >>> ds = Dataset.from_arrow(pa.table({"x": [1, 2]}))   # doctest: +SKIP
    >>> ds.to_arrow().num_rows                              # doctest: +SKIP
    2
    """

    num_rows: int = 0

    kind: ClassVar[str] = "dataset"
    schema: ClassVar[type | None] = None

    @classmethod
    def refinement(cls) -> Any:
        return cls.schema

    @classmethod
    def _make_refined(cls, schema: Any) -> type:
        import dataclasses

        if not (isinstance(schema, type) and (attrs.has(schema) or dataclasses.is_dataclass(schema))):
            raise TypeError("Dataset[...] takes an attrs class or dataclass describing the columns, e.g. "
                            f"Dataset[Digits] with @attrs.define class Digits: x: int; got {schema!r}")
        return type(f"Dataset[{schema.__name__}]", (cls,), {"schema": schema, "__module__": cls.__module__,
                                                          "__slots__": ()})

    @classmethod
    def from_arrow(cls, table: Any, *, store: Store | None = None) -> "Dataset":
        """Store a pyarrow Table, RecordBatch, or pandas/polars DataFrame."""
        from ledgerflow.types import tables

        canonical = tables.canonical_table(table)
        if cls.schema is not None:
            tables.check_schema(canonical, cls.schema)
        st = store or cas.current()
        digest, size = tables.write_ipc(canonical, st)
        return cls(digest=digest, size=size, store_url=st.url, num_rows=canonical.num_rows)

    def to_arrow(self, *, verify: bool = True):
        """The table, memory-mapped from the store where it is local. A `Dataset[Schema]` reads
        only its schema's columns (a consumer declaring fewer columns than were stored sees those)."""
        from ledgerflow.types import tables

        table = tables.read_ipc(self.store, self.digest, verify=verify)
        if type(self).schema is not None:
            table = table.select(list(tables.schema_columns(type(self).schema)))
        return table

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def to_polars(self):
        import polars as pl

        return pl.from_arrow(self.to_arrow())


for _kind in (File, Directory, Model, Dataset):
    _kind.base = _kind

HANDLE_KINDS: dict[str, type] = {k.kind: k for k in (File, Directory, Model, Dataset)}
