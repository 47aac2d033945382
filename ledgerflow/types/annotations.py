"""Which Python types a task may declare, and how they are written in messages.

Only types Ledgerflow can digest, store and check are allowed; anything else is refused
when the decorator runs (it would otherwise have to be pickled, which we never do).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

import attrs

from ledgerflow.types.handles import Dataset, Handle

PRIMITIVES: tuple[type, ...] = (bool, int, float, str, bytes, type(None))
SCALARS: tuple[type, ...] = PRIMITIVES + (dt.datetime, dt.date)
NoneType = type(None)

_SUGGEST = {
    "Table": "Dataset", "DataFrame": "Dataset", "RecordBatch": "Dataset",
    "Path": "File (or Directory)", "PosixPath": "File (or Directory)", "ndarray": "File or Dataset",
}


class UnsupportedType(TypeError):
    """A type annotation Ledgerflow cannot handle; the message says what to use instead."""


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


def check_supported(tp: Any) -> None:
    """Raise UnsupportedType, naming the offending part, unless tp is a type Ledgerflow handles.

    A type is supported when every value of it survives the ledger: encoded, then decoded
    (on a cache hit, on replay) to an identical value. So a union whose members a recorded
    value could not tell apart (`str | datetime`, `list[int] | tuple[int, ...]`, two records
    with the same fields) is refused here, when the task is decorated, not at its second run.

    >>> check_supported(dict[str, list[float]])
    >>> check_supported(object)
    Traceback (most recent call last):
    ...
    ledgerflow.types.annotations.UnsupportedType: unsupported type object; ...
    """
    _check(tp, tp, set())


def _check(tp: Any, whole: Any, seen: set) -> None:
    def refuse(why: str) -> typing.NoReturn:
        where = "" if tp is whole else f" (in {type_name(whole)})"
        raise UnsupportedType(f"unsupported type {type_name(tp)}{where}; {why}")

    if tp is None or tp in SCALARS:
        return
    if tp is Any:
        refuse("Any cannot be digested or checked: name the type, e.g. int, dict[str, float], Dataset")
    if is_handle_type(tp):
        if tp.base is None:  # `Handle` itself, not a kind
            refuse("declare the kind of handle, File, Directory, Dataset or Model (or a union of them)")
        if issubclass(tp, Dataset) and tp.schema is not None:
            from ledgerflow.types.tables import check_schema_class

            check_schema_class(tp.schema)
        return
    members = union_members(tp)
    if members is not None:
        for m in members:
            _check(m, whole, seen)
        from ledgerflow.types.codec import union_problem

        problem = union_problem(members)
        if problem:
            refuse(problem)
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        for a in args:
            if isinstance(a, enum.Enum):
                _check(type(a), whole, seen)
            elif not (a is None or type(a) in (bool, int, float, str, bytes)):
                refuse(f"a Literal takes None, bool, int, float, str, bytes or Enum members, not {a!r}")
        _finite(tp, refuse)
        return
    if tp in (list, tuple, dict, set, frozenset) or origin in (set, frozenset):
        refuse("give the element types, e.g. list[int], tuple[str, float], dict[str, float]")
    if origin is list:
        return _check(args[0], whole, seen)
    if origin is tuple:
        if not args:
            refuse("give the element types, e.g. tuple[int, str] or tuple[int, ...]")
        for a in args:
            if a is not Ellipsis:
                _check(a, whole, seen)
        return
    if origin is dict:
        key, value = args
        if not (key in (str, int, bool, float) or is_enum_type(key) or is_literal_type(key)):
            refuse(f"dict keys must be str, int, bool, float, an Enum or a Literal, not {type_name(key)}")
        if key not in (str, int, bool, float):
            _check(key, whole, seen)
        return _check(value, whole, seen)
    if is_enum_type(tp):
        _finite(tp, refuse)
        return
    if is_record_type(tp):
        if tp in seen:
            return
        seen.add(tp)
        for name, ftype in record_fields(tp).items():
            try:
                _check(ftype, ftype, seen)
            except UnsupportedType as e:
                refuse(f"field {tp.__name__}.{name}: {e}")
        return
    hint = _SUGGEST.get(getattr(tp, "__name__", ""), None)
    if hint:
        refuse(f"annotate it as {hint}, so it is stored by content and tracked in the lineage")
    refuse("use a plain value (bool, int, float, str, bytes, None, Enum, datetime, list/tuple/dict "
           "of them, an attrs class or dataclass) or a handle (File, Directory, Dataset, Model); "
           "Ledgerflow never pickles values")


def _finite(tp: Any, refuse: Any) -> None:
    from ledgerflow.types.codec import finite_problem

    problem = finite_problem(tp)
    if problem:
        refuse(problem)


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
