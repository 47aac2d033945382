"""The ledger's tables, views and schema version.

Every table that records history is insert-only and hash-chained (see `chain.py`): each
row carries `seq` (one gap-free sequence across all chained tables), `prev_hash` and
`row_hash`. A state change is a new row; the views at the bottom give current state.
docs/ledger.md documents every column, so users can write their own SQL.

The column lists here are the single source of truth: the writer builds Arrow tables
in this order, and the chain encodes columns in this order, so verification reads them
back the same way.
"""

from __future__ import annotations

import attrs
import functools

from blake3 import blake3 as _blake3

from ledgerflow.errors import LedgerError

SCHEMA_VERSION = 6

PARAMS_STEP = "@params"  # pseudo-step that "produces" an execution's parameters
OUTPUTS_STEP = "@outputs"  # pseudo-step that "consumes" an execution's outputs


@attrs.frozen
class Column:
    name: str
    sql: str  # DuckDB type
    # A column added to a table after its rows began (schema 4 on): the chain encodes it only
    # when it is not NULL, so a row written before it existed still hashes as it did.
    optional: bool = False

    @property
    def arrow(self) -> pa.DataType:
        return _arrow_type(self.sql)


@attrs.frozen
class ChainedTable:
    name: str
    columns: tuple  # of Column, the content hashed into the chain, in order

    @property
    def column_names(self) -> tuple:
        return tuple(c.name for c in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([(c.name, c.arrow) for c in self.columns])


@functools.cache
def _arrow_type(sql: str) -> pa.DataType:
    # pyarrow loads here, on first use, not when the schema module is imported.
    import pyarrow as pa

    return {
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "VARCHAR": pa.string(),
        "DOUBLE": pa.float64(),
        "TIMESTAMP": pa.timestamp("us"),
    }[sql]


def _c(name: str, sql: str, optional: bool = False) -> Column:
    if sql not in ("BIGINT", "INTEGER", "VARCHAR", "DOUBLE", "TIMESTAMP"):
        # A column of this module with a type _arrow_type does not map: a bug here, found on import.
        raise LedgerError(f"ledger schema: column {name!r} has no known type {sql!r}")
    return Column(name, sql, optional)


# `seq` comes first in every chained table; prev_hash/row_hash are appended after the
# content columns (they are not part of the hashed content; prev_hash is mixed in raw).
EXECUTION_LOG = ChainedTable(
    "execution_log",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("state", "VARCHAR"),
        _c("changed_at", "TIMESTAMP"),
        _c("workflow", "VARCHAR"),
        _c("workflow_fingerprint", "VARCHAR"),
        _c("params", "VARCHAR"),
        _c("executor", "VARCHAR"),
        _c("host", "VARCHAR"),
        _c("pid", "BIGINT"),
        _c("process_start", "VARCHAR"),
        _c("code_digest", "VARCHAR"),
        _c("environment", "VARCHAR"),
        _c("replay_of", "VARCHAR"),
        _c("error", "VARCHAR"),
    ),
)

STEP_LOG = ChainedTable(
    "step_log",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("step", "VARCHAR"),
        _c("attempt", "INTEGER"),
        _c("state", "VARCHAR"),
        _c("task", "VARCHAR"),
        _c("task_fingerprint", "VARCHAR"),
        _c("cache_key", "VARCHAR"),
        _c("ckey", "BIGINT"),
        _c("cached_from", "VARCHAR"),
        _c("started_at", "TIMESTAMP"),
        _c("ended_at", "TIMESTAMP"),
        _c("resources", "VARCHAR"),
        _c("node", "VARCHAR"),
        _c("error", "VARCHAR"),
        _c("traceback", "VARCHAR"),
        _c("map_index", "INTEGER"),
        _c("condition", "VARCHAR"),
        _c("blocked_by", "VARCHAR", optional=True),  # v4: a step skipped because this upstream step failed
        _c("forced", "VARCHAR", optional=True),  # v4: why it ran although cached (recompute, no-cache, unusable)
    ),
)

ARTIFACTS = ChainedTable(
    "artifacts",
    (
        _c("seq", "BIGINT"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        _c("kind", "VARCHAR"),
        _c("type", "VARCHAR"),
        _c("size", "BIGINT"),
        _c("uri", "VARCHAR"),
        _c("value", "VARCHAR"),
        _c("first_execution_id", "VARCHAR"),
        _c("first_step", "VARCHAR"),
        _c("first_seen_at", "TIMESTAMP"),
    ),
)

EDGES = ChainedTable(
    "edges",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("step", "VARCHAR"),
        _c("attempt", "INTEGER"),
        _c("direction", "VARCHAR"),
        _c("name", "VARCHAR"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        # v4, provenance: the occurrence (execution, step, output name) this input came from,
        # and how (`engine.events.FROM_*`). Set on consumed edges, on a cache hit's produced
        # edges (the occurrence reused) and on parameters that came from another execution.
        # src_execution_id is NULL when the source is in the same execution (src_step set).
        _c("src_execution_id", "VARCHAR", optional=True),
        _c("src_step", "VARCHAR", optional=True),
        _c("src_name", "VARCHAR", optional=True),
        _c("how", "VARCHAR", optional=True),
    ),
)

METRICS = ChainedTable(
    "metrics",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("step", "VARCHAR"),
        _c("name", "VARCHAR"),
        _c("value", "DOUBLE"),
        _c("idx", "BIGINT"),
        _c("logged_at", "TIMESTAMP"),
        _c("reused_from", "VARCHAR", optional=True),  # v4: "EXEC:step" whose metric a cache hit repeats
    ),
)

# Version 2: the model registry and store retention. Versions are facts (one row each,
# numbered per name by the writer); aliases, tags and collected objects are logs whose
# newest row per key is the current state, like execution_log.
MODEL_VERSIONS = ChainedTable(
    "model_versions",
    (
        _c("seq", "BIGINT"),
        _c("name", "VARCHAR"),
        _c("version", "INTEGER"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        _c("type", "VARCHAR"),
        _c("flavor", "VARCHAR"),
        _c("size", "BIGINT"),
        _c("uri", "VARCHAR"),
        _c("execution_id", "VARCHAR"),
        _c("step", "VARCHAR"),
        _c("registered_at", "TIMESTAMP"),
        _c("who", "VARCHAR"),
        _c("why", "VARCHAR"),
        _c("metrics", "VARCHAR"),
    ),
)

ALIAS_LOG = ChainedTable(
    "alias_log",
    (
        _c("seq", "BIGINT"),
        _c("name", "VARCHAR"),
        _c("alias", "VARCHAR"),
        _c("version", "INTEGER"),
        _c("previous_version", "INTEGER"),
        _c("action", "VARCHAR"),
        _c("moved_at", "TIMESTAMP"),
        _c("who", "VARCHAR"),
        _c("why", "VARCHAR"),
    ),
)

TAG_LOG = ChainedTable(
    "tag_log",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("tag", "VARCHAR"),
        _c("action", "VARCHAR"),
        _c("tagged_at", "TIMESTAMP"),
        _c("who", "VARCHAR"),
        _c("why", "VARCHAR"),
    ),
)

GC_LOG = ChainedTable(
    "gc_log",
    (
        _c("seq", "BIGINT"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        _c("size", "BIGINT"),
        _c("reason", "VARCHAR"),
        _c("removed_at", "TIMESTAMP"),
        _c("who", "VARCHAR"),
        _c("policy", "VARCHAR"),
    ),
)

NODE_LOG = ChainedTable(
    "node_log",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("node", "VARCHAR"),
        _c("environment", "VARCHAR"),
        _c("seen_at", "TIMESTAMP"),
    ),
)

# Version 4: the graph as built (see engine/blueprint.py). A graph is content: its JSON is
# kept once, by digest, in graph_specs (every run of an unchanged workflow records the same
# graph); graph_log says which graph each execution was built into, and each part decided
# at run time (a map's elements). A few bytes a run, and no wide row rewritten per append.
GRAPH_SPECS = ChainedTable(
    "graph_specs",
    (
        _c("seq", "BIGINT"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        _c("spec", "VARCHAR"),
        _c("first_execution_id", "VARCHAR"),
    ),
)

# Version 4 too: what each task's results depended on besides its inputs (code digests by
# qualified name, the values of the globals it reads, cache_version, ...), by digest: a step's
# task_fingerprint is the digest of its row here, kept once for all the runs that share it.
TASK_IDENTITIES = ChainedTable(
    "task_identities",
    (
        _c("seq", "BIGINT"),
        _c("digest", "VARCHAR"),
        _c("dkey", "BIGINT"),
        _c("task", "VARCHAR"),
        _c("parts", "VARCHAR"),
        _c("first_execution_id", "VARCHAR"),
    ),
)

GRAPH_LOG = ChainedTable(
    "graph_log",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("part", "VARCHAR"),
        _c("spec_digest", "VARCHAR"),
        _c("recorded_at", "TIMESTAMP"),
    ),
)

# Version 6: what each attempt wrote to stdout and stderr (its `logging` records included),
# stored by content in the store: one row per stream the attempt wrote to (see
# engine/capture.py). The text is in the store, not here: a chatty step costs a row.
STEP_STREAMS = ChainedTable(
    "step_streams",
    (
        _c("seq", "BIGINT"),
        _c("execution_id", "VARCHAR"),
        _c("step", "VARCHAR"),
        _c("attempt", "INTEGER"),
        _c("stream", "VARCHAR"),
        _c("digest", "VARCHAR"),
        _c("size", "BIGINT"),
        _c("lines", "BIGINT"),
        _c("logged_at", "TIMESTAMP"),
    ),
)

CHAINED_TABLES = (EXECUTION_LOG, STEP_LOG, ARTIFACTS, EDGES, METRICS, MODEL_VERSIONS, ALIAS_LOG, TAG_LOG, GC_LOG,
                  NODE_LOG, GRAPH_SPECS, GRAPH_LOG, TASK_IDENTITIES, STEP_STREAMS)
TABLES_BY_NAME = {t.name: t for t in CHAINED_TABLES}


def table_ddl(t: ChainedTable) -> str:
    """The DuckDB CREATE TABLE of a chained table: its columns, then the two chain columns."""
    cols = [f"{c.name} {c.sql}" for c in t.columns]
    cols += ["prev_hash BLOB NOT NULL", "row_hash BLOB NOT NULL"]
    return f"CREATE TABLE IF NOT EXISTS {t.name} ({', '.join(cols)})"


# Why these indexes and no others: an ART index costs ~35 bytes a row on a BIGINT and
# ~120 on a 71-character digest, so lineage walks look artifacts up by `dkey` (a 64-bit
# hash of the digest) and everything else relies on DuckDB's zone maps over `seq`, which
# rises with physical order because the log is append-only.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS edges_dkey ON edges(dkey)",
    "CREATE INDEX IF NOT EXISTS artifacts_dkey ON artifacts(dkey)",
)
# Registry, tag and gc tables stay small (a row per version, move, tag or removal): no
# index, except gc_log by digest, which replay asks about one digest at a time.
INDEXES_V2 = ("CREATE INDEX IF NOT EXISTS gc_log_dkey ON gc_log(dkey)",)

VIEWS = (
    # Current state of each execution: its start row joined with its latest state row.
    """
    CREATE OR REPLACE VIEW executions AS
    WITH s AS (
        SELECT * FROM execution_log WHERE workflow IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY execution_id ORDER BY seq) = 1
    ), l AS (
        SELECT execution_id, state, changed_at, error, seq FROM execution_log
        QUALIFY row_number() OVER (PARTITION BY execution_id ORDER BY seq DESC) = 1
    )
    SELECT s.execution_id, s.workflow, l.state AS status, s.changed_at AS started_at,
           CASE WHEN l.state <> 'running' THEN l.changed_at END AS ended_at,
           CASE WHEN l.state <> 'running' THEN epoch(l.changed_at) - epoch(s.changed_at) END AS duration_s,
           s.params, s.executor, s.workflow_fingerprint, s.code_digest, s.environment,
           s.replay_of, s.host, s.pid, s.process_start, l.error, s.seq AS start_seq, l.seq AS last_seq
    FROM s JOIN l USING (execution_id)
    """,
    # One row per attempt: its latest state.
    """
    CREATE OR REPLACE VIEW attempts AS
    SELECT execution_id, step, attempt, task, state AS status, started_at, ended_at,
           epoch(ended_at) - epoch(started_at) AS duration_s, cache_key, cached_from,
           node, error, traceback, resources, map_index, seq
    FROM step_log
    QUALIFY row_number() OVER (PARTITION BY execution_id, step, attempt ORDER BY seq DESC) = 1
    """,
    # One row per step of an execution: the latest row of its latest attempt.
    """
    CREATE OR REPLACE VIEW steps AS
    SELECT execution_id, step, task, task_fingerprint, state AS status,
           max(attempt) OVER w AS attempts,
           min(started_at) OVER w AS started_at, ended_at,
           epoch(ended_at) - epoch(min(started_at) OVER w) AS duration_s,
           cache_key, state = 'cached' OR cached_from IS NOT NULL AS cache_hit, cached_from,
           node, error, traceback, resources, map_index, condition, blocked_by, forced, seq
    FROM step_log
    WINDOW w AS (PARTITION BY execution_id, step)
    QUALIFY row_number() OVER (PARTITION BY execution_id, step ORDER BY seq DESC) = 1
    """,
    # Each execution's parameters by name, with the plain value when it is one.
    """
    CREATE OR REPLACE VIEW params AS
    SELECT e.execution_id, e.name, e.digest, a.value, a.type, a.kind
    FROM edges e JOIN artifacts a USING (digest)
    WHERE e.step = '@params' AND e.direction = 'produced'
    """,
)

VIEWS_V2 = (
    # Where each alias of each model points now: its newest move.
    """
    CREATE OR REPLACE VIEW aliases AS
    SELECT name, alias, version, previous_version, action, moved_at, who, why, seq
    FROM alias_log
    QUALIFY row_number() OVER (PARTITION BY name, alias ORDER BY seq DESC) = 1
    """,
    # Every version with the aliases now pointing at it (a list, empty for none).
    """
    CREATE OR REPLACE VIEW models AS
    SELECT v.name, v.version, v.digest, v.type, v.flavor, v.size, v.uri, v.execution_id, v.step,
           v.registered_at, v.who, v.why, v.metrics,
           coalesce(list(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), []) AS aliases, v.seq
    FROM model_versions v LEFT JOIN aliases a ON a.name = v.name AND a.version = v.version
    GROUP BY ALL
    """,
    # The tags an execution carries now: those whose newest row adds them.
    """
    CREATE OR REPLACE VIEW tags AS
    SELECT execution_id, tag, tagged_at, who, why, seq
    FROM tag_log
    QUALIFY row_number() OVER (PARTITION BY execution_id, tag ORDER BY seq DESC) = 1 AND action = 'add'
    """,
)


V2_TABLES = (MODEL_VERSIONS, ALIAS_LOG, TAG_LOG, GC_LOG)


def _migrate_1_to_2(con) -> None:
    """Add the model registry, tags and gc tables (and their views) to a version 1 ledger.

    Nothing existing changes: the new tables start empty and join the chain at the next seq.
    """
    for t in V2_TABLES:
        con.execute(table_ddl(t)).fetchall()
    for ddl in INDEXES_V2 + VIEWS_V2:
        con.execute(ddl).fetchall()


V3_TABLES = (NODE_LOG,)


def _migrate_2_to_3(con) -> None:
    """Add node_log (the environment of each node that ran an execution's steps)."""
    for t in V3_TABLES:
        con.execute(table_ddl(t)).fetchall()


V4_TABLES = (GRAPH_SPECS, GRAPH_LOG, TASK_IDENTITIES)


# Graph specs are wide rows: fetched by key through an index, never by a scan, which would
# decompress every spec in the row group. graph_log by execution, for `show` of one run.
INDEXES_V4 = ("CREATE INDEX IF NOT EXISTS graph_specs_dkey ON graph_specs(dkey)",
              "CREATE INDEX IF NOT EXISTS task_identities_dkey ON task_identities(dkey)",
              "CREATE INDEX IF NOT EXISTS graph_log_execution ON graph_log(execution_id)")


def _migrate_3_to_4(con) -> None:
    """Add the graph record and the provenance columns. Old rows keep their hashes (new columns
    are optional: NULL is not encoded); their edges are read as inferred (docs/ledger.md)."""
    for t in V4_TABLES:
        con.execute(table_ddl(t)).fetchall()
    for t in (STEP_LOG, EDGES, METRICS):
        present = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [t.name]).fetchall()}
        for c in t.columns:
            if c.name not in present:
                con.execute(f"ALTER TABLE {t.name} ADD COLUMN {c.name} {c.sql}").fetchall()
    for ddl in INDEXES_V4 + VIEWS:
        con.execute(ddl).fetchall()


# How far each journal has been moved into the chain (see ledgerflow.lineage.moving): written in
# the same transaction as the rows it moved, so a journal's records are moved exactly once.
# Insert-only like everything else (the highest `upto` of a journal wins); not chained: it is
# the mover's cursor, not part of the record.
JOURNAL_MOVES_DDL = ("CREATE TABLE IF NOT EXISTS journal_moves (journal VARCHAR NOT NULL, upto BIGINT NOT NULL, "
                     "events BIGINT NOT NULL, moved_at TIMESTAMP NOT NULL)")


def _migrate_4_to_5(con) -> None:
    """Add the journal mover's cursor; chained tables and their hashes are unchanged."""
    con.execute(JOURNAL_MOVES_DDL).fetchall()


def _migrate_5_to_6(con) -> None:
    """Add the table of step streams (logs); nothing else changes."""
    con.execute(table_ddl(STEP_STREAMS)).fetchall()


# Bumped-from -> function(con) upgrading the schema by one version, run by the next write
# (inside its transaction); `ensure_schema` refuses a file newer than this code. A reader
# of a file not yet migrated sees the new tables as absent (see `missing_tables`).
MIGRATIONS: dict = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5,
                    5: _migrate_5_to_6}


def missing_tables(con) -> set:
    """Names of chained tables absent from the file (a ledger written by an older version).

    >>> import duckdb
    >>> sorted(missing_tables(duckdb.connect()))[:2]
    ['alias_log', 'artifacts']
    """
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return {t.name for t in CHAINED_TABLES} - present


def schema_version(con) -> int | None:
    """The version a ledger file is at; None for a file without the schema (being created)."""
    try:
        row = con.execute("SELECT max(CAST(value AS INTEGER)) FROM meta WHERE key = 'schema_version'").fetchall()
    except Exception:  # no meta table: duckdb.CatalogException, kept generic so schema needs no duckdb import
        return None
    return None if row[0][0] is None else int(row[0][0])


def newer_schema(version: int):
    """The error for a file written by a newer Ledgerflow: neither read nor written by this one."""
    return LedgerError(f"this ledger was written by a newer Ledgerflow (schema version {version}; this one "
                       f"reads up to {SCHEMA_VERSION}): upgrade Ledgerflow to read or record here")


def ensure_schema(con) -> None:
    """Create the schema in an empty file, or check the version of an existing one."""
    has_meta = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if has_meta:
        # meta is insert-only too: a migration adds a row, the highest version wins.
        row = con.execute(
            "SELECT max(CAST(value AS INTEGER)) FROM meta WHERE key = 'schema_version'"
        ).fetchall()[0]
        version = int(row[0]) if row[0] is not None else 0
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise newer_schema(version)
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](con)
            version += 1
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(version)]).fetchall()
        return
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)").fetchall()
    for t in CHAINED_TABLES:
        con.execute(table_ddl(t)).fetchall()
    for ddl in INDEXES + INDEXES_V2 + INDEXES_V4 + VIEWS + VIEWS_V2 + (JOURNAL_MOVES_DDL,):
        con.execute(ddl).fetchall()
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]).fetchall()


def key64(text: str) -> int:
    """The 64-bit lookup key of a digest or cache key (`dkey`, `ckey` columns).

    The first 8 bytes of blake3(text), as a signed integer. Collisions are possible and
    harmless: lookups by key also compare the full text.

    >>> key64("blake3:00") == key64("blake3:00")
    True
    """
    return int.from_bytes(_blake3(text.encode()).digest(length=8), "big", signed=True)


ALL_VIEWS = VIEWS + VIEWS_V2  # every view of a ledger at SCHEMA_VERSION, in dependency order


def view_name(ddl: str) -> str:
    """The name a view DDL creates.

    >>> view_name(VIEWS[0])
    'executions'
    """
    return ddl.split(" VIEW ", 1)[1].split(None, 1)[0]


def use_code_views(con) -> None:
    """Shadow the file's views with this code's, as TEMP views of connection `con`.

    The views in the file are not hashed into the chain: anyone who can write the file can
    redefine one (`executions` reading a failed run as succeeded). Readers therefore never
    use them: a temp view comes first in DuckDB's search path, so every unqualified
    `executions`, `steps`, ... that a reader (and `query sql`) names is the code's definition
    over the hash-chained tables. `verify` still reports a file whose views differ. A view
    whose tables the file lacks (an older file, not migrated) is left out.
    """
    for ddl in ALL_VIEWS:
        try:
            con.execute(ddl.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW", 1)).fetchall()
        except Exception:  # a table it reads is missing: kept generic so schema needs no duckdb import
            pass
