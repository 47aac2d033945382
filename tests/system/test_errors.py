"""Errors by class: every error Ledgerflow raises on purpose is a class in ledgerflow/errors.py.

A caller (the CLI's exit codes, the UI, a user's `except`) tells errors apart by class, never by
message text, so the package raises no bare ValueError/TypeError/KeyError/RuntimeError with a
message of its own, and checks nothing at run time with `assert` (gone under `python -O`).
The source is read with `ast`, not imported, so this stays fast.
"""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import ledgerflow
from ledgerflow import errors

PACKAGE = Path(ledgerflow.__file__).parent
BUILTINS = {"ValueError", "TypeError", "KeyError", "RuntimeError"}

# Raises of a bare builtin that stay: a Python protocol asks for exactly that builtin. Each entry is
# (path under ledgerflow/, builtin, how the message starts). Keep this to protocol cases.
ALLOWED = {
    # A stand-in for sys.stdout: print(), logging and `file.write` callers expect io's TypeError,
    # with io's own wording, for a write() of something not a str.
    ("engine/capture.py", "TypeError", "write() argument must be str"),
}



def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _builtin_name(call: ast.expr) -> str | None:
    func = call.func if isinstance(call, ast.Call) else call
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "builtins":
        return func.attr
    return None


def _leading_text(node: ast.expr) -> str:
    """The literal text a message starts with, up to its first {placeholder}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            text += part.value
        return text
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # "..." + f"..."
        return _leading_text(node.left)
    return ""


def _bare_raises():
    """(path, line, builtin, message start) of each `raise ValueError(...)` and the like, with arguments."""
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue  # a re-raise, or a bare class: no message of ours
            name = _builtin_name(node.exc)
            if name in BUILTINS:
                yield rel, node.lineno, name, _leading_text(node.exc.args[0])


def _listed(entries, rel, name, text) -> bool:
    return any(rel == p and name == b and text.startswith(start) for p, b, start in entries)


def test_no_bare_builtin_errors_are_raised_with_a_message():
    found = [f"ledgerflow/{rel}:{line}: raise {name}({text!r}...)" for rel, line, name, text in _bare_raises()
             if not _listed(ALLOWED, rel, name, text)]
    assert not found, ("raise a class from ledgerflow/errors.py (it may also subclass the builtin) instead of:\n"
                       + "\n".join(found))


def test_every_allowed_raise_is_still_there():
    raises = list(_bare_raises())
    stale = [entry for entry in ALLOWED if not any(_listed([entry], rel, name, text) for rel, _, name, text in raises)]
    assert not stale, f"remove these from ALLOWED in tests/system/test_errors.py: {stale}"


def test_no_assert_statements():
    # A docstring's `>>> assert ...` is text, not an ast.Assert: only code is found.
    found = [f"ledgerflow/{rel}:{node.lineno}" for rel, tree in _modules() for node in ast.walk(tree)
             if isinstance(node, ast.Assert)]
    assert not found, "check explicitly and raise a typed error instead of `assert` at:\n" + "\n".join(found)


def _error_classes():
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_is_a_ledgerflow_error_that_says_when_it_is_raised(cls):
    assert issubclass(cls, errors.LedgerflowError)
    assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring saying when it is raised"


def test_no_error_class_is_defined_outside_errors_py():
    # Private control-flow signals (a class whose name starts with "_") are not errors a caller sees.
    found = [f"ledgerflow/{rel}:{node.lineno}: class {node.name}" for rel, tree in _modules() if rel != "errors.py"
             for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
             and any(_builtin_name(base) in _BUILTIN_ERRORS or (isinstance(base, ast.Name) and base.id in _OURS)
                     for base in node.bases)]
    assert not found, "define these in ledgerflow/errors.py (and import them where they were):\n" + "\n".join(found)


_BUILTIN_ERRORS = {name for name, obj in vars(builtins).items() if isinstance(obj, type) and issubclass(obj, BaseException)}
_OURS = {cls.__name__ for cls in _error_classes()}


def test_errors_that_moved_keep_their_old_homes():
    from ledgerflow.engine.context import NotInStep
    from ledgerflow.engine.loading import LoadError
    from ledgerflow.engine.step import StepTimeout
    from ledgerflow.regular_files import NotARegularFile
    from ledgerflow.types import TypeMismatch, UnsupportedType

    assert LoadError is errors.LoadError
    assert StepTimeout is errors.StepTimeout
    assert (NotInStep, NotARegularFile, TypeMismatch, UnsupportedType) == (
        errors.NotInStep, errors.NotARegularFile, errors.TypeMismatch, errors.UnsupportedType)
    assert issubclass(NotARegularFile, OSError) and issubclass(TypeMismatch, TypeError)
    # The store retries a TimeoutError as a slow connection; a step's deadline must not be retried.
    assert not issubclass(StepTimeout, TimeoutError)


def test_typed_errors_still_catch_as_the_builtins_they_replaced():
    from ledgerflow.store.digest import validate_digest
    from ledgerflow.store.manifest import Manifest
    from ledgerflow.types.codec import decode, parse_text

    with pytest.raises(errors.DigestError) as caught:
        validate_digest("sha256:00")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(errors.ManifestError) as caught:
        Manifest.from_bytes(b"{}")
    assert isinstance(caught.value, (ValueError, errors.StoreError))
    with pytest.raises(errors.DecodeError):
        decode('["x"]', list[int])
    with pytest.raises(ValueError, match="is not an int"):
        parse_text("x", int)
