"""A workflow's failure handler: `@workflow(on_failure=cleanup)`.

Flyte's `on_failure`: when a step fails for good, the run calls one more task, with what
failed as its input, then fails as it would have. The handler is a step of the execution
like any other (named `on_failure`, recorded with its input, outputs, status and errors);
a handler that fails itself is recorded as failed and never hides the failure it handled.
"""

from __future__ import annotations

import attrs

from ledgerflow.errors import WorkflowTypeError
from ledgerflow.types import type_name

HANDLER_STEP = "on_failure"


@attrs.frozen
class Failure:
    """What failed, as the handler receives it.

    >>> Failure("01JD", "flows:train", "fit", "flows:fit", "ValueError: no data", 3).step
    'fit'
    """

    execution_id: str
    workflow: str  # module:function
    step: str  # the step that failed for good
    task: str  # its task, module:function
    error: str  # one line: exception type and message
    attempts: int


def check_handler(workflow_name: str, handler) -> None:
    """WorkflowTypeError unless `handler` is a task taking exactly one parameter of type Failure."""
    from ledgerflow.engine.task import Task

    if not isinstance(handler, Task):
        raise WorkflowTypeError(f"workflow {workflow_name!r}: on_failure= takes a @task, not {handler!r}")
    params = handler.params
    if len(params) != 1 or params[0].type is not Failure:
        shown = ", ".join(f"{p.name}: {type_name(p.type)}" for p in params) or "none"
        raise WorkflowTypeError(f"workflow {workflow_name!r}: on_failure task {handler.name!r} must take one "
                                f"parameter of type ledgerflow.Failure (it takes {shown})")
