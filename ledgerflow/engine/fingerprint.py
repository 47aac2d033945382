"""Task fingerprints: the digest of a task's normalised code and of the user code it calls.

Normalised means the AST with docstrings removed, so comments and formatting do not count
while any change of behaviour does. Functions the task reaches through its module's globals
are included, transitively, when they live in the user's own modules (not the standard
library, not site-packages, not Ledgerflow): editing such a helper changes the key.
"""

from __future__ import annotations

import ast
import inspect
import sysconfig
import textwrap
import types
from functools import lru_cache
from pathlib import Path

from ledgerflow.store import digest_bytes

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
    if not Path(path).is_file():
        return False
    resolved = str(Path(path).resolve())
    return not resolved.startswith(_NOT_USER) and "site-packages" not in resolved


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


def referenced_user_functions(fn: types.FunctionType) -> list[types.FunctionType]:
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    found = []
    for name in sorted(names):
        obj = fn.__globals__.get(name)
        obj = getattr(obj, "fn", obj)  # a @task called from a task: fingerprint its function
        if isinstance(obj, types.FunctionType) and obj is not fn and is_user_code(obj):
            found.append(obj)
    return found


@lru_cache(maxsize=4096)
def code_fingerprint(fn: types.FunctionType) -> str:
    """Digest of fn's normalised code and, transitively, of the user functions it calls.

    Cached per function object: redefining a function makes a new object, so edits in a
    long-lived process are seen.
    """
    parts: list[str] = []
    seen: set[int] = set()
    todo = [fn]
    while todo:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        parts.append(f"{f.__qualname__}\n{normalized_source(f)}")
        todo.extend(referenced_user_functions(f))
    return digest_bytes("\n\0".join(sorted(parts)).encode())
