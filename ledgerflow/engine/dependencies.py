"""What a task's result depends on in the user's code: one analysis for the cache key and the snapshot.

Starting from the task's function it follows, through the user's own modules (never the
standard library, site-packages or Ledgerflow, which the environment record covers):

- functions it calls, by name (`helper()`), through a module (`import helper; helper.f()`),
  or as methods of user classes it uses; their normalised code (the AST without docstrings,
  so comments and formatting do not count);
- classes it instantiates or whose methods it calls: their normalised source;
- module-level globals and closure variables it reads (`FACTOR`, `helper.FACTOR`), by value,
  canonically encoded; and default argument values. A global the code writes to
  (`COUNTS[k] += 1`, `SEEN.append(x)`) is state it keeps, not an input: left out;
- the files of every module involved, for the code snapshot.

The structure of the code is analysed once per function object; the values of the
globals are read each time a key is made (`Dependencies.values`), so a notebook that
changes `FACTOR = 5` and runs again gets a new key.
"""

from __future__ import annotations

import ast
import inspect
import logging
import sys
import textwrap
import threading
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs

from ledgerflow.engine.fingerprint import is_user_code, is_user_file, normalized_source
from ledgerflow.store import digest_bytes

# Bumped when what the key covers changes, so keys made by an older engine never match.
CACHE_FORMAT = "2"

_NOT_VALUES = (logging.Logger, logging.LoggerAdapter, type(threading.Lock()), type(threading.RLock()))


@attrs.frozen
class Read:
    """A value the code reads: a module global (`module.NAME`) or a closure variable."""

    name: str  # "module.NAME", or "module.function.<closure>.var", or "module.function.<default>.param"
    holder: Any = attrs.field(eq=False, repr=False)  # the module, function (closure) or function (default)
    key: Any = attrs.field(eq=False, repr=False)  # attribute name, closure index or parameter name
    kind: str = "global"  # "global" | "closure" | "default"

    def current(self) -> Any:
        if self.kind == "global":
            return getattr(self.holder, self.key)
        if self.kind == "closure":
            return self.holder.__closure__[self.key].cell_contents
        defaults = dict(zip(_positional_with_defaults(self.holder), self.holder.__defaults__ or ()))
        defaults.update(self.holder.__kwdefaults__ or {})
        return defaults[self.key]


@attrs.frozen
class Dependencies:
    """The user code a function depends on: `code` (qualified name -> digest of its normalised
    source), `reads` (values read), `modules` (name -> file, for the snapshot)."""

    code: tuple  # ((name, digest of normalised source), ...), sorted
    reads: tuple  # (Read, ...), sorted by name
    modules: tuple  # ((module name, Path), ...), sorted

    def values(self) -> tuple:
        """(name, canonical JSON, or None when the value has no canonical encoding) of each read, now."""
        return tuple((r.name, encode_value(r.current())) for r in self.reads)


def encode_value(value: Any) -> str | None:
    """The canonical JSON of a value the code reads, or None if it has none (an open file, a client)."""
    from ledgerflow.types.codec import encode

    try:
        return encode(value)
    except Exception:  # noqa: BLE001 - anything cattrs cannot unstructure canonically
        return None


def _positional_with_defaults(fn: types.FunctionType) -> list:
    code = fn.__code__
    names = list(code.co_varnames[:code.co_argcount])
    return names[len(names) - len(fn.__defaults__ or ()):]


def _names(code: types.CodeType) -> set:
    """Every name the code (and code nested in it: lambdas, comprehensions) looks up or reads an attribute by."""
    out: set = set()
    stack = [code]
    while stack:
        c = stack.pop()
        out.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


_MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "clear",
                       "remove", "discard", "__setitem__", "__delitem__"})


def written_names(fn: types.FunctionType) -> frozenset:
    """Globals the function writes to (`COUNTS[k] = ...`, `SEEN.append(x)`, `global N`): state it
    keeps, like a counter or a memo, not an input its result depends on, so not in its key."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    out: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.update(node.names)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                and isinstance(node.value, ast.Name):
            out.add(node.value.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _MUTATORS and isinstance(node.func.value, ast.Name):
            out.add(node.func.value.id)
    return frozenset(out)


def _source_digest(obj: Any) -> str:
    """Digest of a function's or class's normalised source (docstrings, comments, formatting left out)."""
    try:
        source = normalized_source(obj)
    except (OSError, TypeError, SyntaxError, AttributeError):  # a class whose source cannot be read
        source = repr(sorted(vars(obj)))
    return digest_bytes(source.encode())


def _is_user(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        path = getattr(obj, "__file__", None)
        return bool(path) and is_user_file(path)
    return is_user_code(obj)


def _unwrap(obj: Any) -> Any:
    return getattr(obj, "fn", obj) if not isinstance(obj, type) else obj  # a @task: its function


@lru_cache(maxsize=4096)
def analyse(fn: types.FunctionType) -> Dependencies:
    """The user code `fn` depends on, found once per function object (see the module docstring).

    >>> def double(x): return 2 * x
    >>> analyse(double).code[0][0].endswith("double")
    True
    """
    code: dict = {}
    reads: dict = {}
    modules: dict = {}
    seen: set = set()
    todo: list = [fn]
    home = sys.modules.get(fn.__module__)

    def label(module: types.ModuleType | None, name: str) -> str:
        # Names in the task's own module go bare: the same code run as a script (`__main__`)
        # or imported under another name is the same code, with the same key.
        return name if module is home else f"{_module_label(module)}.{name}"

    def note_module(module: types.ModuleType | None) -> None:
        path = getattr(module, "__file__", None)
        if module is not None and path and is_user_file(path):
            modules[module.__name__ if module.__name__ != "__main__" else _main_name(module)] = Path(path)

    def consider(value: Any, read: Read | None, through: set) -> None:
        """A name the code reads resolved to `value`: code to follow, a module to look into, or a value."""
        value = _unwrap(value)
        if isinstance(value, types.ModuleType):
            if _is_user(value):
                note_module(value)
                for attr in sorted(through):  # `helper.f()`, `helper.FACTOR`
                    if attr in vars(value) and not attr.startswith("__"):
                        consider(vars(value)[attr], Read(label(value, attr), value, attr), set())
            return
        if isinstance(value, (types.FunctionType, type)):
            if _is_user(value):  # a function, a class (an Enum too: its members are its source)
                todo.append(value)
            return
        if callable(value) or isinstance(value, _NOT_VALUES):
            return  # a third-party or built-in callable, a logger: not data the result depends on
        if read is not None:
            reads[read.name] = read

    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        module = sys.modules.get(getattr(obj, "__module__", ""), None)
        note_module(module)
        qual = label(module, obj.__qualname__)
        code[qual] = _source_digest(obj)
        if isinstance(obj, type):
            # A user class: its methods are code the task runs when it uses the class.
            for member in vars(obj).values():
                member = getattr(member, "__func__", member)  # staticmethod, classmethod
                if isinstance(member, property):
                    member = member.fget
                # Only methods written in the user's file: attrs and dataclasses generate __init__,
                # __eq__, __hash__ with no source, whose bytecode constants differ per process.
                if isinstance(member, types.FunctionType) and is_user_code(member):
                    todo.append(member)
            continue
        names = _names(obj.__code__)
        attrs_read = names  # attribute names the code reads, to look up in user modules
        written = written_names(obj)
        for name in sorted(names):
            if name in obj.__globals__:
                value = obj.__globals__[name]
                if name in written and not isinstance(_unwrap(value), (types.FunctionType, type, types.ModuleType)):
                    continue  # state the code keeps, not an input
                consider(value, Read(label(module, name), module, name), attrs_read)
        for i, var in enumerate(obj.__code__.co_freevars):
            try:
                value = obj.__closure__[i].cell_contents
            except (ValueError, TypeError):  # a cell not filled yet
                continue
            consider(value, Read(f"{qual}.<closure>.{var}", obj, i, "closure"), attrs_read)
        for param in list(_positional_with_defaults(obj)) + list((obj.__kwdefaults__ or {})):
            reads[f"{qual}.<default>.{param}"] = Read(f"{qual}.<default>.{param}", obj, param, "default")
    return Dependencies(code=tuple(sorted(code.items())), reads=tuple(r for _, r in sorted(reads.items())),
                        modules=tuple(sorted(modules.items())))


def _module_label(module: types.ModuleType | None) -> str:
    if module is None:
        return "?"
    return _main_name(module) if module.__name__ == "__main__" else module.__name__


def _main_name(module: types.ModuleType) -> str:
    from ledgerflow.engine.signature import module_name

    return module_name(module)
