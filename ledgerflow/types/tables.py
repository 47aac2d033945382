"""Tables as canonical Arrow: one form for the same logical data, whatever produced it.

A Dataset is stored as an Arrow IPC stream of its canonical table, and its digest is the
digest of those bytes. Canonical means: one chunk per column, no schema or field metadata,
and one physical type per logical type (large/view strings and lists become their plain
forms, dictionaries are decoded), so pyarrow, pandas and polars frames of the same data
give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import enum
import types
import typing
from typing import Any

import attrs
import pyarrow as pa

from ledgerflow.errors import DecodeError, HandleTypeError, StepOutputError, WorkflowTypeError
from ledgerflow.types.annotations import is_handle_type, is_record_type, record_fields, type_name
from ledgerflow.store import Store


def to_arrow(data: Any) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, pandas or polars DataFrame, or Arrow stream."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise HandleTypeError(f"expected a pyarrow Table or a pandas/polars DataFrame, got {type(data).__name__}")


def _canonical_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _canonical_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t) or pa.types.is_list(t):
        return pa.list_(_canonical_field(t.value_field))
    if pa.types.is_struct(t):
        return pa.struct([_canonical_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(_canonical_type(t.key_type), _canonical_type(t.item_type))
    return t


def _canonical_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, _canonical_type(f.type), nullable=True)


def canonical_table(data: Any) -> pa.Table:
    table = to_arrow(data)
    schema = pa.schema([_canonical_field(f) for f in table.schema])
    if not table.schema.equals(schema, check_metadata=True):
        table = table.cast(schema)
    return table.combine_chunks()


def write_ipc(table: pa.Table, store: Store) -> tuple[str, int]:
    with store.writer() as out:
        with pa.ipc.new_stream(out, table.schema) as writer:
            for batch in table.to_batches():
                if batch.num_rows:
                    writer.write_batch(batch)
    return out.digest, out.size


def read_ipc(store: Store, digest: str, *, verify: bool = True) -> pa.Table:
    with pa.memory_map(str(store.local_path(digest, verify=verify))) as source:
        return pa.ipc.open_stream(source).read_all()


# Column types a schema class may declare, and the Arrow types each accepts.
_ARROW_CHECKS: dict[Any, tuple[str, Any]] = {
    bool: ("bool", pa.types.is_boolean),
    int: ("integer", pa.types.is_integer),
    float: ("floating point", pa.types.is_floating),
    str: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    bytes: ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
    dt.datetime: ("timestamp", pa.types.is_timestamp),
    dt.date: ("date", pa.types.is_date),
}


def read_table_file(path) -> pa.Table:
    """A table from a Parquet, CSV, TSV or Arrow IPC (Feather) file, chosen by its suffix.
    DecodeError (a ValueError) naming the file and what went wrong otherwise."""
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix in (".csv", ".tsv"):
            import pyarrow.csv as pacsv

            options = pacsv.ParseOptions(delimiter="\t") if suffix == ".tsv" else None
            return pacsv.read_csv(path, parse_options=options)
        if suffix in (".arrow", ".feather", ".ipc"):
            import pyarrow.feather as feather

            return feather.read_table(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DecodeError(f"cannot read {path} as a table: {str(e).splitlines()[0]}") from None
    raise DecodeError(f"{path} is not a table file this reads: give a .parquet, .csv, .tsv or .arrow file "
                     "(or a digest of a recorded Dataset)")


def schema_columns(schema: type) -> dict[str, Any]:
    """Column name -> declared Python type (Optional unwrapped) of a schema class (attrs or dataclass)."""
    return {name: _unwrap_optional(tp) for name, tp in record_fields(schema).items()}


def _nullable(schema: type) -> set:
    return {name for name, tp in record_fields(schema).items() if _unwrap_optional(tp) is not tp}


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def check_schema_class(schema: type) -> None:
    for name, tp in schema_columns(schema).items():
        if _column_check(tp) is None:
            allowed = ", ".join(getattr(t, "__name__", str(t)) for t in _ARROW_CHECKS)
            raise WorkflowTypeError(f"schema {schema.__name__}: column {name!r} has type {tp!r}; a column may be one of "
                            f"{allowed}, an Enum, a list[...] or dict[...] of them, a record of them (a struct), "
                            "or Optional")


def _column_check(tp: Any):
    """(what the column must be, a test of an Arrow type), or None if tp can't be a column."""
    tp = _unwrap_optional(tp)
    if tp in _ARROW_CHECKS:
        return _ARROW_CHECKS[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ("enum values", lambda t: pa.types.is_string(t) or pa.types.is_integer(t))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        inner = _column_check(args[0])
        if inner:
            return (f"list of {inner[0]}", lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t))
                    and inner[1](t.value_type))
    if origin is dict and len(args) == 2:
        key, item = _column_check(args[0]), _column_check(args[1])
        if key and item:
            return (f"map of {key[0]} to {item[0]}",
                    lambda t: pa.types.is_map(t) and key[1](t.key_type) and item[1](t.item_type))
    if is_record_type(tp) and not is_handle_type(tp):
        fields = {name: _column_check(ftype) for name, ftype in record_fields(tp).items()}
        if all(fields.values()):
            def struct_ok(t) -> bool:
                if not pa.types.is_struct(t):
                    return False
                present = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
                return all(name in present and check[1](present[name]) for name, check in fields.items())

            return (f"struct of {', '.join(f'{n}: {c[0]}' for n, c in fields.items())}", struct_ok)
    return None


def schema_problems(table: pa.Table, schema: type) -> list:
    """Every way `table` fails `schema`: a column missing, of another type, or holding nulls where
    the schema does not say Optional. One line each; never the data."""
    problems = []
    nullable = _nullable(schema)
    for name, tp in schema_columns(schema).items():
        if name not in table.schema.names:
            problems.append(f"column {name!r} is missing")
            continue
        label, ok = _column_check(tp)
        actual = table.schema.field(name).type
        if not ok(actual):
            problems.append(f"column {name!r} should be {label} ({type_name(tp)}), but is {actual}")
        elif name not in nullable and table.column(name).null_count:
            problems.append(f"column {name!r} ({type_name(tp)}, not Optional) holds "
                            f"{table.column(name).null_count} null(s)")
    return problems


def check_schema(table: pa.Table, schema: type) -> None:
    """Raise StepOutputError naming every column that fails `schema` (see `schema_problems`)."""
    problems = schema_problems(table, schema)
    if problems:
        raise StepOutputError(f"Dataset[{schema.__name__}]: " + "; ".join(problems)
                              + f" (columns present: {', '.join(table.schema.names) or 'none'})")
