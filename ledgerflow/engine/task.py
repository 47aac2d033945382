"""`@task`: a typed function that becomes a step when called inside a workflow."""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import sys
import typing
from typing import Any, Callable

import attrs

from ledgerflow.engine.dependencies import CACHE_FORMAT, analyse
from ledgerflow.engine.graph import FromStep, Node, Param
from ledgerflow.engine.resources import Resources
from ledgerflow import names
from ledgerflow.engine.signature import qualified_name, read_signature
from ledgerflow.engine.tracing import Builder, Promise, current_builder
from ledgerflow.errors import DefinitionError, WorkflowTypeError
from ledgerflow.store import digest_bytes
from ledgerflow.types import type_name


def output_slots(tp: Any) -> tuple[tuple[str, Any], ...]:
    """Names and types of the artifacts a return type makes: one, or one per element of a fixed tuple."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and args and args[-1] is not Ellipsis:
        return tuple((f"return[{i}]", a) for i, a in enumerate(args))
    return (("return", tp),)


@attrs.frozen
class TaskIdentity:
    """A task's identity for one run: `fingerprint` is the digest of `parts` (canonical JSON:
    code digests by qualified name, values read, cache_version, signature, engine), which
    the ledger keeps so `lineage why` can say what changed. `unencodable` names values read
    that have no canonical encoding: with them, the task is not cached (unless cache_version)."""

    fingerprint: str
    parts: str
    unencodable: tuple = ()


class Task:
    """A function with typed inputs and output, run as a step of a workflow.

    Called outside a workflow it is the plain function, so it can be unit-tested as is.
    """

    dynamic = False  # see `dynamic`: its body builds steps at run time instead of computing

    def __init__(self, fn: Callable, *, cache: bool = False, cache_version: str = "", retries: int = 0,
                 timeout: float | None = None, resources: Resources | None = None, name: str | None = None):
        if not callable(fn):
            raise WorkflowTypeError(f"@task decorates a function, not {fn!r}")
        self.fn = fn
        # A step is named after its task: the name reaches file names, SQL and terminals.
        self.name = (names.check(f"task {qualified_name(fn)!r}: name=", name, DefinitionError) if name is not None
                     else fn.__name__)
        self.qualname = qualified_name(fn)
        if not isinstance(retries, int) or retries < 0:
            raise DefinitionError(f"task {self.name!r}: retries={retries!r} must be a whole number >= 0")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise DefinitionError(f"task {self.name!r}: timeout={timeout!r} must be a number of seconds > 0")
        if resources is not None and not isinstance(resources, Resources):
            raise WorkflowTypeError(f"task {self.name!r}: resources= takes ledgerflow.Resources(...), not {resources!r}")
        self.cache = bool(cache)
        self.cache_version = str(cache_version)
        self.retries = retries
        self.timeout = timeout
        self.resources = resources or Resources()
        self.resources_json = self.resources.to_json()  # recorded with every step: compute once
        self.params, self.output = read_signature(fn, f"task {self.name!r}")
        self.outputs = output_slots(self.output)
        self._signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<task {self.qualname}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        caller = sys._getframe(1)
        return self._record(builder, args, kwargs, f"{caller.f_code.co_filename}:{caller.f_lineno}")

    @functools.cached_property
    def fingerprint(self) -> str:
        """Digest of the task's code and the user code it reaches, and `cache_version`: the code
        part of `identity()` (no values), for the workflow's fingerprint."""
        code = json.dumps(analyse(self.fn).code, separators=(",", ":"))
        return digest_bytes(f"{code}\0{self.cache_version}\0{CACHE_FORMAT}".encode())

    def identity(self) -> "TaskIdentity":
        """What the task's result depends on besides its inputs, now: its code and the user code
        it reaches, the values of the globals, closure variables and defaults that code reads,
        `cache_version`, the type signature and the engine's cache format.

        The code is analysed once per function; the values are read at each call, so a run
        after `FACTOR = 5` gets another identity than one before it.
        """
        deps = analyse(self.fn)
        values = deps.values()
        unencodable = tuple(name for name, text in values if text is None)
        parts = {
            "code": dict(deps.code),
            "reads": {name: text for name, text in values if text is not None},
            "cache_version": self.cache_version,
            "signature": self.type_signature,
            "engine": CACHE_FORMAT,
        }
        if unencodable:  # named, so `lineage why` can say what kept the task out of the cache
            parts["unencodable"] = list(unencodable)
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return TaskIdentity(digest_bytes(text.encode()), text, unencodable if not self.cache_version else ())

    @functools.cached_property
    def type_signature(self) -> str:
        params = ", ".join(f"{p.name}: {type_name(p.type)}" for p in self.params)
        return f"({params}) -> {type_name(self.output)}"

    def bind(self, builder: Builder, args: tuple, kwargs: dict, site: str, label: str) -> dict[str, Any]:
        """Arguments by parameter name, defaults filled in; WorkflowTypeError for a bad call."""
        unknown = [k for k in kwargs if k not in self._signature.parameters]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(self._signature.parameters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise WorkflowTypeError(f"workflow {builder.workflow!r}, {label} at {site}: unexpected keyword argument "
                                    f"{unknown[0]!r}{hint} Its signature is {self.type_signature}")
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise WorkflowTypeError(f"workflow {builder.workflow!r}, {label} at {site}: {e}; "
                                    f"its signature is {self.type_signature}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def _record(self, builder: Builder, args: tuple, kwargs: dict, site: str) -> Promise:
        values = self.bind(builder, args, kwargs, site, f"task {self.name!r}")
        inputs = tuple(
            (p.name, builder.source_for(values[p.name], p.type,
                                        lambda suffix="", p=p: _describe(builder, self, p, suffix, site)))
            for p in self.params
        )
        name = builder.unique_name(self.name)
        builder.add(Node(name=name, task=self, inputs=inputs, site=site))
        return Promise(FromStep(name, self.output), builder)


def _describe(builder: Builder, task: Task, param: Param, suffix: str, site: str) -> str:
    return f"workflow {builder.workflow!r}, task {task.name!r}, parameter {param.name!r}{suffix} at {site}"


def task(fn: Callable | None = None, *, cache: bool = False, cache_version: str = "", retries: int = 0,
         timeout: float | None = None, resources: Resources | None = None, name: str | None = None):
    """Make a function a task. Every parameter and the return must be annotated.

    >>> @task(cache=True, retries=2)
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> double(4)   # outside a workflow, the plain function
    8
    """
    options = dict(cache=cache, cache_version=cache_version, retries=retries, timeout=timeout,
                   resources=resources, name=name)
    if fn is None:
        return lambda f: Task(f, **options)
    return Task(fn, **options)


def dynamic(fn: Callable | None = None, *, name: str | None = None):
    """Make a function a dynamic step: part of the graph built at run time, from values.

    When the run reaches it, its body runs (in the driver) with the real values of its inputs
    and calls tasks (and dynamic steps: recursion works, up to 32 deep) as a workflow body
    does; those calls are type-checked then, join the same execution as `step.task` steps
    (recorded, cached and replayed like any), and the step finishes with what the body returned.

    >>> from ledgerflow import run, workflow
    >>> @task
    ... def merge(a: list[int], b: list[int]) -> list[int]:
    ...     return sorted(a + b)
    >>> @dynamic
    ... def sort(xs: list[int]) -> list[int]:
    ...     if len(xs) <= 1:
    ...         return xs
    ...     mid = len(xs) // 2
    ...     return merge(a=sort(xs=xs[:mid]), b=sort(xs=xs[mid:]))
    >>> @workflow
    ... def sorting(xs: list[int]) -> list[int]:
    ...     return sort(xs=xs)
    >>> ex = run(sorting, params={"xs": [3, 1, 2]})
    >>> ex.outputs
    [1, 2, 3]
    >>> sorted(ex.steps)        # the steps made at run time, named by where they were called
    ['sort', 'sort.merge', 'sort.sort', 'sort.sort_2', 'sort.sort_2.merge', 'sort.sort_2.sort', 'sort.sort_2.sort_2']
    """
    def make(f: Callable) -> Task:
        made = Task(f, name=name)
        made.dynamic = True
        return made

    return make if fn is None else make(fn)
