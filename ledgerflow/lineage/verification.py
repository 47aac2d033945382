"""`verify`: the hash chain re-walked, the file's views compared with the code's, every store
object re-hashed, and every object the ledger needs looked for, so tampering and loss are
named whichever side they happened on."""

from __future__ import annotations

import contextlib
import os

from ledgerflow.errors import LedgerError
from ledgerflow.lineage import chain
from ledgerflow.lineage.schema import CHAINED_TABLES, ensure_schema, missing_tables
from ledgerflow.lineage.values import ObjectProblem, SchemaProblem, VerifyReport
from ledgerflow.types.kinds import Storage, storage_of


def verify(ledger, store: bool = True) -> VerifyReport:
    """Re-walk `ledger`'s hash chain and, with `store`, re-hash its store; a VerifyReport says what's wrong."""
    schema_problems = []
    if ledger.server is not None:
        walked = _check_server(ledger)
    elif ledger.has_file():  # (moves what is journaled first)
        with ledger.reader(fresh=False) as con:
            walked = chain.check(con)
            schema_problems = check_views(con)
    else:
        walked = chain.ChainCheck(0, 0, chain.GENESIS.hex(), ())
    checked, problems, store_url, note = 0, [], None, None
    if store:
        checked, problems, store_url, note = _verify_store(ledger.home.store_url)
        if ledger.path.exists():  # and the other way round: what the ledger records but the store lost
            missing, moved_note = _missing_objects(ledger, ledger.home.store_url)
            problems = [*problems, *missing]
            note = "; ".join(n for n in (note, moved_note) if n) or None
    return VerifyReport(
        ok=not walked.problems and not problems and not schema_problems,
        schema_problems=tuple(schema_problems),
        rows=walked.rows,
        head_seq=walked.head_seq,
        head_hash=walked.head_hash,
        problems=walked.problems,
        objects_checked=checked,
        object_problems=tuple(problems),
        store=store_url,
        store_note=note,
    )


def _check_server(ledger) -> chain.ChainCheck:
    """A team ledger's chain, fetched whole from its server and walked, and compared with this
    home's copy: a row the server holds otherwise than when this home copied it was rewritten
    there, even if whoever did it re-chained everything after it."""
    import tempfile
    from pathlib import Path

    from ledgerflow.lineage import server as servers
    from ledgerflow.lineage.connection import open_ledger

    ledger.flush()
    with contextlib.suppress(LedgerError):  # deliver what is journaled; a copy that disagrees is reported below
        ledger.sync()
    with tempfile.TemporaryDirectory(prefix="lf-verify-") as folder:
        with open_ledger(Path(folder) / "ledger.duckdb") as con, ledger.server.connect() as pg:
            con.execute("BEGIN").fetchall()
            ensure_schema(con)
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                servers.copy_all(pg, con)
            finally:
                pg.execute("ROLLBACK")
            con.execute("COMMIT").fetchall()
            walked = chain.check(con)
            server_rows = _hashes(con)
    if not ledger.path.exists():
        return walked
    with open_ledger(ledger.path, read_only=True) as con:
        copied = _hashes(con)
    rewritten = [chain.ChainProblem(table, seq, "changed", "differs from this home's copy of it: the row was rewritten "
                              "on the server after this home copied it")
                 for seq, (table, h) in sorted(copied.items()) if seq in server_rows and server_rows[seq][1] != h]
    lost = [chain.ChainProblem(table, seq, "removed", "this home's copy holds it; the server no longer does")
            for seq, (table, _) in sorted(copied.items()) if seq not in server_rows]
    if rewritten or lost:
        import attrs

        walked = attrs.evolve(walked, problems=tuple(sorted(walked.problems + tuple(rewritten + lost),
                                                            key=lambda p: (p.seq is None, p.seq or 0))))
    return walked


def _hashes(con) -> dict:
    out = {}
    absent = missing_tables(con)
    for t in CHAINED_TABLES:
        if t.name not in absent:
            for seq, h in con.execute(f"SELECT seq, row_hash FROM {t.name}").fetchall():
                out[seq] = (t.name, bytes(h))
    return out


def _normal(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip()


_expected: dict = {}


def expected_views() -> dict:
    """View name -> its definition as DuckDB renders it, for this code's schema.

    Made by running the code's DDL in an empty in-memory database, so both sides are
    rendered by the same DuckDB (`duckdb_views().sql` is regenerated from the parsed view,
    whatever the original text's spacing or comments).
    """
    if not _expected:
        import duckdb

        from ledgerflow.lineage.schema import ALL_VIEWS, CHAINED_TABLES, table_ddl

        con = duckdb.connect()
        try:
            for t in CHAINED_TABLES:
                con.execute(table_ddl(t)).fetchall()
            for ddl in ALL_VIEWS:
                con.execute(ddl).fetchall()
            rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        finally:
            con.close()
        _expected.update({name: _normal(sql) for name, sql in rows})
    return dict(_expected)


def check_views(con) -> list:
    """SchemaProblems for the views and macros of the ledger file at `con` that are not this code's.

    Readers use the code's views, not the file's (`schema.use_code_views`), so a redefined
    view cannot fool `list` or `show`; this names the tampering all the same. A macro in the
    file is always a problem: the engine creates none, and one named like a built-in function
    (`epoch`, `coalesce`) would shadow it in every query, the code's views included. A file
    at a newer schema than this code is not compared (its views are that version's).
    """
    from ledgerflow.lineage.schema import SCHEMA_VERSION, schema_version

    version = schema_version(con)
    if version is not None and version > SCHEMA_VERSION:
        return []
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    found = {name: _normal(sql) for name, sql in con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary AND database_name = ?",
        [db]).fetchall()}
    problems = []
    for name, sql in expected_views().items():
        if name not in found:
            problems.append(SchemaProblem("view", name, "removed", "the file has no such view"))
        elif found[name] != sql:
            problems.append(SchemaProblem(
                "view", name, "changed",
                f"its definition in the file differs from this Ledgerflow's (redefined behind the engine's "
                f"back; readers use the code's): {found[name][:300]}"))
    for name in sorted(found.keys() - expected_views().keys()):
        problems.append(SchemaProblem("view", name, "unexpected", f"the engine creates no such view: {found[name][:300]}"))
    for name, kind in con.execute(
        "SELECT DISTINCT function_name, function_type FROM duckdb_functions() "
        "WHERE NOT internal AND database_name = ? ORDER BY 1", [db]).fetchall():
        problems.append(SchemaProblem("macro", name, "unexpected",
                                      f"a {kind} the engine never creates (it would shadow a built-in function "
                                      "of that name in every query)"))
    return problems


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
    # Steps read a Directory from its shared checkout, not the objects: that is checked too.
    problems += [ObjectProblem(digest, text) for digest, text in store.checkout_problems()]
    return checked, problems, url, None


def _missing_objects(ledger, url: str) -> tuple:
    """ObjectProblems for artifacts the ledger records in the store at `url` that it no longer
    has, and a note (or None) on what was matched across a move or left unchecked.

    Re-hashing what is in the store cannot see an object deleted behind the engine's back
    (found by tests/system/test_faults.py); this looks the other way. Files listed by a directory's
    or model's manifest are checked too. Not missing: objects `gc` removed (gc_log says
    so, and `collected()` tells when), and artifacts recorded in another store (the
    home's LEDGERFLOW_STORE pointed elsewhere then: counted in the note).

    An artifact's `uri` is the store's absolute path when it was recorded, so a home moved
    (or copied) to another path records its objects under the old one. Those are checked in
    the current store, by digest: a recorded store path that ends as the current store does
    under its home (`.../store`), whose home held a ledger or no longer exists, was this
    home's store before the move.
    """
    from ledgerflow.errors import LedgerflowError
    from ledgerflow.store import Store

    store = Store.open(url)
    with ledger.reader() as con:
        if "artifacts" in missing_tables(con):
            return [], None
        recorded = con.execute(
            "SELECT uri, count(*) FROM artifacts WHERE kind <> 'value' AND uri IS NOT NULL GROUP BY uri").fetchall()
        moved = [uri for uri, _ in recorded if uri != store.url and _was_this_homes_store(uri, ledger.home, store)]
        uris = [store.url, *moved]
        rows = con.execute(
            "SELECT digest, kind, first_execution_id, first_step FROM artifacts "
            "WHERE kind <> 'value' AND list_contains(?, uri) ORDER BY seq",
            [uris],
        ).fetchall()
        removed = set()
        if "gc_log" not in missing_tables(con):
            removed = {r[0] for r in con.execute("SELECT DISTINCT digest FROM gc_log").fetchall()}
    notes = []
    if moved:
        n = sum(c for uri, c in recorded if uri in moved)
        notes.append(f"{n} object(s) recorded under {', '.join(moved)} (this home's store before it was moved) "
                     f"checked in {store.url}")
    elsewhere = {uri: c for uri, c in recorded if uri not in uris}
    if elsewhere:
        notes.append(f"{sum(elsewhere.values())} object(s) recorded in other stores not checked "
                     f"({', '.join(sorted(elsewhere)[:3])}{', ...' if len(elsewhere) > 3 else ''})")
    problems, seen = [], set(removed)
    for digest, kind, execution_id, step in rows:
        recorded_at = f"first recorded at {execution_id}:{step}"
        wanted = [(digest, recorded_at)]
        if storage_of(kind) is Storage.MANIFEST and store.has(digest):
            try:
                entries = store.get_manifest(digest).entries
            except LedgerflowError:  # ManifestError, DigestError, IntegrityError, ...
                entries = ()  # a damaged manifest: the re-hash of the store names it
            wanted += [(e.digest, f"file {e.path!r} of {digest}, {recorded_at}") for e in entries]
        for d, why in wanted:
            if d not in seen:
                seen.add(d)
                if not store.has(d):
                    problems.append(ObjectProblem(d, f"missing: no object {d} in the store at {store.url}, "
                                                     f"but the ledger needs it ({why})"))
    return problems, "; ".join(notes) or None


def _was_this_homes_store(uri: str, home, store) -> bool:
    """Whether `uri`, a store path recorded in the ledger, was this home's store at an old path."""
    if not store.is_local or "://" in uri or not os.path.isabs(uri):
        return False
    try:
        tail = os.path.relpath(store.url, home.path)
    except ValueError:
        return False
    if tail.startswith(".."):  # the store is not inside the home (LEDGERFLOW_STORE): no move to follow
        return False
    tail_parts = tail.split(os.sep)
    parts = os.path.normpath(uri).split(os.sep)
    if len(parts) <= len(tail_parts) or parts[-len(tail_parts):] != tail_parts:
        return False
    old_home = os.sep.join(parts[:-len(tail_parts)]) or os.sep
    return not os.path.exists(uri) or os.path.exists(os.path.join(old_home, home.ledger_path.name))
