"""REF resolution: what a user may type to name something in the ledger.

A REF is a full artifact digest, a unique digest prefix (with or without "blake3:", as
with git), an execution id or a unique prefix of one, `latest` (the execution started last)
or `latest~N` (the one started N before it), or `EXECUTION:step` with any of those.
"""

from __future__ import annotations

import re

import attrs

from ledgerflow.errors import RefError
from ledgerflow.lineage.schema import key64
from ledgerflow.lineage.rows import lookup_by_key

_FULL_DIGEST = re.compile(r"^[a-z0-9]+:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_ALGO = "blake3:"
_MAX_LISTED = 10
_LATEST = re.compile(r"^latest(?:~(\d{1,9}))?$")


@attrs.frozen
class Resolved:
    """What a REF names. kind: "artifact" (digest), "execution" (execution_id) or "step"."""

    kind: str
    digest: str | None = None
    execution_id: str | None = None
    step: str | None = None

    @property
    def ref(self) -> str:
        if self.kind == "artifact":
            return self.digest
        if self.kind == "step":
            return f"{self.execution_id}:{self.step}"
        return self.execution_id


def _execution_ids(con, prefix: str) -> list:
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT execution_id FROM execution_log WHERE starts_with(execution_id, ?) "
            "ORDER BY 1 LIMIT ?",
            [prefix, _MAX_LISTED + 1],
        ).fetchall()
    ]


def _ambiguous(ref: str, candidates: list) -> RefError:
    shown = ", ".join(candidates[:_MAX_LISTED]) + (", ..." if len(candidates) > _MAX_LISTED else "")
    return RefError(f"ambiguous ref {ref!r}: it matches {shown}")


def _latest(con, ref: str) -> str | None:
    """The execution `latest` or `latest~N` names, by start time; None if `ref` is neither."""
    m = _LATEST.match(ref)
    if m is None:
        return None
    back = int(m.group(1) or 0)
    rows = con.execute(
        "SELECT execution_id FROM execution_log GROUP BY execution_id ORDER BY min(changed_at) DESC, execution_id DESC "
        "LIMIT 1 OFFSET ?", [back]).fetchall()
    if not rows:
        total = con.execute("SELECT count(DISTINCT execution_id) FROM execution_log").fetchall()[0][0]
        raise RefError(f"{ref!r}: the ledger holds {total} execution(s), so there is no " +
                       ("latest one" if back == 0 else f"execution {back} before the latest"))
    return rows[0][0]


def resolve_execution(con, ref: str) -> str:
    """The execution id that `ref` (an id, a unique prefix, `latest` or `latest~N`) names."""
    latest = _latest(con, ref)
    if latest is not None:
        return latest
    exact = con.execute("SELECT 1 FROM execution_log WHERE execution_id = ? LIMIT 1", [ref]).fetchall()
    if exact:
        return ref
    found = _execution_ids(con, ref)
    if not found:
        raise RefError(f"no execution {ref!r} in the ledger")
    if len(found) > 1:
        raise _ambiguous(ref, found)
    return found[0]


def resolve(con, ref: str) -> Resolved:
    """Resolve `ref` against the ledger open on `con`; RefError if it names nothing or several things."""
    ref = ref.strip()
    if not ref:
        raise RefError("an empty ref names nothing")
    if _FULL_DIGEST.match(ref):
        hits = lookup_by_key(con, "artifacts", "dkey", [key64(ref)], "digest")
        if ref in hits.column("digest").to_pylist():
            return Resolved("artifact", digest=ref)
        raise RefError(f"no artifact {ref} in the ledger")
    if ":" in ref and not ref.startswith(_ALGO):
        execution_ref, step = ref.split(":", 1)
        execution_id = resolve_execution(con, execution_ref)
        found = con.execute(
            "SELECT 1 FROM edges WHERE execution_id = ? AND step = ? UNION ALL "
            "SELECT 1 FROM step_log WHERE execution_id = ? AND step = ? LIMIT 1",
            [execution_id, step, execution_id, step],
        ).fetchall()
        if not found:
            raise RefError(f"execution {execution_id} has no step {step!r}")
        return Resolved("step", execution_id=execution_id, step=step)
    if con.execute("SELECT 1 FROM execution_log WHERE execution_id = ? LIMIT 1", [ref]).fetchall():
        return Resolved("execution", execution_id=ref)
    latest = _latest(con, ref)
    if latest is not None:
        return Resolved("execution", execution_id=latest)
    candidates: list = []
    hexpart = ref[len(_ALGO) :] if ref.startswith(_ALGO) else ref
    if _HEX.match(hexpart):
        candidates += [
            ("artifact", r[0])
            for r in con.execute(
                "SELECT digest FROM artifacts WHERE starts_with(digest, ?) ORDER BY 1 LIMIT ?",
                [_ALGO + hexpart, _MAX_LISTED + 1],
            ).fetchall()
        ]
    if not ref.startswith(_ALGO):
        candidates += [("execution", e) for e in _execution_ids(con, ref)]
    if not candidates:
        raise RefError(f"no artifact or execution matches {ref!r}")
    if len(candidates) > 1:
        raise _ambiguous(ref, [c[1] for c in candidates])
    kind, value = candidates[0]
    if kind == "artifact":
        return Resolved("artifact", digest=value)
    return Resolved("execution", execution_id=value)
