"""What a step reports besides its outputs: metrics, and models to register.

Both are collected while the step runs, travel back with its outcome (from a Ray worker
too), and are written by the driver alone, which owns the ledger.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from datetime import datetime, timezone
from typing import Any

import attrs

from ledgerflow.errors import DefinitionError, RegistryError


@attrs.frozen
class Metric:
    name: str
    value: float
    at: datetime
    index: int | None = None


@attrs.frozen
class Registration:
    """A request, from inside a step, to register a model version under a name."""

    name: str
    model: Any  # a Model handle
    alias: str | None
    metrics: dict[str, float]
    why: str | None
    at: datetime


@attrs.define
class Reports:
    metrics: list[Metric] = attrs.Factory(list)
    registrations: list[Registration] = attrs.Factory(list)


_sink: contextvars.ContextVar[Reports | None] = contextvars.ContextVar("ledgerflow_reports", default=None)


def in_step() -> bool:
    """Whether the caller runs inside a step (where reports go to the ledger through the driver)."""
    return _sink.get() is not None


def finite(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise DefinitionError(f"{what}: the value must be a finite number, not {value!r}")
    return float(value)


def log_metric(name: str, value: float, *, index: int | None = None) -> None:
    """Record a metric of the running step in the ledger; `index` orders a series (epoch, step).

    Outside a step it does nothing, so task functions stay testable on their own.

    >>> log_metric("accuracy", 0.97)
    """
    sink = _sink.get()
    if sink is None:
        return
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"log_metric: the name must be a non-empty string, not {name!r}")
    sink.metrics.append(Metric(name, finite(f"log_metric({name!r}, ...)", value), datetime.now(timezone.utc), index))


def request_registration(name: str, model: Any, alias: str | None, metrics: dict[str, float] | None,
                         why: str | None) -> None:
    sink = _sink.get()
    if sink is None:  # register() asks in_step() first: only a caller that skipped it gets here
        raise RegistryError("request_registration is for code running inside a step")
    checked = {k: finite(f"register({name!r}) metric {k!r}", v) for k, v in (metrics or {}).items()}
    sink.registrations.append(Registration(name, model, alias, checked, why, datetime.now(timezone.utc)))


@contextlib.contextmanager
def collecting():
    """Collect what the block reports into the yielded Reports."""
    sink = Reports()
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
