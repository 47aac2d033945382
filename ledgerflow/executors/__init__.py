"""Where steps run: the executors by name, for `run(executor=...)` and `lineage run --executor`.

An executor is a class with the `Executor` protocol (engine/executor.py). Each is registered
here by name and the place it lives, and imported only when a run asks for it (so `import
ledgerflow` never imports Ray). Adding one is a module of its own plus one line below, or one
`register` call from code of yours, e.g. `register("threads",
"my_package.threads:ThreadPoolExecutor")`. Here, the local executor under a second name:

>>> register("inline", "ledgerflow.executors.local:LocalExecutor")
>>> "inline" in names()
True
>>> from ledgerflow import run
>>> print(run(pipeline, executor="inline").status)
succeeded
"""

from __future__ import annotations

import importlib

from ledgerflow.errors import UnknownExecutor
from ledgerflow.executors.local import LocalExecutor

__all__ = ["LocalExecutor", "names", "register", "resolve"]

_REGISTRY: dict[str, str] = {}  # name -> "module:Class"


def register(name: str, where: str) -> None:
    """Make the executor class at `where` ("package.module:Class") available as `name`."""
    module, sep, attr = where.partition(":")
    if not (name and sep and module and attr):
        raise UnknownExecutor(f"register({name!r}, {where!r}): give a name and 'package.module:Class'")
    _REGISTRY[name] = where


register("local", "ledgerflow.executors.local:LocalExecutor")
register("ray", "ledgerflow.executors.ray:RayExecutor")


def names() -> tuple[str, ...]:
    """The registered executor names, in registration order.

    >>> names()[:2]
    ('local', 'ray')
    """
    return tuple(_REGISTRY)


def resolve(executor) -> object:
    """An Executor from a registered name, or an executor instance as it is."""
    if not isinstance(executor, str):
        return executor
    where = _REGISTRY.get(executor)
    if where is None:
        raise UnknownExecutor(f"unknown executor {executor!r}: use one of {', '.join(map(repr, names()))}, or "
                              "pass an executor instance")
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)()
