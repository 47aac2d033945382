"""Typed, content-addressed handles: `File`, `Directory`, `Dataset`, `Model`.

A handle is a small frozen value naming bytes in the store by digest. Handles compare by
kind and digest, so the same content gives equal handles wherever it came from. A tag
(`File["csv"]`, `Model["sklearn"]`) or a schema (`Dataset[Digits]`) refines the kind at
the type level; tagged classes are made once and cached, so `File["csv"] is File["csv"]`.

What every kind shares (the `Handle` base, `Storage`, the registry `HANDLE_KINDS`) is in
kinds.py. Each kind is declared once, by its class: its name in the ledger (`kind`), how its bytes are
kept (`storage`), the fields it carries on the wire beyond digest and size (`wire_fields`), what
a plain value or a command-line path becomes (`coerce`, `value_from_path`), how a handle of it
is narrowed to a refined type (`narrow`), and its OpenLineage dataset type. The codec, conform,
compat, the CLI, retention, verify and the OpenLineage export read these instead of testing
kind names.

The class hierarchy governs compatibility: a handle goes where its class's kind or a parent
kind is declared (a `Model` is a `Directory` with a flavor, so it is accepted where an untagged
`Directory` is asked for; a `Directory` is not a `Model`). A refinement narrows within one kind:
`File["csv"]` takes only files tagged "csv", `Dataset[Schema]` takes datasets whose schema has
its columns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, ClassVar

import attrs

from ledgerflow.store import active as active_store
from ledgerflow.errors import DefinitionError, HandleTypeError, ParameterError, WorkflowTypeError
from ledgerflow.store import Manifest, ManifestEntry, Store
from ledgerflow.types.kinds import Handle, Storage, refine, tagged_class


@attrs.frozen(eq=False)
class File(Handle):
    """One file in the store.

    >>> f = File.from_path("data.csv")          # copied into the store, named by its digest
    >>> f.digest   # doctest: +ELLIPSIS
    'blake3:a69a9cf8...'
    >>> f.size, f.name, f.path.read_bytes()
    (8, 'data.csv', b'x,y\\n1,2\\n')

    A task annotated `-> File` may also return a path; `File["csv"]` tags the format.
    """

    name: str | None = attrs.field(default=None, repr=False)  # the original file name, for display

    kind: ClassVar[str] = "file"
    openlineage_type: ClassVar[str] = "FILE"

    @classmethod
    def _make_refined(cls, tag: Any) -> type:
        return tagged_class(cls, tag)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, store: Store | None = None) -> "File":
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"File.from_path: {p} is not a file")
        st = store or active_store.current()
        digest, size = st.put_file(p)
        return cls(digest=digest, size=size, store_url=st.url, name=p.name)

    @property
    def path(self) -> Path:
        """A local path to the bytes (read-only: it is the store's copy), checked against the digest.

        Verified like `Dataset.to_arrow()`: a step reading a corrupted File through `.path` got
        the damaged bytes silently (found by tests/system/test_faults.py). The check is remembered
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

    >>> d = Directory.from_path("checkpoints/")
    >>> sorted(p.name for p in d.path.iterdir())
    ['epoch-1.pt', 'epoch-2.pt']
    >>> d.size   # bytes, all files together
    42
    """

    kind: ClassVar[str] = "directory"
    storage: ClassVar[Storage] = Storage.MANIFEST
    openlineage_type: ClassVar[str] = "DIRECTORY"

    @classmethod
    def value_from_path(cls, path: Path) -> Any:
        if not path.is_dir():
            raise ParameterError(f"{path} is a file; a {cls.__name__} parameter takes a directory")
        return path

    @classmethod
    def _make_refined(cls, tag: Any) -> type:
        return tagged_class(cls, tag)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, store: Store | None = None) -> "Directory":
        p = Path(path)
        if not p.is_dir():
            raise NotADirectoryError(f"{cls.__name__}.from_path: {p} is not a directory")
        st = store or active_store.current()
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

    >>> m = Model.from_path("out/model", flavor="sklearn")
    >>> m.flavor, type(m) is Model["sklearn"]
    ('sklearn', True)
    >>> sorted(p.name for p in m.path.iterdir())
    ['model.pkl', 'params.json']
    """

    flavor: str | None = None

    kind: ClassVar[str] = "model"
    wire_fields: ClassVar[dict[str, type]] = {"flavor": str}
    openlineage_type: ClassVar[str] = "MODEL"

    @classmethod
    def _retyped(cls, value: Handle) -> Handle:
        return cls(**{**attrs.asdict(value, recurse=False), "flavor": cls.tag})

    @classmethod
    def coerce(cls, value: Any) -> Handle:
        if isinstance(value, (str, os.PathLike)):
            return cls.from_path(value, flavor=cls.tag)
        raise HandleTypeError(f"return a {cls.kind} handle or a path")

    @classmethod
    def value_from_path(cls, path: Path) -> Any:
        return path  # a directory, or a single-file model (kept as a one-entry directory)

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, flavor: str | None = None,
                  store: Store | None = None) -> "Model":
        p = Path(path)
        st = store or active_store.current()
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
            raise DefinitionError(f"{cls.__name__}.from_path: flavor {flavor!r} contradicts the tag {cls.tag!r}")
        size = sum(e.size for e in st.get_manifest(digest).entries)
        return refine(Model, flavor)(digest=digest, size=size, store_url=st.url, flavor=flavor)


@attrs.frozen(eq=False)
class Dataset(Handle):
    """A table in the store, as canonical Arrow IPC; `Dataset[Schema]` types its columns.

    The digest depends only on the logical content and schema: the same table in one chunk
    or many, from pyarrow, pandas or polars, gets the same digest.

    >>> import pyarrow as pa
    >>> ds = Dataset.from_arrow(pa.table({"x": [1, 2]}))
    >>> ds.num_rows, ds.to_arrow().column("x").to_pylist()
    (2, [1, 2])
    """

    num_rows: int = 0

    kind: ClassVar[str] = "dataset"
    schema: ClassVar[type | None] = None
    storage: ClassVar[Storage] = Storage.TABLE
    wire_fields: ClassVar[dict[str, type]] = {"num_rows": int}
    refinement_on_wire: ClassVar[bool] = False
    openlineage_type: ClassVar[str] = "DATASET"

    @classmethod
    def refinement(cls) -> Any:
        return cls.schema

    @classmethod
    def narrow(cls, value: Handle) -> Handle:
        # A schema is checked against the table itself: the handle's type may not name one.
        if cls.schema is None or type(value).schema is cls.schema:
            return value
        from ledgerflow.types import tables

        tables.check_schema(value.to_arrow(), cls.schema)
        return cls._retyped(value)

    @classmethod
    def coerce(cls, value: Any) -> Handle:
        import pyarrow as pa  # only when a Dataset is conformed: `import ledgerflow` stays free of pyarrow

        if isinstance(value, (pa.Table, pa.RecordBatch)) or type(value).__module__.split(".")[0] in ("pandas", "polars"):
            return cls.from_arrow(value)
        raise HandleTypeError("return a pyarrow Table, a pandas or polars DataFrame, or a Dataset")

    @classmethod
    def value_from_path(cls, path: Path) -> Any:
        from ledgerflow.types import tables

        if path.is_dir():
            raise ParameterError(f"{path} is a directory; a {cls.__name__} parameter takes a table file")
        return tables.read_table_file(path)

    @classmethod
    def _make_refined(cls, schema: Any) -> type:
        import dataclasses

        if not (isinstance(schema, type) and (attrs.has(schema) or dataclasses.is_dataclass(schema))):
            raise WorkflowTypeError("Dataset[...] takes an attrs class or dataclass describing the columns, e.g. "
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
        st = store or active_store.current()
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
