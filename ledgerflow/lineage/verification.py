"""`verify`: the hash chain re-walked, every store object re-hashed, and every object the
ledger needs looked for, so tampering and loss are named whichever side they happened on."""

from __future__ import annotations

import os

from ledgerflow.lineage import chain
from ledgerflow.lineage.schema import missing_tables
from ledgerflow.lineage.values import ObjectProblem, VerifyReport


def verify(ledger, store: bool = True) -> VerifyReport:
    """Re-walk `ledger`'s hash chain and, with `store`, re-hash its store; a VerifyReport says what's wrong."""
    if ledger.path.exists():
        with ledger._reader() as con:
            walked = chain.walk(con)
    else:
        walked = chain.ChainWalk(0, 0, chain.GENESIS.hex(), ())
    checked, problems, store_url, note = 0, [], None, None
    if store:
        checked, problems, store_url, note = _verify_store(ledger.home.store_url)
        if ledger.path.exists():  # and the other way round: what the ledger records but the store lost
            problems = [*problems, *_missing_objects(ledger, ledger.home.store_url)]
    return VerifyReport(
        ok=not walked.problems and not problems,
        rows=walked.rows,
        head_seq=walked.head_seq,
        head_hash=walked.head_hash,
        problems=walked.problems,
        objects_checked=checked,
        object_problems=tuple(problems),
        store=store_url,
        store_note=note,
    )


def _verify_store(url: str) -> tuple:
    from ledgerflow.errors import LedgerflowError

    try:
        from ledgerflow.store import Store
    except ImportError as exc:  # the store is optional to the ledger
        return 0, [], None, f"store not checked: {exc}"
    if "://" not in url and not os.path.isdir(url):
        return 0, [], None, f"no store at {url}: nothing to check"
    store = Store.open(url)
    checked, problems = 0, []
    for digest in store.iter_digests():
        checked += 1
        try:
            store.verify(digest)
        except LedgerflowError as exc:
            problems.append(ObjectProblem(digest, str(exc)))
    return checked, problems, url, None


def _missing_objects(ledger, url: str) -> list:
    """ObjectProblems for artifacts the ledger records in the store at `url` that it no longer has.

    Re-hashing what is in the store cannot see an object deleted behind the engine's back
    (found by tests/test_faults.py); this looks the other way. Files listed by a directory's
    or model's manifest are checked too. Not missing: objects `gc` removed (gc_log says
    so, and `collected()` tells when), and artifacts recorded in another store (the
    home's LEDGERFLOW_STORE pointed elsewhere then).
    """
    from ledgerflow.errors import LedgerflowError
    from ledgerflow.store import Store

    store = Store.open(url)
    with ledger._reader() as con:
        if "artifacts" in missing_tables(con):
            return []
        rows = con.execute(
            "SELECT digest, kind, first_execution_id, first_step FROM artifacts "
            "WHERE kind <> 'value' AND uri = ? ORDER BY seq",
            [store.url],
        ).fetchall()
        removed = set()
        if "gc_log" not in missing_tables(con):
            removed = {r[0] for r in con.execute("SELECT DISTINCT digest FROM gc_log").fetchall()}
    problems, seen = [], set(removed)
    for digest, kind, execution_id, step in rows:
        recorded = f"first recorded at {execution_id}:{step}"
        wanted = [(digest, recorded)]
        if kind in ("directory", "model") and store.has(digest):
            try:
                entries = store.get_manifest(digest).entries
            except (LedgerflowError, ValueError):
                entries = ()  # a damaged manifest: the re-hash of the store names it
            wanted += [(e.digest, f"file {e.path!r} of {digest}, {recorded}") for e in entries]
        for d, why in wanted:
            if d not in seen:
                seen.add(d)
                if not store.has(d):
                    problems.append(ObjectProblem(d, f"missing: no object {d} in the store at {store.url}, "
                                                     f"but the ledger needs it ({why})"))
    return problems
