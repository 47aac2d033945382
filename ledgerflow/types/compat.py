"""The type-compatibility relation checked on every edge when a workflow is built.

`accepts(expected, given)` is reflexive and transitive, and makes no silent coercions:
an `int` does not feed a `float`, a `bool` does not feed an `int`.
"""

from __future__ import annotations

import typing
from typing import Any

from ledgerflow.types.annotations import (
    SCALARS,
    is_handle_type,
    is_record_type,
    record_fields,
    type_name,
    union_members,
)
from ledgerflow.types.handles import Dataset


def accepts(expected: Any, given: Any) -> bool:
    """Whether a value of type `given` may flow into a parameter declared `expected`.

    - exact types match; `Optional[T]` (any union holding T) accepts T;
    - an untagged handle accepts any tag of its kind; two different tags never match;
    - `Dataset[S]` accepts `Dataset[P]` when P has every column of S with an accepted type;
      bare `Dataset` accepts any dataset (but `Dataset[S]` does not accept a bare one);
    - a `Directory` accepts a `Model` (a Model is a directory of files with a flavor, as its
      class says); a `Model` does not accept a `Directory` (it has no flavor);
    - containers compare element-wise; attrs classes and dataclasses accept subclasses.

    >>> from typing import Optional
    >>> accepts(Optional[int], int), accepts(float, int), accepts(list[int | None], list[int])
    (True, False, True)
    """
    if expected == given:
        return True
    given_members = union_members(given)
    if given_members is not None:
        return all(accepts(expected, g) for g in given_members)
    expected_members = union_members(expected)
    if expected_members is not None:
        return any(accepts(e, given) for e in expected_members)
    if is_handle_type(expected) or is_handle_type(given):
        return is_handle_type(expected) and is_handle_type(given) and _handle_accepts(expected, given)
    if expected in SCALARS or given in SCALARS:
        return False
    e_origin, g_origin = typing.get_origin(expected), typing.get_origin(given)
    if e_origin is not None or g_origin is not None:
        return e_origin is g_origin and _container_accepts(e_origin, typing.get_args(expected), typing.get_args(given))
    if is_record_type(expected) and is_record_type(given):
        return issubclass(given, expected)
    return False


def _handle_accepts(expected: type, given: type) -> bool:
    if expected.base is None or given.base is None:  # bare `Handle`: refused by annotations
        return expected is given
    if not expected.takes_kind_of(given):
        return False
    if issubclass(expected, Dataset) and expected.schema is not None:  # columns, compared by type
        return issubclass(given, Dataset) and given.schema is not None and schema_gap(expected, given) is None
    return True


def schema_gap(expected: Any, given: Any) -> str | None:
    """For two Dataset types with schemas, which columns of `expected` the `given` one lacks or
    types otherwise, in one line; None when there is nothing to say.

    >>> import attrs
    >>> from ledgerflow.types.handles import Dataset
    >>> A = attrs.make_class("A", {"x": attrs.field(type=int), "y": attrs.field(type=str)})
    >>> B = attrs.make_class("B", {"x": attrs.field(type=float)})
    >>> schema_gap(Dataset[A], Dataset[B])
    "column 'x' is float, not int; column 'y' is missing"
    """
    if not (is_handle_type(expected) and is_handle_type(given) and issubclass(expected, Dataset)
            and issubclass(given, Dataset) and expected.schema is not None and given.schema is not None):
        return None
    want, have = record_fields(expected.schema), record_fields(given.schema)
    gaps = [f"column {name!r} is missing" if name not in have else
            f"column {name!r} is {type_name(have[name])}, not {type_name(tp)}"
            for name, tp in want.items() if name not in have or not accepts(tp, have[name])]
    return "; ".join(gaps) or None


def _container_accepts(origin: Any, e_args: tuple, g_args: tuple) -> bool:
    if origin is tuple:
        e_var = len(e_args) == 2 and e_args[1] is Ellipsis
        g_var = len(g_args) == 2 and g_args[1] is Ellipsis
        if e_var:
            return all(accepts(e_args[0], g) for g in (g_args[:1] if g_var else g_args))
        if g_var:
            return False
        return len(e_args) == len(g_args) and all(map(accepts, e_args, g_args))
    return len(e_args) == len(g_args) and all(map(accepts, e_args, g_args))
