"""`log_metric`: numbers a step reports (accuracy, loss), carried back with its outcome."""

from __future__ import annotations

import contextlib
import contextvars
import math
from datetime import datetime, timezone

import attrs


@attrs.frozen
class Metric:
    name: str
    value: float
    at: datetime
    index: int | None = None


_sink: contextvars.ContextVar[list | None] = contextvars.ContextVar("ledgerflow_metrics", default=None)


def log_metric(name: str, value: float, *, index: int | None = None) -> None:
    """Record a metric of the running step in the ledger; `index` orders a series (epoch, step).

    Outside a step it does nothing, so task functions stay testable on their own.

    >>> log_metric("accuracy", 0.97)
    """
    sink = _sink.get()
    if sink is None:
        return
    if not isinstance(name, str) or not name:
        raise ValueError(f"log_metric: the name must be a non-empty string, not {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"log_metric({name!r}, ...): the value must be a finite number, not {value!r}")
    sink.append(Metric(name, float(value), datetime.now(timezone.utc), index))


@contextlib.contextmanager
def collecting():
    """Collect the metrics logged inside the block into the yielded list."""
    sink: list[Metric] = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
