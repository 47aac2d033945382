"""The immutable graph a workflow traces into: nodes (task calls) and where each input comes from."""

from __future__ import annotations

from typing import Any, Union

import attrs


@attrs.frozen
class FromInput:
    """A workflow parameter."""

    name: str
    type: Any


@attrs.frozen
class FromStep:
    """An output of an earlier step; `index` picks one element of a tuple output, `field` one
    field of a record (attrs class or dataclass) output (`res.model`)."""

    step: str
    type: Any
    index: int | None = None
    field: str | None = None

    @property
    def slot(self) -> str:
        """The output it names in the ledger: `return`, `return[1]`, `return.model`."""
        base = "return" if self.index is None else f"return[{self.index}]"
        return base if self.field is None else f"{base}.{self.field}"


@attrs.frozen
class Constant:
    """A literal written in the workflow body, already checked against its parameter's type."""

    value: Any
    type: Any


@attrs.frozen
class Gather:
    """A list (or dict) written in the workflow body whose elements are promises or constants.

    `keys`: a dict's keys, in the order written (constants); None for a list.
    """

    items: tuple["Source", ...]
    type: Any
    keys: tuple | None = None

    def label(self, i: int) -> str:
        """How element i is named in the ledger and the graph: `[0]` of a list, `[lr]` of a dict."""
        return f"[{i}]" if self.keys is None else f"[{self.keys[i]}]"

    def build(self, values: list) -> Any:
        """The list or dict these element values make."""
        return values if self.keys is None else dict(zip(self.keys, values))


@attrs.frozen
class Choice:
    """`when(condition, then=..., otherwise=...)`: one of two sources, picked at run time."""

    condition: "Source"
    then: "Source"
    otherwise: "Source"
    type: Any


Source = Union[FromInput, FromStep, Constant, Gather, Choice]


def upstream_steps(source: Source) -> tuple[str, ...]:
    if isinstance(source, FromStep):
        return (source.step,)
    if isinstance(source, Gather):
        return tuple(s for item in source.items for s in upstream_steps(item))
    if isinstance(source, Choice):
        return upstream_steps(source.condition) + upstream_steps(source.then) + upstream_steps(source.otherwise)
    return ()


@attrs.frozen
class Guard:
    """A node inside a branch of `when` runs only if `condition` evaluates to `expected`."""

    condition: Source
    expected: bool


@attrs.frozen
class Param:
    """A parameter of a task or workflow: name, declared type, default (`attrs.NOTHING` if none)."""

    name: str
    type: Any
    default: Any = attrs.NOTHING

    @property
    def required(self) -> bool:
        return self.default is attrs.NOTHING


@attrs.frozen
class Node:
    """One call of a task in the workflow body."""

    name: str  # unique in the graph: the task's name, `_2`, `_3` for later calls, `sub.` for sub-workflows
    task: Any  # ledgerflow.engine.task.Task
    inputs: tuple[tuple[str, Source], ...]
    site: str  # file:line of the call
    guards: tuple[Guard, ...] = ()
    mapped: tuple[str, ...] = ()  # for map_task: the parameters whose lists are mapped element-wise
    min_success: float = 1.0  # for map_task: the share of elements that must succeed
    map_index: int | None = None  # for one element of a map: its index
    after: tuple[str, ...] = ()  # steps that must succeed first, though no data flows (`a >> b`)

    @property
    def depends_on(self) -> tuple[str, ...]:
        sources = [src for _, src in self.inputs] + [g.condition for g in self.guards]
        return tuple(dict.fromkeys([s for src in sources for s in upstream_steps(src)] + list(self.after)))


@attrs.frozen
class Graph:
    """A workflow, traced: nodes in a topological order, and what the workflow returns."""

    name: str
    params: tuple[Param, ...]
    nodes: tuple[Node, ...]
    output: Source | tuple[Source, ...] | None
    output_type: Any
