"""Running one step: call the task, check and store what it returns. Same code in every executor."""

from __future__ import annotations

import functools
import socket
import traceback as tb
from datetime import datetime, timezone
from typing import Any

import attrs

from ledgerflow import home
from ledgerflow.store import active as active_store
from ledgerflow.engine.capture import StoredLog, captured
from ledgerflow.engine.context import StepContext, entered, granted_gpus
from ledgerflow.engine.events import ArtifactRef, FAILED, SUCCEEDED, TIMEOUT
from ledgerflow.engine.reporting import Metric, Registration, collecting
from ledgerflow.errors import StepOutputError, StepTimeout  # StepTimeout stays importable from here
from ledgerflow.store import Store
from ledgerflow.types import Handle, TypeMismatch, conform, type_name
from ledgerflow.types.conform import mismatch
from ledgerflow.types.codec import encode, value_digest
from ledgerflow.types.kinds import VALUE_KIND


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    # Asked once per process: gethostname is a system call (~10 µs), and every step reports it.
    return socket.gethostname()


@attrs.frozen
class StepCall:
    """Everything a worker needs to run one attempt of a step."""

    execution_id: str
    step: str
    task: Any  # Task
    inputs: tuple[tuple[str, Any], ...]
    attempt: int
    store_url: str
    home: str | None = None  # the driver's LEDGERFLOW_HOME, for code in the step that reads it


@attrs.frozen
class StepOutcome:
    """What one attempt produced: outputs (name, value, ref), or the error that stopped it."""

    step: str
    attempt: int
    status: str  # SUCCEEDED | FAILED | TIMEOUT
    started_at: datetime
    ended_at: datetime
    node: str
    outputs: tuple[tuple[str, Any, ArtifactRef], ...] = ()
    error: BaseException | None = None
    traceback: str | None = None
    metrics: tuple[Metric, ...] = ()
    registrations: tuple[Registration, ...] = ()
    environment: str | None = None  # JSON; sent by a remote worker with its first outcome
    logs: tuple[StoredLog, ...] = ()  # what it wrote to stdout and stderr, stored by content
    logs_stored: bool = False  # False: the attempt did not store its output (see `capture.adopt_spools`)


def artifact_ref(value: Any, tp: Any) -> ArtifactRef:
    """The ledger's view of a value of declared type tp."""
    text = encode(value, tp)
    if isinstance(value, Handle):
        return ArtifactRef(digest=value.digest, kind=value.kind, type=type_name(tp), size=value.size,
                           uri=value.store_url, value=text)
    return ArtifactRef(digest=value_digest(text), kind=VALUE_KIND, type=type_name(tp), size=len(text.encode()),
                       value=text)


def conform_outputs(task: Any, step: str, result: Any) -> tuple[tuple[str, Any, ArtifactRef], ...]:
    slots = task.outputs
    try:
        if len(slots) > 1:
            if not isinstance(result, (tuple, list)) or len(result) != len(slots):
                raise mismatch("return", task.output, result, f"expected a tuple of {len(slots)} values")
            values = [conform(v, tp, name) for v, (name, tp) in zip(result, slots)]
        else:
            values = [conform(result, task.output, "return")]
    except TypeMismatch as e:
        raise StepOutputError(f"step {step!r} (task {task.qualname}) returned a value that does not match "
                              f"its declared return type {type_name(task.output)}: {e}") from None
    return tuple((name, v, artifact_ref(v, tp)) for v, (name, tp) in zip(values, slots))


def run_step(call: StepCall) -> StepOutcome:
    """Run one attempt in this process. Errors are caught and returned, with their traceback."""
    started = datetime.now(timezone.utc)
    outputs: tuple = ()
    error = trace = None
    status = SUCCEEDED
    ctx = StepContext(execution_id=call.execution_id, step=call.step, task=call.task.qualname, attempt=call.attempt,
                      home=call.home, resources=call.task.resources, gpu_ids=granted_gpus(), node=_hostname())
    spool = None if call.home is None else (call.home, call.execution_id, call.attempt)
    store = Store.open(call.store_url)
    with active_store.using(store), home.using(call.home), collecting() as reports, entered(ctx):
        with captured(call.step, spool=spool) as streams:
            try:
                result = call.task.fn(**dict(call.inputs))
                outputs = conform_outputs(call.task, call.step, result)
            except Exception as e:  # the step's failure is data for the ledger; KeyboardInterrupt passes
                status = TIMEOUT if isinstance(e, StepTimeout) else FAILED
                error, trace = e, "".join(tb.format_exception(e))
        try:
            logs, stored = streams.store(store), True
        except Exception:  # the store failing, or the step's deadline firing now: the spools stay, and
            logs, stored = (), False  # the runner adopts them (`capture.adopt_spools`) with the attempt
        else:
            streams.remove_spools()
    return StepOutcome(step=call.step, attempt=call.attempt, status=status, started_at=started,
                       ended_at=datetime.now(timezone.utc), node=_hostname(), outputs=outputs,
                       error=error, traceback=trace, metrics=tuple(reports.metrics),
                       registrations=tuple(reports.registrations) if status == SUCCEEDED else (), logs=logs,
                       logs_stored=stored)
