"""`register`: a model version recorded from user code, inside a step (through the run) or outside one.

It sits above both the registry's rows (`registry.py`) and the ledger that writes them, so
neither needs the other to register a model.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from ledgerflow.engine import reporting
from ledgerflow.engine.events import ModelRegistered
from ledgerflow.engine.runner import who
from ledgerflow.engine.step import artifact_ref
from ledgerflow.errors import DefinitionError, LedgerError, RegistryError
from ledgerflow.lineage.ledger import Ledger
from ledgerflow.lineage.registry import check_name
from ledgerflow.lineage.values import ModelVersion


def _check_model(name: str, model: Any) -> None:
    from ledgerflow.types import Model

    if not isinstance(model, Model):
        hint = " (make one with Model.from_path(dir, flavor=...))" if not isinstance(model, type) else ""
        raise RegistryError(f"register({name!r}): expected a ledgerflow.Model handle, got "
                            f"{type(model).__name__}{hint}")


def register(name: str, model: Any, *, alias: str | None = "production", metrics: dict | None = None,
             why: str | None = None, home: str | os.PathLike | None = None) -> ModelVersion | None:
    """Register `model` (a `ledgerflow.Model`) as a new version of `name`, and point `alias` at it.

    Inside a step the registration is recorded by the run, with the step that made it, once
    the step succeeds; it returns None there (the version number is given when it is
    written). Outside a run it is recorded now, in the ledger of `home`, and the
    ModelVersion is returned. `alias=None` registers without moving any alias. `metrics`
    (name -> finite number) are kept with the version, e.g. for an evaluation gate.

    >>> from ledgerflow import Model
    >>> v = register("digits", Model.from_path("out/model", flavor="sklearn"),
    ...              metrics={"accuracy": 0.97}, why="first baseline")
    >>> v.version, v.aliases, v.metrics
    (1, ('production',), {'accuracy': 0.97})
    """
    check_name("model name", name)
    if alias is not None:
        check_name("alias", alias)
    _check_model(name, model)
    if metrics is not None and not isinstance(metrics, dict):
        raise RegistryError(f"register({name!r}): metrics must be a dict of name -> number, not "
                            f"{type(metrics).__name__}")
    if why is not None and not isinstance(why, str):
        raise RegistryError(f"register({name!r}): why must be a string, not {type(why).__name__}")
    if reporting.in_step():
        reporting.request_registration(name, model, alias, metrics, why)
        return None

    try:
        checked = {k: reporting.finite(f"register({name!r}) metric {k!r}", v) for k, v in (metrics or {}).items()}
    except DefinitionError as e:
        raise RegistryError(str(e)) from None
    event = ModelRegistered(name=name, model=artifact_ref(model, type(model)), at=datetime.now(timezone.utc),
                            who=who(), alias=alias, metrics=json.dumps(checked, sort_keys=True), why=why)
    with Ledger(home) as ledger:
        ledger.record(event)
        ledger.flush()
        found = ledger.model(name, digest=model.digest)
    if found is None:
        raise LedgerError("a registration just written must read back")
    return found
