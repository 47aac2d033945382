"""What a type annotation is (a handle, a union, a record, a literal, an enum) and how it is
written in messages. Which annotations a task may declare is support.py's.

>>> type_name(dict[str, list[float]]), is_record_type(int)
('dict[str, list[float]]', False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

import attrs

from ledgerflow.types.kinds import Handle

PRIMITIVES: tuple[type, ...] = (bool, int, float, str, bytes, type(None))
SCALARS: tuple[type, ...] = PRIMITIVES + (dt.datetime, dt.date)
NoneType = type(None)

def union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of `Union[...]`, `Optional[...]` or `A | B`; None when tp is no union."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def is_handle_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Handle)


def is_namedtuple(tp: Any) -> bool:
    """A `typing.NamedTuple` class (a tuple subclass with typed, named fields)."""
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields") and "__annotations__" in vars(tp)


def is_record_type(tp: Any) -> bool:
    """An attrs class, dataclass or typing.NamedTuple: a value of named, typed fields."""
    return isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp) or is_namedtuple(tp)) \
        and not is_handle_type(tp)


def record_fields(tp: type) -> dict[str, Any]:
    """Field name -> resolved type of an attrs class, dataclass or NamedTuple."""
    if is_namedtuple(tp):
        hints = typing.get_type_hints(tp)
        return {name: hints[name] for name in tp._fields}
    if attrs.has(tp):
        attrs.resolve_types(tp)
        return {f.name: f.type for f in attrs.fields(tp)}
    fields = dataclasses.fields(tp)
    if any(isinstance(f.type, str) for f in fields):
        # Resolved in place, once, as attrs.resolve_types does: a copy of the class pickled by
        # value to a Ray worker (whose module is not importable there) then carries real types,
        # instead of names like 'File' that only the driver's module can resolve.
        hints = typing.get_type_hints(tp)
        own = tp.__dict__.get("__annotations__", {})
        for f in fields:
            f.type = hints[f.name]
            if f.name in own:
                own[f.name] = hints[f.name]
    return {f.name: f.type for f in fields}


def is_literal_type(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


def is_enum_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def init_fields(tp: type) -> list[tuple[str, str]]:
    """(field name, __init__ argument) of each field of a record that its __init__ takes.

    These are the fields a record is encoded as (cattrs leaves init=False fields out, as
    values the class derives itself) and rebuilt from.
    """
    if attrs.has(tp):
        return [(a.name, a.alias) for a in attrs.fields(tp) if a.init]
    if is_namedtuple(tp):
        return [(name, name) for name in tp._fields]
    return [(f.name, f.name) for f in dataclasses.fields(tp) if f.init]


def build_record(tp: type, values: dict[str, Any]) -> Any:
    """An instance of the record class tp from its init fields' values, by field name."""
    return tp(**{arg: values[name] for name, arg in init_fields(tp)})


def type_name(tp: Any) -> str:
    """How a type is written in messages and in the ledger: `dict[str, float]`, `Dataset[Digits]`."""
    if tp is None or tp is NoneType:
        return "None"
    if is_handle_type(tp):
        return tp.__name__
    members = union_members(tp)
    if members is not None:
        return " | ".join(type_name(m) for m in members)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(f"{type(a).__name__}.{a.name}" if isinstance(a, enum.Enum) else repr(a)
                                      for a in args) + "]"
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(tp, type):
        return tp.__name__ if tp.__module__ in ("builtins", "datetime") else tp.__qualname__
    return repr(tp)
