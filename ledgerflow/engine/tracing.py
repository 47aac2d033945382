"""Tracing a workflow body: promises stand in for values while `@workflow` records the calls."""

from __future__ import annotations

import contextlib
import contextvars
import sys
import typing
from typing import Any

import attrs

from ledgerflow.engine.graph import Choice, Constant, FromInput, FromStep, Gather, Guard, Node, Source
from ledgerflow.errors import WorkflowTypeError
from ledgerflow.types import TypeMismatch, accepts, conform, type_name
from ledgerflow.types.annotations import is_record_type, record_fields
from ledgerflow.types.compat import schema_gap


class Promise:
    """The future output of a step (or a workflow parameter) while a workflow is being traced.

    It can be passed to other tasks and unpacked when the output is a tuple; it has no value
    yet, so Python control flow on it is refused.
    """

    __slots__ = ("source", "builder")

    def __init__(self, source: FromInput | FromStep | Choice, builder: "Builder"):
        self.source = source
        self.builder = builder

    @property
    def type(self) -> Any:
        return self.source.type

    def __repr__(self) -> str:
        return f"<Promise of {_origin(self.source)}: {type_name(self.type)}>"

    def _no_value(self, what: str) -> typing.NoReturn:
        raise WorkflowTypeError(
            f"workflow {self.builder.workflow!r}: {self!r} is used in {what}, but while the workflow is "
            f"built it has no value yet. Decide at run time with ledgerflow.when(condition, then=..., "
            f"otherwise=...) or move the logic into a task.")

    def __bool__(self):
        self._no_value("Python control flow (`if`, `while`, `and`/`or`, `not`)")

    def __len__(self):
        self._no_value("len()")

    def _arithmetic(self, *_):
        self._no_value("arithmetic or a comparison (compute it in a task)")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __pow__ = _arithmetic
    __lt__ = __le__ = __gt__ = __ge__ = __neg__ = _arithmetic

    def __iter__(self):
        args = typing.get_args(self.type)
        if typing.get_origin(self.type) is tuple and args and args[-1] is not Ellipsis:
            return iter(self[i] for i in range(len(args)))
        self._no_value("iteration (only a tuple[...] output of fixed length unpacks)")

    def __rshift__(self, later: Any) -> Any:
        """`a >> b`: step b runs after step a has succeeded, though b takes nothing from a.
        Returns b, so `a >> b >> c` chains; recorded as an `order` edge of the graph."""
        for p in (later if isinstance(later, (list, tuple)) else [later]):
            self.builder.order(self, p)
        return later

    def __rrshift__(self, earlier: Any) -> "Promise":
        """`[a, b] >> c`: c runs after both."""
        for p in (earlier if isinstance(earlier, (list, tuple)) else [earlier]):
            self.builder.order(p, self)
        return self

    def __getattr__(self, name: str) -> "Promise":
        """`res.model`: one field of a record (attrs class or dataclass) output, checked now."""
        if name.startswith("__"):
            raise AttributeError(name)
        source = object.__getattribute__(self, "source")
        builder = object.__getattribute__(self, "builder")
        caller = sys._getframe(1)
        site = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        if not (isinstance(source, FromStep) and source.field is None and is_record_type(source.type)):
            raise WorkflowTypeError(f"workflow {builder.workflow!r} at {site}: {self!r} has no field {name!r}: only a "
                                    "step's output of an attrs class or dataclass has fields")
        fields = record_fields(source.type)
        if name not in fields:
            raise WorkflowTypeError(f"workflow {builder.workflow!r} at {site}: {type_name(source.type)} has no field "
                                    f"{name!r}; its fields are: {', '.join(fields)}")
        return Promise(attrs.evolve(source, type=fields[name], field=name), builder)

    def __getitem__(self, index: int) -> "Promise":
        args = typing.get_args(self.type)
        if not (isinstance(self.source, FromStep) and typing.get_origin(self.type) is tuple and args
                and args[-1] is not Ellipsis and self.source.index is None):
            self._no_value("indexing (only a tuple[...] output of a step can be indexed)")
        if not -len(args) <= index < len(args):
            raise WorkflowTypeError(f"workflow {self.builder.workflow!r}: {self!r} has {len(args)} elements; "
                                    f"index {index} is out of range")
        index %= len(args)
        return Promise(FromStep(self.source.step, args[index], index), self.builder)


@attrs.define
class Builder:
    """Collects the nodes of one workflow while its body runs."""

    workflow: str
    nodes: list[Node] = attrs.Factory(list)
    names: dict[str, int] = attrs.Factory(dict)
    guards: list[Guard] = attrs.Factory(list)  # the `when` branches being traced, outermost first

    def add(self, node: Node) -> None:
        """Append a node, inside whatever branches are being traced."""
        self.nodes.append(attrs.evolve(node, guards=tuple(self.guards) + node.guards))

    @contextlib.contextmanager
    def guarded(self, guard: Guard):
        self.guards.append(guard)
        try:
            yield
        finally:
            self.guards.pop()

    def order(self, earlier: Any, later: Any) -> None:
        """Make the step of promise `later` wait for the step of promise `earlier` (`>>`)."""
        steps = []
        for p in (earlier, later):
            if not (isinstance(p, Promise) and isinstance(p.source, FromStep) and p.builder is self):
                raise WorkflowTypeError(f"workflow {self.workflow!r}: `>>` orders steps of this workflow, and "
                                        f"{p!r} is not the output of one")
            steps.append(p.source.step)
        first, then = steps
        if first == then or then in self._upstream_of(first):
            raise WorkflowTypeError(f"workflow {self.workflow!r}: `{first} >> {then}` would make a cycle: {then!r} "
                                    f"already runs before {first!r}")
        i = next(i for i, n in enumerate(self.nodes) if n.name == then)
        if first not in self.nodes[i].after:
            self.nodes[i] = attrs.evolve(self.nodes[i], after=self.nodes[i].after + (first,))

    def _upstream_of(self, step: str) -> set:
        by_name = {n.name: n for n in self.nodes}
        seen, todo = set(), [step]
        while todo:
            for dep in by_name[todo.pop()].depends_on:
                if dep not in seen and dep in by_name:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def unique_name(self, base: str) -> str:
        count = self.names.get(base, 0) + 1
        self.names[base] = count
        return base if count == 1 else f"{base}_{count}"

    def source_for(self, value: Any, expected: Any, describe) -> Source:
        """Check a value passed for a parameter of type `expected`.

        `describe(suffix)` names the parameter in errors; the suffix locates an element in it.
        """
        if isinstance(value, Promise):
            if value.builder is not self:
                raise WorkflowTypeError(f"{describe()}: a promise from another workflow was passed in")
            if not accepts(expected, value.type):
                gap = schema_gap(expected, value.type)
                raise WorkflowTypeError(f"{describe()}: expected {type_name(expected)}, given "
                                        f"{type_name(value.type)} ({_origin(value.source)})"
                                        + (f": {gap}" if gap else ""))
            return value.source
        if isinstance(value, (list, tuple)) and any(isinstance(v, Promise) for v in value):
            if typing.get_origin(expected) is not list:
                raise WorkflowTypeError(f"{describe()}: expected {type_name(expected)}, given a list of promises")
            (element,) = typing.get_args(expected)
            items = tuple(self.source_for(v, element, lambda s="", i=i: describe(f"[{i}]{s}"))
                          for i, v in enumerate(value))
            return Gather(items, expected)
        if isinstance(value, dict) and any(isinstance(v, Promise) for v in value.values()):
            if typing.get_origin(expected) is not dict:
                raise WorkflowTypeError(f"{describe()}: expected {type_name(expected)}, given a dict of promises")
            key_type, element = typing.get_args(expected)
            keys = []
            for key in value:
                if isinstance(key, Promise):
                    raise WorkflowTypeError(f"{describe()}: a dict's keys must be written in the workflow, not "
                                            f"come from a step ({key!r})")
                try:
                    keys.append(conform(key, key_type, "key"))
                except TypeMismatch:
                    raise WorkflowTypeError(f"{describe()}: key {key!r} is not a {type_name(key_type)}") from None
            items = tuple(self.source_for(v, element, lambda s="", k=k: describe(f"[{k!r}]{s}"))
                          for k, v in value.items())
            return Gather(items, expected, keys=tuple(keys))
        try:
            return Constant(conform(value, expected, "value"), expected)
        except TypeMismatch as e:
            raise WorkflowTypeError(f"{describe()}: expected {type_name(expected)}, given "
                                    f"{type(value).__name__} {value!r:.60}") from e


def _origin(source: Source) -> str:
    if isinstance(source, FromStep):
        suffix = "" if source.index is None else f"[{source.index}]"
        suffix += "" if source.field is None else f".{source.field}"
        return f"output{suffix} of step {source.step!r}"
    if isinstance(source, FromInput):
        return f"workflow parameter {source.name!r}"
    if isinstance(source, Choice):
        return "a when(...) choice"
    return "a constant"


_current: contextvars.ContextVar[Builder | None] = contextvars.ContextVar("ledgerflow_builder", default=None)


def current_builder() -> Builder | None:
    return _current.get()


@contextlib.contextmanager
def tracing(builder: Builder):
    """Calls of tasks inside the block record nodes in `builder` instead of running."""
    token = _current.set(builder)
    try:
        yield builder
    finally:
        _current.reset(token)
