"""The model registry: named, numbered model versions and movable aliases, in the ledger.

Two chained tables hold it (docs/ledger.md): `model_versions`, one row per version, and
`alias_log`, one row each time an alias (e.g. "production") points somewhere new. Nothing
is updated: promoting or rolling back appends a move, so the whole history of who pointed
which alias where, when and why stays in the chain.

Version numbers are given by the writer inside the flush transaction (it holds the file
lock, so two processes registering under one name cannot both take version 3). The same
model (digest) registered again under a name is the version it already has.

An alias's history is a stack: registering with an alias or promoting pushes a version,
a rollback pops one, so rolling back twice walks two steps back, and rolling back with
nothing underneath is an error rather than a silent no-op.

    >>> import ledgerflow
    >>> from ledgerflow import Ledger, Model
    >>> model = Model.from_path("out/model", flavor="sklearn")
    >>> v = ledgerflow.register("digits", model, metrics={"accuracy": 0.97})
    >>> v.version, Ledger().model("digits", alias="production").version
    (1, 1)
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from ledgerflow import names as name_rule  # (registry.names lists registered models)
from ledgerflow.engine.events import AliasMoved, ModelRegistered
from ledgerflow.errors import RefError, RegistryError, UnknownEvent
from ledgerflow.lineage.schema import ALIAS_LOG, MODEL_VERSIONS, missing_tables
from ledgerflow.lineage.values import AliasMove, ModelVersion, RegisteredModel

REGISTER, PROMOTE, ROLLBACK = "register", "promote", "rollback"


def check_name(what: str, name: Any) -> str:
    """`name` if it is a usable model, alias or tag name, else RegistryError saying why
    (the rule is `ledgerflow.names`).

    >>> check_name("model name", "digits-v2")
    'digits-v2'
    >>> check_name("alias", "prod uction")
    Traceback (most recent call last):
    ...
    ledgerflow.errors.RegistryError: alias 'prod uction': use only letters, digits, '.', '_' and '-'
    """
    return name_rule.check(what, name, RegistryError)


# -- writing: rows for the flush transaction -----------------------------------------------


class RegistryState:
    """What a flush needs to know to number versions and chain alias moves.

    Read from the file on first use of each name (inside the flush transaction, so it is
    current), then kept up to date as the batch adds rows. A batch without registry events
    never queries anything.
    """

    def __init__(self, con):
        self._con = con
        self._versions: dict = {}  # name -> {digest: version}
        self._aliases: dict = {}  # (name, alias) -> version

    def versions(self, name: str) -> dict:
        if name not in self._versions:
            rows = self._con.execute(
                "SELECT digest, version FROM model_versions WHERE name = ? ORDER BY version", [name]
            ).fetchall()
            self._versions[name] = {d: v for d, v in rows}
        return self._versions[name]

    def alias(self, name: str, alias: str) -> int | None:
        key = (name, alias)
        if key not in self._aliases:
            rows = self._con.execute(
                "SELECT version FROM alias_log WHERE name = ? AND alias = ? ORDER BY seq DESC LIMIT 1", [name, alias]
            ).fetchall()
            self._aliases[key] = rows[0][0] if rows else None
        return self._aliases[key]

    def move(self, name: str, alias: str, version: int) -> None:
        self._aliases[(name, alias)] = version


def _flavor(ref) -> str | None:
    try:
        doc = json.loads(ref.value) if ref.value else {}
    except ValueError:
        return None
    return doc.get("flavor") or doc.get("tag") if isinstance(doc, dict) else None


def add_rows(batch, ev, at) -> None:
    """Append the rows of a ModelRegistered or AliasMoved event to the flush's `batch`."""
    state: RegistryState = batch.registry
    if isinstance(ev, ModelRegistered):
        known = state.versions(ev.name)
        version = known.get(ev.model.digest)
        if version is None:
            version = max(known.values(), default=0) + 1
            known[ev.model.digest] = version
            batch.add(
                MODEL_VERSIONS,
                name=ev.name,
                version=version,
                digest=ev.model.digest,
                dkey=batch.key(ev.model.digest),
                type=ev.model.type,
                flavor=_flavor(ev.model),
                size=ev.model.size,
                uri=ev.model.uri,
                execution_id=ev.execution_id,
                step=ev.step,
                registered_at=at,
                who=ev.who,
                why=ev.why,
                metrics=ev.metrics,
            )
        previous = state.alias(ev.name, ev.alias) if ev.alias else None
        if ev.alias and previous != version:
            batch.add(ALIAS_LOG, name=ev.name, alias=ev.alias, version=version, previous_version=previous,
                      action=REGISTER, moved_at=at, who=ev.who, why=ev.why)
            state.move(ev.name, ev.alias, version)
    elif isinstance(ev, AliasMoved):
        batch.add(ALIAS_LOG, name=ev.name, alias=ev.alias, version=ev.version,
                  previous_version=state.alias(ev.name, ev.alias), action=ev.action, moved_at=at, who=ev.who,
                  why=ev.why)
        state.move(ev.name, ev.alias, ev.version)
    else:
        raise UnknownEvent(f"not a registry event: {type(ev).__name__}")


# -- reading --------------------------------------------------------------------------------


def _metrics(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"_unparsed": text}
    return value if isinstance(value, dict) else {"_unparsed": text}


def read_models(con, name: str | None = None) -> tuple:
    """Every registered model (or only `name`), as RegisteredModel values sorted by name."""
    if {"model_versions", "alias_log"} & missing_tables(con):  # an older ledger, not yet migrated
        return ()
    where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
    versions = con.execute(
        "SELECT name, version, digest, type, flavor, size, uri, execution_id, step, registered_at, who, why, metrics "
        f"FROM model_versions {where} ORDER BY name, version",
        params,
    ).fetchall()
    moves = con.execute(
        f"SELECT name, alias, version, previous_version, action, moved_at, who, why FROM alias_log {where} ORDER BY seq",
        params,
    ).fetchall()
    history: dict = {}
    current: dict = {}  # name -> {alias: version}
    for n, alias, version, previous, action, at, who, why in moves:
        history.setdefault(n, []).append(AliasMove(n, alias, version, previous, action, at, who, why))
        current.setdefault(n, {})[alias] = version
    by_name: dict = {}
    for n, version, digest, tp, flavor, size, uri, eid, step, at, who, why, metrics in versions:
        aliases = tuple(sorted(a for a, v in current.get(n, {}).items() if v == version))
        by_name.setdefault(n, []).append(
            ModelVersion(n, version, digest, tp, flavor, size, uri, eid, step, at, who, why, _metrics(metrics), aliases)
        )
    return tuple(
        RegisteredModel(n, tuple(vs), dict(sorted(current.get(n, {}).items())), tuple(history.get(n, ())))
        for n, vs in by_name.items()
    )


def names(con) -> list:
    if "model_versions" in missing_tables(con):
        return []
    return [r[0] for r in con.execute("SELECT DISTINCT name FROM model_versions ORDER BY 1").fetchall()]


def unknown_model(name: str, known: list) -> RefError:
    """RefError for a name not in the registry, naming the closest (or all) registered names."""
    if not known:
        return RefError(f"no model named {name!r}: nothing has been registered yet")
    close = difflib.get_close_matches(name, known, n=3) or known[:10]
    more = ", ..." if len(close) == 10 and len(known) > 10 else ""
    return RefError(f"no model named {name!r} in the registry (did you mean: {', '.join(close)}{more})")


def find_version(model: RegisteredModel, version: int) -> ModelVersion:
    """`version` of `model`; RefError listing the versions it has."""
    for v in model.versions:
        if v.version == version:
            return v
    have = ", ".join(str(v.version) for v in model.versions)
    raise RefError(f"model {model.name!r} has no version {version} (versions: {have})")


def alias_stack(model: RegisteredModel, alias: str) -> list:
    """The versions `alias` went through, as a stack: the top is where it points now.

    A register or promote pushes; a rollback pops (and, should the popped stack not agree
    with the recorded target, say after two concurrent moves, the recorded target wins).

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1)
    >>> moves = (AliasMove("m", "prod", 1, None, "register", t, None, None),
    ...          AliasMove("m", "prod", 2, 1, "register", t, None, None),
    ...          AliasMove("m", "prod", 3, 2, "promote", t, None, None),
    ...          AliasMove("m", "prod", 2, 3, "rollback", t, None, None))
    >>> alias_stack(RegisteredModel("m", (), {"prod": 2}, moves), "prod")
    [1, 2]
    """
    stack: list = []
    for move in model.history:
        if move.alias != alias:
            continue
        if move.action == ROLLBACK and stack:
            stack.pop()
            if stack and stack[-1] == move.version:
                continue
        stack.append(move.version)
    return stack


def rollback_target(model: RegisteredModel, alias: str) -> int:
    """The version a rollback of `alias` returns to; RegistryError if there is none."""
    stack = alias_stack(model, alias)
    if not stack:
        raise RegistryError(f"model {model.name!r} has no alias {alias!r} to roll back"
                            + (f" (aliases: {', '.join(model.aliases)})" if model.aliases else ""))
    if len(stack) < 2:
        raise RegistryError(f"cannot roll back {model.name!r} {alias}: it is at version {stack[0]}, the bottom of "
                            "its history; there is no earlier version to return to")
    return stack[-2]
