"""Ledgerflow: typed, content-addressed workflows with a tamper-evident lineage ledger.

>>> from ledgerflow import task, workflow, run, Dataset
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ledgerflow.engine.branching import when
from ledgerflow.engine.events import MemoryRecorder
from ledgerflow.engine.fanout import map_task
from ledgerflow.engine.reporting import log_metric
from ledgerflow.engine.resources import Resources
from ledgerflow.engine.runner import Execution, StepResult
from ledgerflow.engine.task import Task, task
from ledgerflow.engine.workflow import Workflow, workflow
from ledgerflow.errors import (
    ExecutionFailed,
    IntegrityError,
    LedgerflowError,
    ParameterError,
    StepOutputError,
    WorkflowTypeError,
)
from ledgerflow.lineage import Ledger
from ledgerflow.lineage.recording import run
from ledgerflow.lineage.model_registration import register
from ledgerflow.lineage.replay import Replay, replay
from ledgerflow.types import Dataset, Directory, File, Model

try:
    __version__ = _version("ledgerflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Dataset", "Directory", "Ledger", "Replay", "replay", "Execution", "ExecutionFailed", "File", "IntegrityError", "LedgerflowError",
    "MemoryRecorder", "Model", "ParameterError", "Resources", "StepOutputError", "StepResult", "Task",
    "WorkflowTypeError", "log_metric", "map_task", "register", "run", "task", "when", "workflow",
]
