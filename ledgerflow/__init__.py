"""Ledgerflow: typed, content-addressed workflows with a tamper-evident lineage ledger.

>>> from ledgerflow import task, workflow, run, Dataset
"""

import importlib

# Every public name loads on first use (PEP 562 `__getattr__`), so `import ledgerflow` (and
# the `lineage` CLI, which lives in this package) starts without the engine, duckdb,
# pyarrow or ray; `from ledgerflow import task, Ledger` works as before.
_LAZY = {
    "when": "ledgerflow.engine.branching",
    "current": "ledgerflow.engine.context",
    "Failure": "ledgerflow.engine.failure",
    "StepContext": "ledgerflow.engine.context",
    "MemoryRecorder": "ledgerflow.engine.events",
    "map_task": "ledgerflow.engine.fanout",
    "log_metric": "ledgerflow.engine.reporting",
    "Resources": "ledgerflow.engine.resources",
    "Execution": "ledgerflow.engine.runner",
    "StepResult": "ledgerflow.engine.runner",
    "Task": "ledgerflow.engine.task",
    "dynamic": "ledgerflow.engine.task",
    "task": "ledgerflow.engine.task",
    "Workflow": "ledgerflow.engine.workflow",
    "workflow": "ledgerflow.engine.workflow",
    "ExecutionFailed": "ledgerflow.errors",
    "IntegrityError": "ledgerflow.errors",
    "LedgerflowError": "ledgerflow.errors",
    "ParameterError": "ledgerflow.errors",
    "StepOutputError": "ledgerflow.errors",
    "WorkflowTypeError": "ledgerflow.errors",
    "Ledger": "ledgerflow.lineage.ledger",
    "run": "ledgerflow.app.running",
    "register": "ledgerflow.app.registration",
    "Replay": "ledgerflow.app.replay",
    "replay": "ledgerflow.app.replay",
    "Dataset": "ledgerflow.types",
    "Directory": "ledgerflow.types",
    "File": "ledgerflow.types",
    "Model": "ledgerflow.types",
}


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("ledgerflow")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0+unknown"
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


__all__ = [
    "Dataset", "Directory", "Failure", "Ledger", "Replay", "replay", "Execution", "ExecutionFailed", "File", "IntegrityError", "LedgerflowError",
    "MemoryRecorder", "Model", "ParameterError", "Resources", "StepContext", "StepOutputError", "StepResult", "Task",
    "WorkflowTypeError", "current", "dynamic", "log_metric", "map_task", "register", "run", "task", "when", "workflow",
]
