"""The team ledger: the same hash-chained tables on a PostgreSQL server, and a local copy to read.

One person's ledger is a DuckDB file; a team's is a PostgreSQL database that every teammate,
CI runner and cluster driver records into (`LEDGERFLOW_LEDGER=postgresql://...`). The server
is the record. Each home that uses it keeps a copy of the chain in a DuckDB file of its own
(`<home>/ledgers/<server>/ledger.duckdb`), the way a git clone keeps the history:

- **Appending** (`deliver`): a process journals its events locally exactly as for the file
  (so a run never waits on the server, and nothing is lost while it is down), and delivers
  them in one server transaction that first takes an advisory lock, the one lock on the
  chain's head. Holding it, the copy is brought up to the server's head, the journaled events
  become chained rows in the copy (the same writer as the file's), those rows are sent to
  the server with the journals' new positions, and the server commits before the copy does.
  A delivery interrupted anywhere leaves the server at its last commit and the journals
  unmoved: the next delivery sends them again, exactly once (`journal_moves` on the server).
- **Reading** (`pull`): before every query the copy fetches the rows the server has beyond
  its head, checks that they continue its chain (each row's hash recomputed from its content
  and the row before it), and appends them. So every query, on every host, reads the
  server's current record through the same code and gives the same answers as the file; a
  server whose history was rewritten under a copy is refused, naming the first row that
  differs. `lineage verify` fetches the whole chain again and checks it end to end.
- **Roles** (`init`): a writer that may only INSERT and SELECT, a reader that may only
  SELECT, and triggers that refuse UPDATE, DELETE and TRUNCATE to everyone. `query sql` runs
  on the server as the reader, in a read-only transaction with a statement timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from pathlib import Path
from typing import Any, Iterator

import attrs

from ledgerflow.errors import LedgerError, LedgerServerError, QueryError
from ledgerflow.lineage import chain, append
from ledgerflow.lineage.schema import (
    CHAINED_TABLES,
    SCHEMA_VERSION,
    ChainedTable,
    newer_schema,
)

SCHEMES = ("postgresql://", "postgres://")
SCHEMA = "ledgerflow"  # the PostgreSQL schema holding the ledger's tables
WRITER_ROLE = "ledgerflow_writer"
READER_ROLE = "ledgerflow_reader"
CONNECT_TIMEOUT_S = 5  # an unreachable server fails a run in seconds, not at the TCP default
# The one lock on the chain's head, for `pg_advisory_xact_lock`: any constant shared by every
# writer of this database ("lflw" as an integer).
HEAD_LOCK = 0x6C666C77

_PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
             "TIMESTAMP": "timestamp"}


def is_server_url(text: Any) -> bool:
    """Does `text` name a PostgreSQL ledger?

    >>> is_server_url("postgresql://writer@db.example/team"), is_server_url("/tmp/home")
    (True, False)
    """
    return isinstance(text, str) and text.startswith(SCHEMES)


@attrs.frozen
class Server:
    """A PostgreSQL database holding a ledger, named by its connection URL.

    >>> Server("postgresql://writer:s3cret@db.example:5432/team").display
    'postgresql://writer@db.example:5432/team'
    """

    url: str

    @property
    def display(self) -> str:
        """The URL without its password: what messages and the record show."""
        parts = self._parts()
        user = f"{parts['user']}@" if parts.get("user") else ""
        port = f":{parts['port']}" if parts.get("port") else ""
        return f"postgresql://{user}{parts.get('host', 'localhost')}{port}/{parts.get('dbname', '')}"

    @property
    def user(self) -> str:
        return self._parts().get("user") or ""

    def _parts(self) -> dict:
        from psycopg.conninfo import conninfo_to_dict

        try:
            return conninfo_to_dict(self.url)
        except Exception as exc:
            raise LedgerServerError(f"the ledger URL is not a valid PostgreSQL URL ({exc}); expected "
                                    "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None

    def copy_path(self, home: Path) -> Path:
        """Where a home keeps its copy of this server's chain: one folder per server and
        database (not per user: a reader's and a writer's URL share the copy)."""
        parts = self._parts()
        where = f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
        name = hashlib.blake2b(where.encode(), digest_size=8).hexdigest()
        return Path(home) / "ledgers" / name / "ledger.duckdb"

    @contextlib.contextmanager
    def connect(self, *, check_schema: bool = True) -> Iterator[Any]:
        """An autocommit connection with the ledger's schema first on its search path; every way
        of failing to get one is a LedgerServerError of one line that says what to do."""
        try:
            import psycopg
        except ImportError:
            raise LedgerServerError("a ledger on PostgreSQL needs psycopg: pip install 'ledgerflow[postgres]'") from None
        try:
            con = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                  application_name="ledgerflow")
        except psycopg.OperationalError as exc:
            raise LedgerServerError(_connect_failure(self.display, exc)) from None
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET search_path = {SCHEMA}, pg_catalog")
            if check_schema:
                _check_schema(con, self.display)
            yield con
        finally:
            con.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect_failure(where: str, exc: Exception) -> str:
    text = str(exc)
    reason = _first_line(exc).removeprefix("connection failed: ")
    if "password authentication failed" in text or "no password supplied" in text:
        return (f"the ledger server {where} refused these credentials ({reason}); check the user and "
                "password in LEDGERFLOW_LEDGER (or --ledger)")
    if "does not exist" in text:
        return f"the ledger server {where} has no such database ({reason}); check the database name in the URL"
    for line in text.splitlines():  # psycopg lists one attempt per address: the last says why
        if "Connection refused" in line or "timeout expired" in line or "could not" in line:
            reason = line.strip().removeprefix("connection failed: ")
    return (f"cannot reach the ledger server {where}: {reason}. Is the server running and the address "
            "right? (LEDGERFLOW_LEDGER or --ledger)")


def _check_schema(con, where: str) -> None:
    row = con.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.meta"]).fetchone()
    if not row[0]:
        raise LedgerServerError(
            f"the database {where} holds no Ledgerflow ledger (no schema {SCHEMA!r} with its tables); "
            f"create it once with `lineage ledger init postgresql://ADMIN@HOST/DATABASE`")
    version = con.execute(
        "SELECT max(CAST(value AS integer)) FROM meta WHERE key = 'schema_version'").fetchone()[0]
    if version is not None and version > SCHEMA_VERSION:
        raise newer_schema(version)
    if version is None or version < SCHEMA_VERSION:
        raise LedgerServerError(
            f"the ledger on {where} is at schema version {version}, this Ledgerflow writes {SCHEMA_VERSION}; "
            "bring it up to date with `lineage ledger init` as its owner")


# -- creating the ledger on a server -----------------------------------------------------------

def _table_ddl(t: ChainedTable) -> str:
    cols = [f"{c.name} {_PG_TYPES[c.sql]}" for c in t.columns] + ["prev_hash bytea NOT NULL",
                                                                   "row_hash bytea NOT NULL"]
    return f"CREATE TABLE IF NOT EXISTS {t.name} ({', '.join(cols)})"


# The views of schema.VIEWS and VIEWS_V2 in PostgreSQL's dialect (no QUALIFY, epoch or list()),
# for `query sql` on the server; every other read goes through the local copy and DuckDB.
VIEWS = (
    """
    CREATE OR REPLACE VIEW executions AS
    WITH s AS (
        SELECT DISTINCT ON (execution_id) * FROM execution_log WHERE workflow IS NOT NULL
        ORDER BY execution_id, seq
    ), l AS (
        SELECT DISTINCT ON (execution_id) execution_id, state, changed_at, error, seq FROM execution_log
        ORDER BY execution_id, seq DESC
    )
    SELECT s.execution_id, s.workflow, l.state AS status, s.changed_at AS started_at,
           CASE WHEN l.state <> 'running' THEN l.changed_at END AS ended_at,
           CASE WHEN l.state <> 'running'
                THEN CAST(extract(epoch FROM l.changed_at - s.changed_at) AS double precision) END AS duration_s,
           s.params, s.executor, s.workflow_fingerprint, s.code_digest, s.environment,
           s.replay_of, s.host, s.pid, s.process_start, l.error, s.seq AS start_seq, l.seq AS last_seq
    FROM s JOIN l USING (execution_id)
    """,
    """
    CREATE OR REPLACE VIEW attempts AS
    SELECT DISTINCT ON (execution_id, step, attempt)
           execution_id, step, attempt, task, state AS status, started_at, ended_at,
           CAST(extract(epoch FROM ended_at - started_at) AS double precision) AS duration_s, cache_key,
           cached_from, node, error, traceback, resources, map_index, seq
    FROM step_log
    ORDER BY execution_id, step, attempt, seq DESC
    """,
    """
    CREATE OR REPLACE VIEW steps AS
    SELECT execution_id, step, task, task_fingerprint, status, attempts, started_at, ended_at,
           CAST(extract(epoch FROM ended_at - started_at) AS double precision) AS duration_s,
           cache_key, cache_hit, cached_from, node, error, traceback, resources, map_index, condition,
           blocked_by, forced, seq
    FROM (
        SELECT execution_id, step, task, task_fingerprint, state AS status,
               max(attempt) OVER w AS attempts, min(started_at) OVER w AS started_at, ended_at,
               cache_key, state = 'cached' OR cached_from IS NOT NULL AS cache_hit, cached_from,
               node, error, traceback, resources, map_index, condition, blocked_by, forced, seq,
               row_number() OVER (PARTITION BY execution_id, step ORDER BY seq DESC) AS newest
        FROM step_log
        WINDOW w AS (PARTITION BY execution_id, step)
    ) latest
    WHERE newest = 1
    """,
    """
    CREATE OR REPLACE VIEW params AS
    SELECT e.execution_id, e.name, e.digest, a.value, a.type, a.kind
    FROM edges e JOIN artifacts a USING (digest)
    WHERE e.step = '@params' AND e.direction = 'produced'
    """,
    """
    CREATE OR REPLACE VIEW aliases AS
    SELECT DISTINCT ON (name, alias) name, alias, version, previous_version, action, moved_at, who, why, seq
    FROM alias_log
    ORDER BY name, alias, seq DESC
    """,
    """
    CREATE OR REPLACE VIEW models AS
    SELECT v.name, v.version, v.digest, v.type, v.flavor, v.size, v.uri, v.execution_id, v.step,
           v.registered_at, v.who, v.why, v.metrics,
           coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), '{}') AS aliases, v.seq
    FROM model_versions v LEFT JOIN aliases a ON a.name = v.name AND a.version = v.version
    GROUP BY v.name, v.version, v.digest, v.type, v.flavor, v.size, v.uri, v.execution_id, v.step,
             v.registered_at, v.who, v.why, v.metrics, v.seq
    """,
    """
    CREATE OR REPLACE VIEW tags AS
    SELECT execution_id, tag, tagged_at, who, why, seq
    FROM (SELECT DISTINCT ON (execution_id, tag) * FROM tag_log ORDER BY execution_id, tag, seq DESC) newest
    WHERE action = 'add'
    """,
)

_REFUSE_CHANGE = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the Ledgerflow ledger is append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


@attrs.frozen
class Credentials:
    """The roles `init` made or updated, with URLs to hand to writers and readers."""

    writer_url: str
    reader_url: str


def init(admin_url: str, *, writer_password: str | None = None, reader_password: str | None = None,
         writer: str = WRITER_ROLE, reader: str = READER_ROLE) -> Credentials:
    """Create the ledger in the database of `admin_url` (its owner or a superuser), with its two
    roles; idempotent (an existing ledger keeps every row; a role's password changes only when
    given). Passwords not given for new roles are generated and returned in the URLs.

    It needs a running PostgreSQL server, so it is shown here rather than run (the team
    ledger's tests run it against a real one)::

        creds = init("postgresql://postgres:pw@127.0.0.1:5432/team")
        creds.writer_url   # 'postgresql://ledgerflow_writer:<generated>@127.0.0.1:5432/team'
        creds.reader_url   # 'postgresql://ledgerflow_reader:<generated>@127.0.0.1:5432/team'

    Writers then set LEDGERFLOW_LEDGER to the writer URL; readers use the reader URL.
    """
    from psycopg import sql

    server = Server(admin_url)
    passwords = {}
    with server.connect(check_schema=False) as con, con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", [HEAD_LOCK])
        version = None
        if con.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SCHEMA}.meta"]).fetchone()[0]:
            version = con.execute("SELECT max(CAST(value AS integer)) FROM meta "
                                  "WHERE key = 'schema_version'").fetchone()[0]
            if version is not None and version > SCHEMA_VERSION:
                raise newer_schema(version)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute("CREATE TABLE IF NOT EXISTS meta (key text, value text)")
        con.execute("CREATE TABLE IF NOT EXISTS journal_moves (journal text NOT NULL, upto bigint NOT NULL, "
                    "events bigint NOT NULL, moved_at timestamp NOT NULL)")
        con.execute("CREATE INDEX IF NOT EXISTS journal_moves_journal ON journal_moves (journal)")
        for t in CHAINED_TABLES:
            con.execute(_table_ddl(t))
            # The head and every copy's pull ask by seq: without an index, each is a scan of the table.
            con.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {t.name}_seq ON {t.name} (seq)")
        con.execute(_REFUSE_CHANGE)
        for name in ("meta", "journal_moves") + tuple(t.name for t in CHAINED_TABLES):
            for trigger, when in ((f"{name}_append_only", "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW"),
                                  (f"{name}_no_truncate", "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT")):
                con.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {name}")
                con.execute(f"CREATE TRIGGER {trigger} {when.format(t=name)} EXECUTE FUNCTION {SCHEMA}.refuse_change()")
        for ddl in VIEWS:
            con.execute(ddl)
        if version != SCHEMA_VERSION:
            con.execute("INSERT INTO meta VALUES ('schema_version', %s)", [str(SCHEMA_VERSION)])
        for role, password in ((reader, reader_password), (writer, writer_password)):
            exists = con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if not exists:
                password = password or secrets.token_urlsafe(18)
                con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                              sql.Literal(password)))
            elif password:
                con.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
            passwords[role] = password
        r, w = sql.Identifier(reader), sql.Identifier(writer)
        con.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(sql.Identifier(SCHEMA), r, w))
        con.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), r))
        con.execute(sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), w))
        con.execute(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}, {}").format(
            sql.Identifier(SCHEMA), r, w))
        # A writer may read as the reader: `query sql` runs with the reader's rights whoever asks.
        con.execute(sql.SQL("GRANT {} TO {}").format(r, w))
    return Credentials(_with_user(admin_url, writer, passwords[writer]), _with_user(admin_url, reader, passwords[reader]))


def _with_user(url: str, user: str, password: str | None) -> str:
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    host, port, db = parts.pop("host", "localhost"), parts.pop("port", None), parts.pop("dbname", "")
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    rest = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in parts.items() if k not in ("user", "password"))
    return f"postgresql://{auth}@{host}{':' + str(port) if port else ''}/{db}" + (f"?{rest}" if rest else "")


# -- the head, pulling into the copy, pushing from it ----------------------------------------------

def head(pg) -> tuple[int, bytes]:
    """(seq, row_hash) of the server's newest row, or (0, genesis)."""
    parts = " UNION ALL ".join(f"(SELECT seq, row_hash FROM {t.name} ORDER BY seq DESC LIMIT 1)"
                               for t in CHAINED_TABLES)
    row = pg.execute(f"SELECT seq, row_hash FROM ({parts}) AS heads ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, chain.GENESIS) if row is None else (row[0], bytes(row[1]))


def _rows_after(pg, t: ChainedTable, after: int):
    """The server's rows of table t beyond seq `after`, as Arrow with the ledger's types."""
    import pyarrow as pa

    cols = t.column_names + ("prev_hash", "row_hash")
    cur = pg.execute(f"SELECT {', '.join(cols)} FROM {t.name} WHERE seq > %s ORDER BY seq", [after])
    rows = cur.fetchall()
    schema = t.arrow_schema.append(pa.field("prev_hash", pa.binary())).append(pa.field("row_hash", pa.binary()))
    columns = list(zip(*rows)) if rows else [[] for _ in cols]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(columns, schema)], schema=schema)


def pull(pg, con, copy_head: tuple[int, bytes], where: str) -> tuple[int, bytes]:
    """Append to the copy (`con`, in a transaction of the caller) the server's rows beyond
    `copy_head`, after checking that they continue the copy's chain. Returns how many, and
    the hash of the new head."""
    seq, last_hash = copy_head
    fetched = [(t, _rows_after(pg, t, seq)) for t in CHAINED_TABLES]
    fetched = [(t, data) for t, data in fetched if data.num_rows]
    if not fetched:
        server_seq, _ = head(pg)
        if server_seq < seq:
            raise LedgerError(f"the ledger server {where} holds {server_seq} rows but this home's copy of it holds "
                              f"{seq}: the server lost rows or is another ledger. Run `lineage verify`; if the "
                              f"server is right, remove this home's copy (under <home>/ledgers/) to fetch it again")
        return 0, last_hash
    n = sum(data.num_rows for _, data in fetched)
    by_seq: dict = {}
    for t, data in fetched:
        encodings = chain.encode_rows(t, data.select(list(t.column_names)))
        for s, enc, prev, stored in zip(data.column("seq").to_pylist(), encodings,
                                        data.column("prev_hash").to_pylist(), data.column("row_hash").to_pylist()):
            by_seq[s] = (t.name, enc, prev, stored)
    expected = list(range(seq + 1, seq + n + 1))
    if sorted(by_seq) != expected:
        missing = sorted(set(expected) - set(by_seq))[:1] or sorted(by_seq)[:1]
        raise LedgerError(f"the ledger server {where} has a gap in its chain after seq {seq} (at seq {missing[0]}): "
                          "not copied; run `lineage verify`")
    prev = last_hash
    for s in expected:
        table, enc, stored_prev, stored = by_seq[s]
        recomputed = chain.chain(prev, [enc])[0]
        if stored_prev != prev or stored != recomputed:
            raise LedgerError(
                f"the ledger server {where} does not continue this home's copy of its chain: row {s} ({table}) "
                + ("links to another row before it" if stored_prev != prev else "does not match its hash")
                + "; its history was rewritten, or this is another ledger. Not copied; run `lineage verify`")
        prev = stored
    for t, data in fetched:
        append.insert_rows(con, t, data)
    return n, prev


def push(pg, con, after: int) -> int:
    """Send the copy's rows beyond seq `after` (appended by this transaction) to the server."""
    sent = 0
    for t in CHAINED_TABLES:
        cols = t.column_names + ("prev_hash", "row_hash")
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {t.name} WHERE seq > ? ORDER BY seq", [after]).fetchall()
        if not rows:
            continue
        _refuse_nul(t, rows)
        with pg.cursor().copy(f"COPY {t.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        sent += len(rows)
    return sent


def _refuse_nul(t: ChainedTable, rows: list) -> None:
    # PostgreSQL's text cannot hold NUL; DuckDB's can. A row is hashed before it is sent, so it
    # cannot be changed here: say which, rather than fail deep inside COPY.
    for row in rows:
        for name, value in zip(t.column_names, row):
            if isinstance(value, str) and "\x00" in value:
                raise LedgerServerError(f"row {row[0]} of {t.name} has a NUL character in {name!r}, which "
                                        "PostgreSQL cannot store; it stays in the journal")


def copy_all(pg, con) -> None:
    """Every row the server holds, as stored (unchecked: for `verify` to walk), into `con`."""
    for t in CHAINED_TABLES:
        data = _rows_after(pg, t, -(2**62))
        if data.num_rows:
            append.insert_rows(con, t, data)


def positions(pg, names: list) -> dict:
    """How far each journal (by name) has been delivered, as the server records it."""
    if not names:
        return {}
    return dict(pg.execute("SELECT journal, max(upto) FROM journal_moves WHERE journal = ANY(%s) GROUP BY journal",
                           [names]).fetchall())


def record_positions(pg, moved: list, at) -> None:
    with pg.cursor().copy("COPY journal_moves (journal, upto, events, moved_at) FROM STDIN") as copy:
        for name, end, count in moved:
            copy.write_row((name, end, count, at))


def can_write(pg) -> bool:
    return bool(pg.execute("SELECT has_table_privilege(current_user, 'step_log', 'INSERT')").fetchone()[0])


# -- read-only SQL on the server ----------------------------------------------------------------

def query(server: Server, text: str, params: list | None = None, *, timeout_s: float, reader: str = READER_ROLE):
    """Run one statement of the user's on the server as the reader role, in a read-only
    transaction with a statement timeout (0: none): (column names, rows). Parameters are
    written `?`, as for the file."""
    import psycopg
    from psycopg import sql

    with server.connect() as con:
        try:
            # Begun and always rolled back here: nothing the statement did can be kept.
            con.execute("BEGIN READ ONLY")
            try:
                con.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(reader)))
                con.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000) if timeout_s else 0}")
                # Prepared, always: a prepared statement is one statement. Sent as a simple query,
                # `SELECT 1; COMMIT; INSERT ...` would end the read-only transaction and the role
                # with it, and insert as whoever connected. Without parameters no placeholder is parsed.
                cur = con.cursor()
                if params:
                    cur.execute(text.replace("%", "%%").replace("?", "%s"), params, prepare=True)
                else:
                    cur.execute(text, prepare=True)
                names = [d.name for d in cur.description or ()]
                return names, (cur.fetchall() if cur.description else [])
            finally:
                if not con.closed:
                    con.execute("ROLLBACK")
        except psycopg.errors.QueryCanceled:
            raise LedgerError(f"the query ran longer than its timeout of {timeout_s:g} s and was stopped on the "
                              "server; narrow it, or give --timeout") from None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise QueryError(f"query sql is read-only: the ledger server refused it ({_first_line(exc)})") from None
        except psycopg.Error as exc:
            if "multiple commands" in str(exc):
                raise QueryError("query sql is read-only and runs one statement at a time (a second one could "
                                  "end the read-only transaction); send them one by one") from None
            raise QueryError(f"SQL error: {_first_line(exc)} (on the ledger server, in PostgreSQL's dialect)") from None
