"""`lineage why`: why a step ran, or which earlier step it reused, from the ledger alone.

A step's cache key is the digest of its task's identity (`task_identities.parts`: code
digests by qualified name, the values the code reads, cache_version, signature, engine; see
engine/task.py) and its inputs' digests. A step that ran is compared with the most recent
earlier run of the same task (the same step name first, else any step of the task; a run
that succeeded or was a cache hit, in any execution): each part of the key that differs is
named, a changed function with a unified diff of its source between the two executions'
code snapshots, a value read as `FACTOR: 2 -> 5`, an input with its plain values.

`reasons` gives `lineage show` one line per step, comparing identities once per task and
pair of identities, not once per step.
"""

from __future__ import annotations

import ast
import difflib
import json
from collections import defaultdict
from pathlib import Path

from ledgerflow.engine.status import Status
from ledgerflow.errors import RefError
from ledgerflow.lineage import refs
from ledgerflow.lineage.rows import ExecutionRanges, lookup_by_key
from ledgerflow.lineage.schema import key64, missing_tables
from ledgerflow.lineage.values import KeyChange, StepWhy
from ledgerflow.types.kinds import VALUE_KIND

# A result existed after a run in these states: the runs a later step could have reused.
_RAN = tuple(s.value for s in Status if s.ok)
_SCALARS = ("cache_version", "signature", "engine")
_MANIFEST = "ledgerflow-snapshot.json"
_SHOWN = 3  # changes named in one line


# -- naming a step ----------------------------------------------------------------------------------

def resolve_step(con, ref: str) -> tuple[str, str]:
    """(execution id, step) that REF names: `EXECUTION_ID:step` (an id prefix allowed),
    `latest:step`, or a bare step name (of the latest execution that has a step so named)."""
    ref = ref.strip()
    if ":" in ref and not ref.startswith("blake3:"):
        head, step = ref.split(":", 1)
        if head == "latest":
            return _latest_with(con, step, ref), step
        resolved = refs.resolve(con, ref)
        return resolved.execution_id, resolved.step
    return _latest_with(con, ref, ref), ref


def _latest_with(con, step: str, ref: str) -> str:
    row = con.execute("SELECT execution_id FROM step_log WHERE step = ? ORDER BY seq DESC LIMIT 1",
                      [step]).fetchall()
    if not row:
        raise RefError(f"{ref!r}: no execution in the ledger has a step {step!r} "
                       "(give EXECUTION_ID:step, latest:step or a step name)")
    return row[0][0]


# -- comparing key parts ----------------------------------------------------------------------------

def _identities(con, fingerprints) -> dict:
    """task_fingerprint -> parsed parts, for those the ledger holds."""
    fps = [f for f in set(fingerprints) if f]
    if not fps or "task_identities" in missing_tables(con):
        return {}
    found = lookup_by_key(con, "task_identities", "dkey", [key64(f) for f in fps], "digest, parts")
    out = {}
    if found is not None:
        for digest, parts in zip(found.column("digest").to_pylist(), found.column("parts").to_pylist()):
            try:
                out[digest] = json.loads(parts)
            except ValueError:
                continue
    return out


def identity_changes(before: dict, after: dict) -> list:
    """KeyChanges between two identities' parts (code without diffs: see `_with_diffs`)."""
    out = []
    code_a, code_b = before.get("code") or {}, after.get("code") or {}
    for name in sorted(set(code_a) | set(code_b)):
        if code_a.get(name) != code_b.get(name):
            out.append(KeyChange("code", name, code_a.get(name), code_b.get(name)))
    reads_a, reads_b = before.get("reads") or {}, after.get("reads") or {}
    for name in sorted(set(reads_a) | set(reads_b)):
        if reads_a.get(name) != reads_b.get(name):
            out.append(KeyChange("read", name, reads_a.get(name), reads_b.get(name)))
    for part in _SCALARS:
        if before.get(part) != after.get(part):
            out.append(KeyChange(part, part, _text(before.get(part)), _text(after.get(part))))
    return out


def _text(value) -> str | None:
    return None if value is None else str(value)


def _key_inputs(rows) -> dict:
    """{input name: digest} of the inputs that make a key (a guard's `when=` input does not)."""
    return {name: digest for name, digest in rows if not name.startswith("when=")}


def input_changes(before: dict, after: dict, values: dict) -> list:
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a != b:
            out.append(KeyChange("input", name, a, b, values.get(a), values.get(b)))
    return out


def _plain_values(con, digests) -> dict:
    """digest -> canonical JSON, for the plain values among `digests`."""
    digests = [d for d in set(digests) if d]
    if not digests:
        return {}
    found = lookup_by_key(con, "artifacts", "dkey", [key64(d) for d in digests], "digest, kind, value")
    out = {}
    if found is not None:
        for row in found.to_pylist():
            if row["value"] is not None and row["kind"] in (None, VALUE_KIND):
                out.setdefault(row["digest"], row["value"])
    return out


def summary(changes) -> str:
    shown = [c.text() for c in changes[:_SHOWN]]
    more = len(changes) - _SHOWN
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


# -- code snapshots -----------------------------------------------------------------------------------

def _snapshot(store, digest: str | None):
    """(root folder, {module name: relative file}) of a code snapshot, or a note saying why not."""
    if store is None:
        return None, "no store to read the code snapshot from"
    if not digest:
        return None, "the execution recorded no code snapshot"
    try:
        if not store.has(digest):
            return None, f"code snapshot {digest} is no longer in the store"
        root = Path(store.checkout(digest))
        meta = json.loads((root / _MANIFEST).read_text())
        return (root, meta.get("modules") or {}), None
    except Exception as e:  # noqa: BLE001 - a damaged snapshot is reported, not raised
        return None, f"code snapshot {digest} cannot be read: {type(e).__name__}: {e}"


def _locate(label: str, task: str | None, modules: dict) -> tuple[str | None, str]:
    """(module, qualname) of a code label: `helper.compute` in module helper, a bare name in
    the task's own module (labels of the task's module are bare: see engine/dependencies.py)."""
    for module in sorted(modules, key=len, reverse=True):
        if label.startswith(module + "."):
            return module, label[len(module) + 1:]
    home = task.partition(":")[0] if task else None
    return home, label


def _find(tree: ast.AST, qualname: str):
    """The def or class named by a qualified name (`Model.predict`, `make.<locals>.inner`)."""
    node = tree
    for name in (p for p in qualname.split(".") if p != "<locals>"):
        found = None
        stack = list(ast.iter_child_nodes(node))
        while stack:
            child = stack.pop(0)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if child.name == name:
                    found = child  # the last definition is the one that runs
                continue
            stack.extend(ast.iter_child_nodes(child))
        if found is None:
            return None
        node = found
    return node


def _source(snapshot, label: str, task: str | None) -> tuple[str | None, str | None, str | None]:
    """(file, source of the def or class, note) for a code label in a snapshot."""
    root, modules = snapshot
    module, qualname = _locate(label, task, modules)
    rel = modules.get(module) if module else None
    if rel is None:
        return None, None, f"module {module!r} is not in the code snapshot"
    try:
        text = (root / rel).read_text()
        node = _find(ast.parse(text), qualname)
    except (OSError, SyntaxError, ValueError) as e:
        return rel, None, f"{rel} cannot be read: {e}"
    if node is None:
        return rel, None, f"{qualname} is not defined in {rel} as snapshotted"
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = text.splitlines(keepends=True)[first - 1:node.end_lineno]
    return rel, "".join(lines), None


def _with_diffs(changes, store, code_digests, task, labels) -> list:
    """Code changes with a unified diff of the function between the two snapshots (or a note)."""
    if not any(c.part == "code" for c in changes):
        return changes
    snaps = [_snapshot(store, d) for d in code_digests]
    out = []
    for c in changes:
        if c.part != "code":
            out.append(c)
            continue
        texts, files, notes = [], [], []
        for (snap, note), side in zip(snaps, ("before", "after")):
            if snap is None:
                texts.append(None)
                files.append(None)
                notes.append(f"{side}: {note}")
                continue
            rel, src, why = _source(snap, c.name, task)
            texts.append(src)
            files.append(rel)
            if why:
                notes.append(f"{side}: {why}")
        diff = None
        if texts[0] is not None or texts[1] is not None:
            diff = "".join(difflib.unified_diff(
                (texts[0] or "").splitlines(keepends=True), (texts[1] or "").splitlines(keepends=True),
                f"{labels[0]}/{files[0] or '?'}", f"{labels[1]}/{files[1] or '?'}")) or None
        out.append(KeyChange(c.part, c.name, c.before, c.after, diff=diff,
                             note="; ".join(n for n in notes if c.before or not n.startswith("before")) or None))
    return out


# -- one step ---------------------------------------------------------------------------------------

_STEP_COLS = "state, task, task_fingerprint, cache_key, cached_from, started_at, ended_at, seq, attempt, forced"

_FORCED = {
    "recompute": "recompute forced (--recompute)",
    "no-cache": "the cache was off for the run (--no-cache)",
    "unusable": "the cached result could not be used (missing or damaged; see the run's warning)",
}



def _step_row(con, execution_id: str, step: str):
    rows = con.execute(f"SELECT {_STEP_COLS} FROM step_log WHERE execution_id = ? AND step = ? ORDER BY seq",
                       [execution_id, step]).fetchall()
    if not rows:
        raise RefError(f"execution {execution_id} has no step {step!r} that ran")
    return rows[-1], rows[0][7]  # the latest row, and the step's first seq


def _inputs(con, execution_id: str, step: str, attempt) -> dict:
    rows = con.execute(
        "SELECT name, digest FROM edges WHERE execution_id = ? AND step = ? AND attempt = ? AND direction = 'consumed' "
        "ORDER BY seq", [execution_id, step, attempt]).fetchall()
    return _key_inputs(rows)


def _code_digest(con, execution_id: str) -> str | None:
    row = con.execute("SELECT code_digest FROM execution_log WHERE execution_id = ? AND code_digest IS NOT NULL "
                      "ORDER BY seq LIMIT 1", [execution_id]).fetchall()
    return row[0][0] if row else None


def explain(con, store, execution_id: str, step: str) -> StepWhy:
    """Why `execution_id:step` ran or was reused (see the module docstring). `store` (or None)
    is where the code snapshots are, for the diffs of changed functions."""
    row, first_seq = _step_row(con, execution_id, step)
    state, task, fingerprint, key, cached_from, started, ended, seq, attempt, forced = row
    ref = f"{execution_id}:{step}"
    base = dict(ref=ref, task=task, status=state, cache_key=key)
    if state == Status.CACHED or cached_from:
        at = None
        if cached_from and ":" in cached_from:
            e, s = cached_from.split(":", 1)
            found = con.execute("SELECT started_at, ended_at FROM step_log WHERE execution_id = ? AND step = ? "
                                "AND state IN ('succeeded', 'cached') ORDER BY seq DESC LIMIT 1", [e, s]).fetchall()
            at = (found[0][1] or found[0][0]) if found else None
        when = f", which ran {at:%Y-%m-%d %H:%M:%S} UTC" if at else ""
        return StepWhy(**base, verdict="cache-hit", reason=f"cache hit: reused {cached_from}{when}",
                       cached_from=cached_from, cached_from_at=at)
    if state == Status.SKIPPED:
        return StepWhy(**base, verdict="skipped", reason="skipped: its condition did not hold")
    prev = con.execute(
        "SELECT execution_id, step, task_fingerprint, cache_key, coalesce(ended_at, started_at), attempt "
        f"FROM step_log WHERE task = ? AND seq < ? AND state IN {_RAN} AND NOT (execution_id = ? AND step = ?) "
        "ORDER BY (step = ?) DESC, seq DESC LIMIT 1",
        [task, first_seq, execution_id, step, step]).fetchall() if task else []
    if not prev:
        off = f" ({_off(con, fingerprint)})" if key is None else ""
        return StepWhy(**base, verdict="first-run", reason=f"first run of this task in this ledger{off}")
    p_exec, p_step, p_fp, p_key, p_at, p_attempt = prev[0]
    previous = f"{p_exec}:{p_step}"
    base.update(previous=previous, previous_at=p_at)
    idents = _identities(con, [fingerprint, p_fp])
    changes = []
    if fingerprint != p_fp:
        if fingerprint in idents and p_fp in idents:
            changes = identity_changes(idents[p_fp], idents[fingerprint])
            changes = _with_diffs(changes, store, [_code_digest(con, p_exec), _code_digest(con, execution_id)],
                                  task, [p_exec[:10], execution_id[:10]])
        else:
            changes = [KeyChange("identity", "task identity", p_fp, fingerprint,
                                 note="the ledger holds no key parts for one of the two runs")]
    before, after = _inputs(con, p_exec, p_step, p_attempt), _inputs(con, execution_id, step, attempt)
    inputs = input_changes(before, after, {})
    if inputs:
        values = _plain_values(con, [c.before for c in inputs] + [c.after for c in inputs])
        changes += input_changes(before, after, values)
    changes = tuple(changes)
    if key is None:
        detail = f"; since {previous}: {summary(changes)}" if changes else ""
        return StepWhy(**base, verdict="cache-off", reason=f"{_off(con, fingerprint)}{detail}", changes=changes)
    if forced:
        return StepWhy(**base, verdict="forced", reason=f"re-ran: {_FORCED.get(forced, forced)}"
                       + (f"; since {previous}: {summary(changes)}" if changes else ""), changes=changes)
    if changes:
        verdict = "unknown" if changes[0].part == "identity" else "changed"
        return StepWhy(**base, verdict=verdict, reason=f"re-ran: {summary(changes)} (since {previous})",
                       changes=changes)
    if p_key == key:
        return StepWhy(**base, verdict="same-key",
                       reason=f"re-ran with the same key as {previous}, which was not a successful run to reuse")
    return StepWhy(**base, verdict="unknown", reason=f"re-ran: its key differs from {previous}'s in a part "
                                                     "the ledger does not show")


def _off(con, fingerprint: str | None) -> str:
    """Why a step had no cache key: the task is not cached, or it read a value with no canonical encoding."""
    parts = _identities(con, [fingerprint]).get(fingerprint) if fingerprint else None
    unencodable = (parts or {}).get("unencodable")
    if unencodable:
        return (f"not cached: it reads {', '.join(unencodable)}, which has no canonical value "
                "(set cache_version= to cache it anyway)")
    return "cache off for this task"


# -- every step of an execution, for `lineage show` -------------------------------------------------

def reasons_of(ledger, detail) -> dict:
    """`reasons` on a Ledger: one read-only connection."""
    with ledger.reader() as con:
        return reasons(con, detail)


def reasons(con, detail) -> dict:
    """{step: one line} for the steps of `detail` (an ExecutionDetail) that ran or were skipped by
    the cache: "cache off", "first run of this task", "FACTOR: 2 -> 5", "input data changed"...

    Identities are compared once per pair of fingerprints; the earlier runs are found with one
    query, and their inputs read per earlier execution, so a 1,000-step execution costs a few queries.
    """
    eid = detail.summary.id
    parents = {s.step.split("[", 1)[0] for s in detail.steps if "[" in s.step}
    ran = [s for s in detail.steps if s.task and not s.cache_hit and s.status not in (Status.SKIPPED, Status.RUNNING)
           and s.step not in parents]
    if not ran:
        return {}
    start = con.execute("SELECT min(seq) FROM execution_log WHERE execution_id = ?", [eid]).fetchall()[0][0]
    tasks = sorted({s.task for s in ran})
    rows = con.execute(
        "SELECT task, step, execution_id, task_fingerprint, cache_key, attempt, seq FROM step_log "
        f"WHERE task IN (SELECT unnest(?)) AND seq < ? AND state IN {_RAN} "
        "QUALIFY row_number() OVER (PARTITION BY task, step ORDER BY seq DESC) = 1",
        [tasks, start]).fetchall()
    by_step = {(r[0], r[1]): r for r in rows}
    latest_of_task: dict = {}
    for r in rows:
        if r[0] not in latest_of_task or r[6] > latest_of_task[r[0]][6]:
            latest_of_task[r[0]] = r
    prev = {s.step: by_step.get((s.task, s.step)) or latest_of_task.get(s.task) for s in ran}
    idents = _identities(con, [s.task_fingerprint for s in ran] + [p[3] for p in prev.values() if p])
    pair_text: dict = {}
    need_inputs = []
    out = {}
    for s in ran:
        p = prev[s.step]
        if p is None:
            out[s.step] = "first run of this task" + (" (cache off)" if s.cache_key is None else "")
            continue
        if s.task_fingerprint != p[3]:
            pair = (p[3], s.task_fingerprint)
            if pair not in pair_text:
                a, b = idents.get(p[3]), idents.get(s.task_fingerprint)
                pair_text[pair] = summary(identity_changes(a, b)) if a is not None and b is not None \
                    else "task identity changed"
            text = pair_text[pair]
            out[s.step] = ("cache off; " if s.cache_key is None else "re-ran: ") + text
        elif s.cache_key is None:
            out[s.step] = "cache off"
        elif s.forced:
            out[s.step] = f"re-ran: {_FORCED.get(s.forced, s.forced)}"
        elif s.cache_key == p[4]:
            out[s.step] = "re-ran: same key as an earlier run"
        else:
            need_inputs.append(s)
    if need_inputs:
        wanted = defaultdict(set)
        for s in need_inputs:
            p = prev[s.step]
            wanted[p[2]].add((p[1], p[5]))
        earlier: dict = defaultdict(list)
        ranges = ExecutionRanges(con).get(list(wanted))
        for e, keys in wanted.items():
            lo, hi = ranges.get(e, (0, 2**62))
            steps = sorted({k[0] for k in keys})
            for step, attempt, name, digest in con.execute(
                    "SELECT step, attempt, name, digest FROM edges WHERE seq BETWEEN ? AND ? AND execution_id = ? "
                    "AND direction = 'consumed' AND step IN (SELECT unnest(?))", [lo, hi, e, steps]).fetchall():
                if (step, attempt) in keys:
                    earlier[(e, step, attempt)].append((name, digest))
        changes_of = {}
        for s in need_inputs:
            p = prev[s.step]
            now = _key_inputs((b.name, b.artifact.digest) for b in s.inputs)
            changes_of[s.step] = input_changes(_key_inputs(earlier.get((p[2], p[1], p[5]), ())), now, {})
        values = _plain_values(con, [d for cs in changes_of.values() for c in cs for d in (c.before, c.after)])
        for s in need_inputs:
            cs = [KeyChange(c.part, c.name, c.before, c.after, values.get(c.before), values.get(c.after))
                  for c in changes_of[s.step]]
            if not cs:
                out[s.step] = "re-ran: key differs from the earlier run's"
            elif all(c.before_value is not None and c.after_value is not None for c in cs):
                out[s.step] = "re-ran: " + summary(cs)
            else:
                out[s.step] = "re-ran: input " + ", ".join(c.name for c in cs) + " changed"
    return out
