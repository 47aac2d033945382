"""Reading a function's annotated signature into Params, refusing what Ledgerflow cannot type."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

import attrs

from ledgerflow.engine.graph import Param
from ledgerflow.errors import WorkflowTypeError
from ledgerflow.types import UnsupportedType, check_supported


def qualified_name(fn: Callable) -> str:
    """`module:qualname`, naming a script's `__main__` after its file, as a replay imports it.

    >>> qualified_name(qualified_name)
    'ledgerflow.engine.signature:qualified_name'
    """
    module = sys.modules.get(fn.__module__)
    return f"{module_name(module) if module is not None else fn.__module__}:{fn.__qualname__}"


def module_name(module: types.ModuleType) -> str:
    """The name a module is imported by from a code snapshot: a script's `__main__` is named after
    its file (`python digits.py` -> `digits`), so a run and its replays carry one name."""
    if module.__name__ == "__main__":
        source = getattr(module, "__file__", None)
        if source and Path(source).is_file():  # a script, not '<stdin>' or a notebook
            return Path(source).stem
    return module.__name__


def definition_site(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else "<unknown>"


def read_signature(fn: Callable, what: str) -> tuple[tuple[Param, ...], Any]:
    """(params, return type) of fn; WorkflowTypeError for a missing or unsupported annotation.

    `what` names the function in messages, e.g. "task 'train'".
    """
    site = definition_site(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as e:  # a forward reference that does not resolve, a typo in a type
        raise WorkflowTypeError(f"{what} at {site}: its annotations could not be resolved: {e}") from e
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise WorkflowTypeError(f"{what} at {site}: *{p.name} / **{p.name} parameters are not supported; "
                                    "declare each parameter with its type")
        if p.name not in hints:
            raise WorkflowTypeError(f"{what} at {site}: parameter {p.name!r} has no type annotation; "
                                    f"annotate it, e.g. `{p.name}: int`")
        _check(hints[p.name], f"{what} at {site}: parameter {p.name!r}")
        default = attrs.NOTHING if p.default is p.empty else p.default
        params.append(Param(p.name, hints[p.name], default))
    if "return" not in hints:
        raise WorkflowTypeError(f"{what} at {site}: the return type is not annotated; annotate it, "
                                "e.g. `-> Dataset` (or `-> None` if it returns nothing)")
    _check(hints["return"], f"{what} at {site}: return type")
    return tuple(params), hints["return"]


def _check(tp: Any, where: str) -> None:
    try:
        check_supported(tp)
    except UnsupportedType as e:
        raise WorkflowTypeError(f"{where}: {e}") from None
    except TypeError as e:  # a bad Dataset schema class
        raise WorkflowTypeError(f"{where}: {e}") from None
