"""SQL helpers shared by the ledger's readers and its writer: reading rows by key and by execution.

Two access paths keep queries cheap on a large file. Digests and cache keys are found by
their 64-bit keys (`dkey`, `ckey`) through ART indexes; everything an execution wrote
lies between its first and last `execution_log` rows, so it is read by `seq` range,
which zone maps answer without reading the rest of the file.
"""

from __future__ import annotations

from collections import defaultdict


MANY_EXECUTIONS = 16  # above this many executions at once, one scan beats per-execution range reads


def lookup_by_key(con, table: str, keycol: str, keys: list, cols: str):
    """Rows of `table` whose `keycol` is in `keys`, as an Arrow table (None for no keys).

    Up to a few hundred keys go in an inline `IN (...)` list, which DuckDB 2.0 answers
    from the ART index (~0.1 ms a key on 3M edges); beyond that, one hash join over a
    scan of the table is cheaper (~70 ms on 3M edges, whatever the number of keys).
    Keys are Python ints, so inlining them is safe.
    """
    import pyarrow as pa
    keys = list(dict.fromkeys(int(k) for k in keys))
    if not keys:
        return None
    if len(keys) <= 500:
        inline = ", ".join(map(str, keys))
        return con.sql(f"SELECT {cols} FROM {table} WHERE {keycol} IN ({inline})").to_arrow_table()
    wanted = pa.table({"k": pa.array(keys, pa.int64())})
    con.register("_wanted_keys", wanted)
    try:
        return con.sql(f"SELECT {cols} FROM {table} WHERE {keycol} IN (SELECT k FROM _wanted_keys)").to_arrow_table()
    finally:
        con.unregister("_wanted_keys")


class ExecutionRanges:
    """Each execution's [first, last] seq: every row it wrote lies in between."""

    def __init__(self, con):
        self.con = con
        self._ranges: dict = {}

    def get(self, execution_ids) -> dict:
        missing = [e for e in set(execution_ids) if e not in self._ranges]
        if missing:
            rows = self.con.execute(
                """
                SELECT execution_id, min(seq), max(seq), bool_or(state <> 'running')
                FROM execution_log WHERE execution_id IN (SELECT unnest(?)) GROUP BY 1
                """,
                [missing],
            ).fetchall()
            for e, lo, hi, finished in rows:
                # A running execution may still be writing: no upper bound.
                self._ranges[e] = (lo, hi if finished else 2**62)
        return {e: self._ranges[e] for e in execution_ids if e in self._ranges}


def spans(ranges) -> list:
    """Seq ranges to read: merged into one when they lie close together (the usual case for the
    executions of one walk), since each query has a fixed cost."""
    ranges = sorted(ranges)
    if not ranges:
        return []
    total = sum(hi - lo + 1 for lo, hi in ranges)
    lo, hi = ranges[0][0], max(h for _, h in ranges)
    return [(lo, hi)] if hi - lo + 1 <= 4 * total else ranges


def _where(ranges: ExecutionRanges, ids: list) -> list:
    """SQL conditions selecting the rows of executions `ids`: by seq span where few, else by id."""
    if len(ids) > MANY_EXECUTIONS:
        return ["execution_id IN (SELECT unnest(?))"]
    return [f"seq BETWEEN {int(lo)} AND {int(hi)} AND execution_id IN (SELECT unnest(?))"
            for lo, hi in spans(ranges.get(ids).values())]


def read_executions(con, ranges: ExecutionRanges, table: str, cols: str, execution_ids):
    """Rows of `table` written by these executions, as one Arrow table: in seq order, unless `cols`
    asks for DISTINCT rows."""
    import pyarrow as pa

    ids = list(dict.fromkeys(execution_ids))
    order = "" if cols.startswith("DISTINCT") else " ORDER BY seq"
    parts = [con.sql(f"SELECT {cols} FROM {table} WHERE {where}{order}", params=[ids]).to_arrow_table()
             for where in _where(ranges, ids)]
    return pa.concat_tables(parts) if parts else con.sql(f"SELECT {cols} FROM {table} LIMIT 0").to_arrow_table()


def rows_of_executions(con, ranges: ExecutionRanges, table: str, cols: str, execution_ids) -> dict:
    """execution_id -> list of row tuples (cols) of `table`, in seq order."""
    out: dict = defaultdict(list)
    ids = list(dict.fromkeys(execution_ids))
    for where in _where(ranges, ids) if ids else ():
        for row in con.execute(f"SELECT execution_id, {cols} FROM {table} WHERE {where} ORDER BY seq",
                               [ids]).fetchall():
            out[row[0]].append(row[1:])
    return out
