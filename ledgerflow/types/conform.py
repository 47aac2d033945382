"""Run-time checks: does a value match its declared type? Converting where the contract allows.

A task annotated `-> Dataset` may return a pyarrow Table or a pandas/polars DataFrame, and
`-> File` may return a path: `conform` stores those and returns the handle. An `int` is
taken where `float` is declared (PEP 484's numeric tower); nothing else is coerced.

What `conform` returns is what the ledger records, and so what a cache hit or a replay gives
back: exact types (a numpy float becomes a float, a namedtuple a tuple, a subclass of a
declared record the declared record), so that the value a step sees on its first run is
identical to the one it sees decoded from the ledger.
"""

from __future__ import annotations

import re

import datetime as dt
import enum
import math
import os
import typing
from typing import Any

import attrs

from ledgerflow.types.annotations import (
    build_record,
    is_handle_type,
    is_record_type,
    record_fields,
    type_name,
    union_members,
)
from ledgerflow.errors import TypeMismatch
from ledgerflow.types.handles import Dataset, Directory, File, Handle, Model


def identical(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down: what a round trip must give back.

    `1 == 1.0 == True` and `[1] == [1]` whatever the containers' element types, so == is not
    enough; NaN is identical to NaN, and -0.0 is not 0.0 (the JSON keeps the sign).
    """
    if type(a) is not type(b):
        return False
    if type(a) is dt.datetime:  # aware ones compare by instant: the offset must match too
        return a == b and a.isoformat() == b.isoformat()
    if type(a) is float:
        return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(map(identical, a, b))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        keys = {(type(k), k): k for k in b}  # 1 and True are one key to a dict, not to us
        for k, v in a.items():
            other = keys.get((type(k), k), keys)
            if other is keys or not identical(k, other) or not identical(v, b[other]):
                return False
        return True
    if isinstance(a, Handle):
        return a == b and all(getattr(a, f, None) == getattr(b, f, None) for f in ("size", "num_rows", "flavor"))
    if is_record_type(type(a)):
        return all(identical(getattr(a, name), getattr(b, name)) for name in record_fields(type(a)))
    return a == b


def _shown(value: Any) -> str:
    """A value in one short line: a table by its shape and columns, never its data."""
    columns = getattr(value, "column_names", None) or getattr(value, "columns", None)
    rows = getattr(value, "num_rows", None) if hasattr(value, "num_rows") else getattr(value, "shape", (None,))[0]
    if columns is not None and rows is not None and not isinstance(value, (str, bytes, dict)):
        names = [str(c) for c in list(columns)[:8]]
        return f"of {rows} rows, columns {', '.join(names)}" + (", ..." if len(list(columns)) > 8 else "")
    shown = " ".join(repr(value).split())
    return shown if len(shown) <= 60 else shown[:57] + "..."


def mismatch(where: str, expected: Any, value: Any, why: str = "") -> TypeMismatch:
    """The TypeMismatch saying that `value`, at `where`, is not the `expected` type (and `why`)."""
    message = f"{where}: expected {type_name(expected)}, got {type(value).__name__} {_shown(value)}"
    return TypeMismatch(message + (f" ({why})" if why else ""), where)


_SURROGATE = re.compile("[\ud800-\udfff]")


def conform(value: Any, tp: Any, where: str = "value") -> Any:
    """Return value as an instance of tp (storing tables and paths as handles), or raise TypeMismatch.

    >>> conform([1, 2], list[float])
    [1.0, 2.0]
    >>> conform("3", int)
    Traceback (most recent call last):
    ...
    ledgerflow.errors.TypeMismatch: value: expected int, got str '3'
    """
    if tp is None or tp is type(None):
        if value is None:
            return None
        raise mismatch(where, tp, value)
    members = union_members(tp)
    if members is not None:
        if value is None and type(None) in members:
            return None
        if type(value) in members and is_record_type(type(value)):
            # A record of a class the union names is that member, even where an earlier member
            # is a base class of it: decoding picks it by its fields, so must conform.
            return conform(value, type(value), where)
        # A value that is a value is taken as one before a path or a table is stored as a
        # handle: `File | str` keeps "a.csv" a str. A path that is not there does not fit a
        # File member (nor a list[File]), rather than ending the run.
        handles = [m for m in members if is_handle_type(m)] if not isinstance(value, Handle) else []
        order = [m for m in members if m not in handles] + handles
        if isinstance(value, Handle):  # a handle's own kind first: a Model stays a Model in `Directory | Model`
            order.sort(key=lambda m: not (is_handle_type(m) and m.kind == value.kind))
        for m in order:
            if m is type(None):
                continue
            try:
                return conform(value, m, where)
            except (TypeMismatch, FileNotFoundError, NotADirectoryError):
                continue
        raise mismatch(where, tp, value)
    if is_handle_type(tp):
        return _conform_handle(value, tp, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise mismatch(where, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise mismatch(where, tp, value)
    if tp is float:
        if isinstance(value, float):
            return float(value)  # a numpy float64 is a float, but not what comes back from the ledger
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise mismatch(where, tp, value, "too large for a float") from None
        raise mismatch(where, tp, value)
    if tp is str:
        if isinstance(value, str):
            text = value if type(value) is str else str.__str__(value)  # a StrEnum member: its text
            if _SURROGATE.search(text):
                # Undecodable bytes (from argv or a file read with surrogateescape): the value
                # could not be encoded for its digest or the ledger.
                raise mismatch(where, tp, value, "not valid UTF-8 text (it holds an undecodable byte)")
            return text
        raise mismatch(where, tp, value)
    if tp is dt.datetime:
        if isinstance(value, dt.datetime):
            offset = value.utcoffset()
            if offset is not None and offset.microseconds:
                # ISO 8601 text (what the ledger records) cannot say it: Python writes
                # +00:00:00.000001 and reads it back as +00:00, another instant.
                raise mismatch(where, tp, value, "a UTC offset with a fraction of a second cannot be "
                                   "recorded exactly; use an offset of whole seconds")
            if type(value) is dt.datetime:
                return value
            # A pandas Timestamp and such: the datetime it is (to the microsecond, as recorded)
            return dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                               value.microsecond, value.tzinfo, fold=value.fold)
        raise mismatch(where, tp, value)
    if tp is dt.date:
        if type(value) is dt.date:
            return value
        raise mismatch(where, tp, value)
    if tp is bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise mismatch(where, tp, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        for a in args:
            if type(a) is type(value) and (a is value or a == value):
                return a
        raise mismatch(where, tp, value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise mismatch(where, tp, value)
        return [conform(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise mismatch(where, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(conform(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise mismatch(where, tp, value, f"{len(value)} elements, not {len(args)}")
        return tuple(conform(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise mismatch(where, tp, value)
        k_tp, v_tp = args
        return {conform(k, k_tp, f"{where} key"): conform(v, v_tp, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        raise mismatch(where, tp, value)
    if is_record_type(tp):
        if not isinstance(value, tp):
            raise mismatch(where, tp, value)
        fields = {name: conform(getattr(value, name), ftype, f"{where}.{name}")
                  for name, ftype in record_fields(tp).items()}
        if type(value) is tp and all(v is getattr(value, n) or identical(v, getattr(value, n))
                                     for n, v in fields.items()):
            return value
        # A field conformed to something else (an int to a float, a tuple to a list), or a
        # subclass where tp is declared: recorded as tp with these fields, so built as that here.
        try:
            return build_record(tp, fields)
        except Exception as e:
            raise mismatch(where, tp, value, f"cannot be rebuilt as {type_name(tp)} from its fields: "
                               f"{type(e).__name__}: {e}") from None
    raise mismatch(where, tp, value, "unsupported type")


def as_declared(value: Any, tp: Any) -> Any:
    """A handle as the parameter it is handed to declares it, without reading it: a Dataset with a
    narrower schema (its consumer then reads only its columns), a Model where a Directory is
    declared. For a value whose type already fits (`accepts` checked it when the graph was built);
    anything else is returned as it is."""
    if not (isinstance(value, Handle) and is_handle_type(tp)) or type(value) is tp:
        return value
    if issubclass(value.base, tp.base) and (value.base is not tp.base or tp.refinement() is not None):
        return tp._retyped(value)
    return value


def _conform_handle(value: Any, tp: type, where: str) -> Handle:
    if isinstance(value, Handle) and not issubclass(value.base, tp.base):
        raise mismatch(where, tp, value)
    try:
        return tp.narrow(value) if isinstance(value, Handle) else tp.coerce(value)
    except TypeError as e:
        raise mismatch(where, tp, value, str(e)) from None
