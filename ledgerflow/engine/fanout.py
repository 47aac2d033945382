"""`map_task`: one step per element of a list, known when the workflow is built or made at run time."""

from __future__ import annotations

import sys
import typing
from typing import Any, Optional

from ledgerflow.engine.graph import FromStep, Node
from ledgerflow.engine.task import Task
from ledgerflow.engine.tracing import Promise, current_builder
from ledgerflow.errors import DefinitionError, WorkflowTypeError
from ledgerflow.types import TypeMismatch, accepts, conform, type_name


def map_task(task: Task, /, *, min_success: float = 1.0, **kwargs: Any) -> Promise:
    """Run `task` once per element of its list arguments, in parallel where the executor allows.

    An argument is mapped when it is a list (or a promise of `list[T]`) given for a parameter
    declared `T`; the other arguments are passed whole to every element. Mapped lists must
    have the same length. The result is a `list` of the outputs, in order. By default one
    failed element fails the map; `min_success=0.9` lets up to 10% fail, and their places in
    the result hold None (so the result is then `list[Optional[T]]`).

    >>> from ledgerflow import run, task, workflow
    >>> @task
    ... def train(lr: float, data: list[int]) -> float:
    ...     return round(sum(data) * lr, 6)
    >>> @workflow
    ... def sweep(data: list[int]) -> list[float]:
    ...     return map_task(train, lr=[1e-3, 1e-4], data=data)
    >>> ex = run(sweep, params={"data": [1, 2, 3]})
    >>> ex.outputs, sorted(ex.steps)       # the map, and one step per element
    ([0.006, 0.0006], ['train', 'train[0]', 'train[1]'])
    """
    builder = current_builder()
    if not isinstance(task, Task):
        raise WorkflowTypeError(f"map_task maps a @task, not {task!r}")
    if not 0 < min_success <= 1:
        raise DefinitionError(f"map_task({task.name}): min_success={min_success!r} must be in (0, 1]")
    if builder is None:  # outside a workflow: plain Python, like calling a task
        return _map_eagerly(task, kwargs)
    caller = sys._getframe(1)
    site = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    values = task.bind(builder, (), kwargs, site, f"map_task({task.name})")
    inputs, mapped = [], []
    for p in task.params:
        value = values[p.name]

        def describe(suffix: str = "", p=p) -> str:
            return f"workflow {builder.workflow!r}, map_task({task.name}), parameter {p.name!r}{suffix} at {site}"

        if _is_mapped(value, p.type):
            mapped.append(p.name)
            inputs.append((p.name, builder.source_for(value, list[p.type], describe)))
        else:
            inputs.append((p.name, builder.source_for(value, p.type, describe)))
    if not mapped:
        raise WorkflowTypeError(f"workflow {builder.workflow!r}, map_task({task.name}) at {site}: no argument is "
                                "a list to map over; give a list (or a promise of list[T]) for a parameter declared T")
    name = builder.unique_name(task.name)
    builder.add(Node(name=name, task=task, inputs=tuple(inputs), site=site, mapped=tuple(mapped),
                     min_success=min_success))
    element = task.output if min_success >= 1 else Optional[task.output]
    return Promise(FromStep(name, list[element]), builder)


def _is_mapped(value: Any, declared: Any) -> bool:
    if isinstance(value, Promise):
        t = value.type
        return (not accepts(declared, t) and typing.get_origin(t) is list and accepts(declared, typing.get_args(t)[0]))
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, Promise) for v in value):
            return typing.get_origin(declared) is not list
        try:
            conform(value, declared)
            return False
        except TypeMismatch:
            return True
    return False


def _map_eagerly(task: Task, kwargs: dict[str, Any]) -> list:
    params = {p.name: p.type for p in task.params}
    mapped = {k: v for k, v in kwargs.items() if k in params and _is_mapped(v, params[k])}
    if not mapped:
        raise DefinitionError(f"map_task({task.name}): no argument is a list to map over")
    lengths = {len(v) for v in mapped.values()}
    if len(lengths) > 1:
        raise DefinitionError(f"map_task({task.name}): mapped lists differ in length: "
                         + ", ".join(f"{k}={len(v)}" for k, v in mapped.items()))
    n = lengths.pop()
    return [task.fn(**{**kwargs, **{k: v[i] for k, v in mapped.items()}}) for i in range(n)]
