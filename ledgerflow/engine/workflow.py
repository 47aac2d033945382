"""`@workflow`: trace the body once, with promises, into an immutable, type-checked Graph."""

from __future__ import annotations

import sys
import typing
from typing import Any, Callable

import attrs

from ledgerflow.engine.graph import Choice, Constant, FromInput, FromStep, Gather, Graph, Source
from ledgerflow.engine.signature import definition_site, qualified_name, read_signature
from ledgerflow.engine.task import output_slots
from ledgerflow.engine.failure import check_handler
from ledgerflow.engine.tracing import Builder, Promise, current_builder, tracing
from ledgerflow.errors import WorkflowTypeError
from ledgerflow.store import digest_bytes
from ledgerflow.types import type_name
from ledgerflow.types.codec import encode


class Workflow:
    """A traced workflow: `graph` holds its steps; run it with `ledgerflow.run`.

    Inside another workflow's body it can be called like a task (a sub-workflow): its
    steps are added to the caller's graph under `name.step`.
    """

    def __init__(self, fn: Callable, name: str | None = None, on_failure: Any = None):
        self.fn = fn
        self.name = name or fn.__name__
        if on_failure is not None:
            check_handler(self.name, on_failure)
        self.on_failure = on_failure  # a task run with a Failure when a step fails for good
        self.qualname = qualified_name(fn)
        self.site = definition_site(fn)
        self.params, self.output = read_signature(fn, f"workflow {self.name!r}")
        self.graph = self._trace()
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<workflow {self.qualname}: {len(self.graph.nodes)} steps>"

    def _trace(self) -> Graph:
        builder = Builder(self.name)
        inputs = {p.name: Promise(FromInput(p.name, p.type), builder) for p in self.params}
        with tracing(builder):
            try:
                result = self.fn(**inputs)
            except WorkflowTypeError:
                raise
            except Exception as e:
                e.add_note(f"(while tracing workflow {self.name!r} at {self.site}: the body runs once, "
                           "with promises for values, when @workflow is applied)")
                raise
        return Graph(name=self.name, params=self.params, nodes=_topological(builder.nodes),
                     output=self._output_source(builder, result), output_type=self.output)

    def _output_source(self, builder: Builder, result: Any) -> Source | tuple[Source, ...] | None:
        def describe(suffix: str = "") -> str:
            return (f"workflow {self.name!r} at {self.site}: declares it returns {type_name(self.output)}, "
                    f"but what it returns{suffix} does not match")

        slots = output_slots(self.output)
        if len(slots) > 1 and isinstance(result, tuple):
            if len(result) != len(slots):
                raise WorkflowTypeError(f"{describe()}: {len(result)} values for {len(slots)} declared")
            return tuple(builder.source_for(r, tp, lambda s="", i=i: describe(f"[{i}]{s}"))
                         for i, (r, (_, tp)) in enumerate(zip(result, slots)))
        if result is None and self.output is not type(None) and self.output is not None:
            raise WorkflowTypeError(f"{describe()}: it returns None; return the promise of the step "
                                    "whose output is the workflow's result")
        return builder.source_for(result, self.output, describe)

    @property
    def fingerprint(self) -> str:
        """Digest of the graph's shape and of every task's fingerprint."""
        parts = [f"{self.qualname}{[(p.name, type_name(p.type)) for p in self.params]}->{type_name(self.output)}"]
        for node in self.graph.nodes:
            parts.append(f"{node.name}={node.task.qualname}@{node.task.fingerprint}"
                         f"({[(k, _shape(s)) for k, s in node.inputs]}) map={node.mapped}/{node.min_success} "
                         f"if={[(_shape(g.condition), g.expected) for g in node.guards]}"
                         + (f" after={list(node.after)}" if node.after else ""))
        parts.append(repr(_shape(self.graph.output)))
        if self.on_failure is not None:
            parts.append(f"on_failure={self.on_failure.qualname}@{self.on_failure.fingerprint}")
        return digest_bytes("\n".join(parts).encode())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            raise WorkflowTypeError(f"workflow {self.name!r} is not called directly: run it with "
                                    f"ledgerflow.run({self.name}, params={{...}})")
        caller = sys._getframe(1)
        return self._inline(builder, args, kwargs, f"{caller.f_code.co_filename}:{caller.f_lineno}")

    def _inline(self, builder: Builder, args: tuple, kwargs: dict, site: str) -> Any:
        import inspect

        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as e:
            raise WorkflowTypeError(f"workflow {builder.workflow!r}, sub-workflow {self.name!r} at {site}: {e}") from None
        bound.apply_defaults()
        given = {
            p.name: builder.source_for(
                bound.arguments[p.name], p.type,
                lambda suffix="", p=p: (f"workflow {builder.workflow!r}, sub-workflow {self.name!r}, "
                                        f"parameter {p.name!r}{suffix} at {site}"))
            for p in self.params
        }
        renamed: dict[str, str] = {}

        def remap(src: Source) -> Source:
            if isinstance(src, FromInput):
                return given[src.name]
            if isinstance(src, FromStep):
                return attrs.evolve(src, step=renamed[src.step])
            if isinstance(src, Gather):
                return attrs.evolve(src, items=tuple(remap(i) for i in src.items))
            if isinstance(src, Choice):
                return attrs.evolve(src, condition=remap(src.condition), then=remap(src.then),
                                    otherwise=remap(src.otherwise))
            return src

        # One prefix per call (`sub`, `sub_2`, ...): naming each step unique on its own would let
        # a second call's `sub.one_2` collide with the first call's own second `one`.
        prefix = builder.unique_name(self.name)
        for node in self.graph.nodes:
            renamed[node.name] = builder.unique_name(f"{prefix}.{node.name}")
            builder.add(attrs.evolve(node, name=renamed[node.name], inputs=tuple((k, remap(s)) for k, s in node.inputs),
                                     guards=tuple(attrs.evolve(g, condition=remap(g.condition)) for g in node.guards),
                                     after=tuple(renamed[a] for a in node.after)))

        def promise(src: Source) -> Any:
            src = remap(src)
            return Promise(src, builder) if isinstance(src, (FromInput, FromStep, Choice)) else _constant_value(src)

        out = self.graph.output
        return tuple(promise(s) for s in out) if isinstance(out, tuple) else promise(out)


def _constant_value(src: Source) -> Any:
    if isinstance(src, Constant):
        return src.value
    raise WorkflowTypeError("a sub-workflow that returns a list of promises cannot be inlined; return a step's output")


def _shape(src: Any) -> Any:
    if isinstance(src, tuple):
        return tuple(_shape(s) for s in src)
    if isinstance(src, FromInput):
        return ("input", src.name)
    if isinstance(src, FromStep):
        return ("step", src.step, src.index) if src.field is None else ("step", src.step, src.index, src.field)
    if isinstance(src, Gather):
        return ("gather", src.keys, tuple(_shape(i) for i in src.items))
    if isinstance(src, Constant):
        return ("const", encode(src.value, src.type))
    if isinstance(src, Choice):
        return ("when", _shape(src.condition), _shape(src.then), _shape(src.otherwise))
    return None


def _topological(nodes: list) -> tuple:
    """The nodes in the order they were called, except that a step ordered after a later one
    (`later >> earlier_call`) moves behind it: every node comes after all it depends on."""
    by_name = {n.name: n for n in nodes}
    placed: dict = {}

    def place(node) -> None:
        if node.name in placed:
            return
        for dep in node.depends_on:
            if dep in by_name:
                place(by_name[dep])
        placed[node.name] = node

    for node in nodes:
        place(node)
    return tuple(placed.values())


def workflow(fn: Callable | None = None, *, name: str | None = None, on_failure: Any = None):
    """Trace a function of tasks into a type-checked workflow, before anything runs.

    >>> from ledgerflow import task, workflow
    >>> @task
    ... def inc(x: int) -> int:
    ...     return x + 1
    >>> @workflow
    ... def twice(x: int = 0) -> int:
    ...     return inc(x=inc(x=x))
    >>> [n.name for n in twice.graph.nodes]
    ['inc', 'inc_2']

    `on_failure=cleanup`: a task taking one `ledgerflow.Failure`, run (and recorded, as step
    `on_failure`) when a step fails for good; the run still fails.
    """
    if fn is None:
        return lambda f: Workflow(f, name=name, on_failure=on_failure)
    return Workflow(fn, name=name, on_failure=on_failure)
