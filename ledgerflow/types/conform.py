"""Run-time checks: does a value match its declared type? Converting where the contract allows.

A task annotated `-> Dataset` may return a pyarrow Table or a pandas/polars DataFrame, and
`-> File` may return a path: `conform` stores those and returns the handle. An `int` is
taken where `float` is declared (PEP 484's numeric tower); nothing else is coerced.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import typing
from typing import Any

import attrs
import pyarrow as pa

from ledgerflow.types.annotations import (
    is_handle_type,
    is_record_type,
    record_fields,
    type_name,
    union_members,
)
from ledgerflow.types.handles import Dataset, Directory, File, Handle, Model


class TypeMismatch(TypeError):
    """A value does not match its declared type; `where` locates it inside the value."""

    def __init__(self, where: str, expected: Any, value: Any, why: str = ""):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        msg = f"{where}: expected {type_name(expected)}, got {type(value).__name__} {shown}"
        super().__init__(msg + (f" ({why})" if why else ""))
        self.where = where


def conform(value: Any, tp: Any, where: str = "value") -> Any:
    """Return value as an instance of tp (storing tables and paths as handles), or raise TypeMismatch.

    >>> conform([1, 2], list[float])
    [1.0, 2.0]
    >>> conform("3", int)
    Traceback (most recent call last):
    ...
    ledgerflow.types.conform.TypeMismatch: value: expected int, got str '3'
    """
    if tp is None or tp is type(None):
        if value is None:
            return None
        raise TypeMismatch(where, tp, value)
    members = union_members(tp)
    if members is not None:
        if value is None and type(None) in members:
            return None
        for m in members:
            if m is type(None):
                continue
            try:
                return conform(value, m, where)
            except TypeMismatch:
                continue
        raise TypeMismatch(where, tp, value)
    if is_handle_type(tp):
        return _conform_handle(value, tp, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeMismatch(where, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise TypeMismatch(where, tp, value)
    if tp is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise TypeMismatch(where, tp, value)
    if tp is str or tp is dt.datetime:
        if isinstance(value, tp):
            return value
        raise TypeMismatch(where, tp, value)
    if tp is dt.date:
        if type(value) is dt.date:
            return value
        raise TypeMismatch(where, tp, value)
    if tp is bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeMismatch(where, tp, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeMismatch(where, tp, value)
        return [conform(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeMismatch(where, tp, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(conform(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise TypeMismatch(where, tp, value, f"{len(value)} elements, not {len(args)}")
        return tuple(conform(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeMismatch(where, tp, value)
        k_tp, v_tp = args
        return {conform(k, k_tp, f"{where} key"): conform(v, v_tp, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        raise TypeMismatch(where, tp, value)
    if is_record_type(tp):
        if not isinstance(value, tp):
            raise TypeMismatch(where, tp, value)
        for name, ftype in record_fields(tp).items():
            conform(getattr(value, name), ftype, f"{where}.{name}")
        return value
    raise TypeMismatch(where, tp, value, "unsupported type")


def _conform_handle(value: Any, tp: type, where: str) -> Handle:
    if isinstance(value, Handle):
        if value.kind != tp.kind:
            raise TypeMismatch(where, tp, value)
        if tp.kind == "dataset":
            if tp.schema is not None and type(value).schema is not tp.schema:
                from ledgerflow.types import tables

                try:
                    tables.check_schema(value.to_arrow(), tp.schema)
                except TypeError as e:
                    raise TypeMismatch(where, tp, value, str(e)) from None
                return tp(digest=value.digest, size=value.size, store_url=value.store_url,
                          num_rows=value.num_rows)
            return value
        if tp.tag is not None and type(value).tag != tp.tag:
            if type(value).tag is not None:
                raise TypeMismatch(where, tp, value, f"tag {type(value).tag!r} is not {tp.tag!r}")
            fields = {a.name: getattr(value, a.name) for a in attrs.fields(type(value)) if a.name != "flavor"}
            if tp.kind == "model":
                fields["flavor"] = tp.tag
            return tp(**fields)
        return value
    if issubclass(tp, Dataset):
        if isinstance(value, (pa.Table, pa.RecordBatch)) or type(value).__module__.split(".")[0] in ("pandas", "polars"):
            try:
                return tp.from_arrow(value)
            except TypeError as e:
                raise TypeMismatch(where, tp, value, str(e)) from None
        raise TypeMismatch(where, tp, value, "return a pyarrow Table, a pandas or polars DataFrame, or a Dataset")
    if isinstance(value, (str, os.PathLike)):
        if issubclass(tp, Model):
            return tp.from_path(value, flavor=tp.tag)
        if issubclass(tp, (File, Directory)):
            return tp.from_path(value)
    raise TypeMismatch(where, tp, value, f"return a {tp.kind} handle or a path")
