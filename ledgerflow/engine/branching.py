"""`when`: pick one of two branches at run time, from a boolean an upstream step produced."""

from __future__ import annotations

import sys
from typing import Any, Callable, Union

from ledgerflow.engine.graph import Choice, Constant, Guard
from ledgerflow.engine.tracing import Promise, current_builder
from ledgerflow.errors import WorkflowTypeError
from ledgerflow.types import accepts, type_name


def when(condition: Any, *, then: Callable[[], Any], otherwise: Callable[[], Any]) -> Any:
    """The result of `then()` if condition is true at run time, else of `otherwise()`.

    Both branches are traced and type-checked when the workflow is built; only one runs.
    The steps of the other are recorded as skipped, with the condition's value.

    >>> from ledgerflow import run, task, workflow
    >>> @task
    ... def evaluate(n: int) -> float:
    ...     return n / 10
    >>> @task
    ... def passes_gate(accuracy: float) -> bool:
    ...     return accuracy >= 0.9
    >>> @task
    ... def promote(accuracy: float) -> str:
    ...     return f"promoted at {accuracy}"
    >>> @task
    ... def hold(accuracy: float) -> str:
    ...     return f"held at {accuracy}"
    >>> @workflow
    ... def gate(n: int) -> str:
    ...     accuracy = evaluate(n=n)
    ...     return when(passes_gate(accuracy=accuracy), then=lambda: promote(accuracy=accuracy),
    ...                 otherwise=lambda: hold(accuracy=accuracy))
    >>> ex = run(gate, params={"n": 7})
    >>> ex.outputs, str(ex.steps["promote"].status)
    ('held at 0.7', 'skipped')
    >>> run(gate, params={"n": 9}).outputs
    'promoted at 0.9'

    Outside a workflow it is plain Python: `then()` if condition else `otherwise()`.
    """
    builder = current_builder()
    if builder is None:
        return then() if condition else otherwise()
    caller = sys._getframe(1)
    site = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    where = f"workflow {builder.workflow!r}, when(...) at {site}"
    if not callable(then) or not callable(otherwise):
        raise WorkflowTypeError(f"{where}: then= and otherwise= take functions of no arguments, "
                                "e.g. then=lambda: register(model=best)")
    if not isinstance(condition, Promise):
        raise WorkflowTypeError(f"{where}: the condition is known when the workflow is built ({condition!r}); "
                                "use a plain Python `if` for that, and when() for a bool a step produces")
    if not accepts(bool, condition.type):
        raise WorkflowTypeError(f"{where}: the condition must be a bool, given {type_name(condition.type)}")
    branches = []
    for expected, branch in ((True, then), (False, otherwise)):
        with builder.guarded(Guard(condition.source, expected)):
            result = branch()
        if isinstance(result, Promise):
            branches.append((result.source, result.type))
        elif result is None:
            branches.append((Constant(None, type(None)), type(None)))
        else:
            raise WorkflowTypeError(f"{where}: the {'then' if expected else 'otherwise'} branch must return a "
                                    f"step's output (a promise) or None, not {result!r:.60}")
    (a, a_type), (b, b_type) = branches
    if accepts(a_type, b_type):
        result_type = a_type
    elif accepts(b_type, a_type):
        result_type = b_type
    else:
        result_type = Union[a_type, b_type]
    return Promise(Choice(condition.source, a, b, result_type), builder)
