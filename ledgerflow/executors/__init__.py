"""Where steps run: in this process (`local`) or on a Ray cluster (`ray`)."""

from __future__ import annotations

from ledgerflow.executors.local import LocalExecutor

__all__ = ["LocalExecutor", "resolve"]


def resolve(executor) -> object:
    """An Executor from a name ("local", "ray") or an executor instance."""
    if not isinstance(executor, str):
        return executor
    if executor == "local":
        return LocalExecutor()
    if executor == "ray":
        from ledgerflow.executors.ray import RayExecutor

        return RayExecutor()
    raise ValueError(f"unknown executor {executor!r}: use 'local' or 'ray', or pass an executor instance")
