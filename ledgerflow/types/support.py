"""Which Python types a task may declare: only those Ledgerflow can digest, store and check.

Anything else is refused when the decorator runs (it would otherwise have to be pickled,
which Ledgerflow never does). This sits above the codec and the table checks, because a
type is supported when its values survive the codec and a Dataset's schema is one the table
checks accept.
"""

from __future__ import annotations

import enum
import typing
from typing import Any

from ledgerflow.errors import UnsupportedType
from ledgerflow.types.annotations import (
    SCALARS,
    is_enum_type,
    is_handle_type,
    is_literal_type,
    is_record_type,
    record_fields,
    type_name,
    union_members,
)
from ledgerflow.types.codec import finite_problem, union_problem
from ledgerflow.types.handles import Dataset

# What a user probably meant by a type that cannot be digested.
_SUGGEST = {
    "Table": "Dataset", "DataFrame": "Dataset", "RecordBatch": "Dataset",
    "Path": "File (or Directory)", "PosixPath": "File (or Directory)", "ndarray": "File or Dataset",
}


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
    ledgerflow.errors.UnsupportedType: unsupported type object; ...
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
    problem = finite_problem(tp)
    if problem:
        refuse(problem)
