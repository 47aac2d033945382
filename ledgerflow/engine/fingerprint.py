"""What counts as the user's code, and code normalised so that only behaviour counts.

Normalised means the AST without docstrings or decorators, so comments and formatting do
not count while any change of behaviour does. The user's code is what lives in the user's
own files (not the standard library, not site-packages, not Ledgerflow). What a task reaches
of it, and the values it reads, is found by `dependencies.analyse`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import sysconfig
import textwrap
import types
from pathlib import Path


_NOT_USER = tuple(
    str(Path(p).resolve()) for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                    sysconfig.get_paths()["platlib"], str(Path(__file__).parents[1])}
)


def is_user_code(fn: object) -> bool:
    """Whether fn is defined in a source file of the user's (not stdlib, site-packages, Ledgerflow)."""
    try:
        path = inspect.getsourcefile(fn)  # type: ignore[arg-type]
    except TypeError:
        return False
    return bool(path) and is_user_file(path)


def is_user_file(path: str) -> bool:
    """Whether a source file is the user's (not stdlib, site-packages, Ledgerflow; not '<stdin>')."""
    if not os.path.isfile(path):
        return False
    resolved = _resolved(path)
    return not resolved.startswith(_NOT_USER) and "site-packages" not in resolved


@functools.lru_cache(maxsize=None)
def _resolved(path: str) -> str:
    # A replay asks this of every module the process holds (~2,000 in a notebook with pandas
    # and scikit-learn), twice: resolved once per process, not on every call, setting today's
    # modules aside went from 0.77 s to 0.03 s a replay there (the first replay still pays once).
    return os.path.realpath(path)


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def normalized_source(fn: types.FunctionType) -> str:
    """The function's AST as text, without docstrings or decorators."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        # No source (a lambda typed at a prompt): fall back to the bytecode, which is stable
        # for one Python version.
        return repr(fn.__code__.co_code) + repr(fn.__code__.co_consts)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []
    return ast.dump(_StripDocstrings().visit(tree), annotate_fields=False, include_attributes=False)
