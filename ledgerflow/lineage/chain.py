"""The hash chain over every ledger row, Certificate Transparency style.

Each row of each chained table gets `seq` (one gap-free sequence across all tables), and

    row_hash = blake3(prev_hash || encode(table, row))

where `prev_hash` is the `row_hash` of the row with `seq - 1` (32 zero bytes for seq 1).
A row changed, removed, inserted or moved breaks the chain at that row, which is how
`verify` names it.

The encoding is canonical and documented (docs/ledger.md) so anyone can re-check a ledger
without this code: `<table>` then, for each content column in schema order, `|` and
either `~` (NULL) or `<utf-8 byte length>:<text>`; then, for each optional column (one a
later schema added) that is not NULL, `|<column name>=<utf-8 byte length>:<text>`. Text is the value for strings, decimal
for integers, integer microseconds since the epoch (UTC) for timestamps, and the decimal of
the IEEE-754 bits read as a signed 64-bit integer for doubles (exact, no float printing).

Encoding is vectorised with Arrow (the writer and the verifier both go through
`encode_rows`, so they can't disagree); only the chaining itself is a Python loop, ~1 µs
a row.
"""

from __future__ import annotations

import attrs
from blake3 import blake3

from ledgerflow.lineage.schema import CHAINED_TABLES, ChainedTable, missing_tables

GENESIS = bytes(32)


def _text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc
    t = col.type
    if pa.types.is_timestamp(t):
        col = pc.cast(col, pa.int64())
    elif pa.types.is_floating(t):
        col = pa.concat_arrays(col.chunks) if isinstance(col, pa.ChunkedArray) else col
        col = col.cast(pa.float64())
        # Storage may rewrite a NaN's payload bits; every NaN hashes as the canonical one.
        col = pc.if_else(pc.is_nan(col), pa.scalar(float("nan")), col).view(pa.int64())
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return col


def encode_rows(table: ChainedTable, data: pa.Table) -> list:
    """The canonical encoding of each row of `data` (columns as in `table.columns`), as bytes.

    >>> from ledgerflow.lineage.schema import METRICS
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> row = pa.Table.from_pylist([dict(seq=7, execution_id="E", step="train", name="loss",
    ...     value=0.5, idx=None, logged_at=dt.datetime(2026, 1, 1))], schema=METRICS.arrow_schema)
    >>> encode_rows(METRICS, row)[0]
    b'metrics|1:7|1:E|5:train|4:loss|19:4602678819172646912|~|16:1767225600000000'
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    if data.num_rows == 0:
        return []
    fields = [pa.array([table.name] * data.num_rows, pa.string())]
    optional = []
    for column in table.columns:
        if column.optional and column.name not in data.column_names:
            continue  # a file written before the column existed: NULL throughout, so not encoded
        text = _text(data.column(column.name))
        length = pc.cast(pc.binary_length(text), pa.string())
        if column.optional:
            named = pc.binary_join_element_wise(f"|{column.name}=", length, ":", text, "")
            optional.append(pc.fill_null(named, ""))
        else:
            fields.append(pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "~"))
    joined = pc.binary_join_element_wise(*fields, "|")
    if optional:
        # Optional columns (added by a later schema) are encoded only when set, with their
        # name, so a row written before they existed hashes as it always did.
        joined = pc.binary_join_element_wise(joined, *optional, "")
    return pc.cast(joined, pa.binary()).to_pylist()


def chain(prev: bytes, encodings: list) -> list:
    """Row hashes for consecutive rows following a row whose hash is `prev`.

    >>> hs = chain(GENESIS, [b"a", b"b"])
    >>> hs[1] == blake3(hs[0] + b"b").digest()
    True
    """
    out = []
    for enc in encodings:
        prev = blake3(prev + enc).digest()
        out.append(prev)
    return out


@attrs.frozen
class ChainProblem:
    """The first thing wrong with one row of the chain.

    `what` is one of "changed", "removed", "inserted", "reordered".
    """

    table: str | None
    seq: int | None
    what: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.table} row seq={self.seq}" if self.table else f"seq={self.seq}"
        return f"{where}: {self.what}: {self.detail}"


@attrs.frozen
class ChainCheck:
    rows: int
    head_seq: int
    head_hash: str  # hex
    problems: tuple  # of ChainProblem, in seq order


def check(con, max_problems: int = 100) -> ChainCheck:
    """Re-hash every chained row in `seq` order and report where the chain breaks."""
    import pyarrow as pa
    import pyarrow.compute as pc
    parts = []
    absent = missing_tables(con)  # a file of an older schema, not yet migrated by a write
    for t in CHAINED_TABLES:
        if t.name in absent:
            continue
        cols = ", ".join(t.column_names)
        data = con.sql(f"SELECT {cols}, prev_hash, row_hash FROM {t.name}").to_arrow_table()
        if data.num_rows == 0:
            continue
        encs = encode_rows(t, data)
        parts.append(
            pa.table(
                {
                    "seq": data.column("seq"),
                    "table": pa.array([t.name] * data.num_rows, pa.string()),
                    "prev_hash": data.column("prev_hash"),
                    "row_hash": data.column("row_hash"),
                    "enc": pa.array(encs, pa.binary()),
                }
            )
        )
    if not parts:
        return ChainCheck(0, 0, GENESIS.hex(), ())
    allrows = pa.concat_tables(parts)
    allrows = allrows.take(pc.sort_indices(allrows, sort_keys=[("seq", "ascending", "at_start")]))
    seqs = allrows.column("seq").to_pylist()
    tables = allrows.column("table").to_pylist()
    prevs = allrows.column("prev_hash").to_pylist()
    hashes = allrows.column("row_hash").to_pylist()
    encs = allrows.column("enc").to_pylist()
    # Where does each stored hash sit? Lets a row whose prev_hash points elsewhere be
    # named as moved rather than merely "broken".
    seq_of_hash = {h: s for h, s in zip(hashes, seqs)}

    problems: list = []
    expected_prev, expected_seq = GENESIS, 1
    i, n = 0, len(seqs)
    while i < n and len(problems) < max_problems:
        seq = seqs[i]
        if seq is None:
            problems.append(ChainProblem(tables[i], None, "inserted", "a row without a seq is not part of the chain"))
            i += 1
            continue
        # Rows sharing a seq: the one that chains from the previous row is the original,
        # the others were inserted.
        group = [i]
        while i + len(group) < n and seqs[i + len(group)] == seq:
            group.append(i + len(group))
        i += len(group)
        k = group[0]
        if len(group) > 1:
            genuine = [j for j in group if blake3(expected_prev + encs[j]).digest() == hashes[j]]
            k = genuine[0] if genuine else group[0]
            for j in group:
                if j != k:
                    problems.append(ChainProblem(tables[j], seq, "inserted", f"a second row claims seq {seq}"))
        table, prev, stored, enc = tables[k], prevs[k], hashes[k], encs[k]
        if seq > expected_seq:
            missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
            problems.append(ChainProblem(table, seq, "removed", f"row(s) {missing} missing before this row"))
        if blake3(expected_prev + enc).digest() != stored:
            problem = _explain(table, seq, prev, stored, enc, expected_prev, seq_of_hash, problems)
            if problem is not None:
                problems.append(problem)
        elif prev != expected_prev:
            problems.append(ChainProblem(table, seq, "changed", "its prev_hash column was edited"))
        # Carry on from the stored hash, so one edit is reported once, not for every later row.
        expected_prev, expected_seq = stored, seq + 1
    last = next((k for k in range(n - 1, -1, -1) if seqs[k] is not None), None)
    head_seq = seqs[last] if last is not None else 0
    head_hash = hashes[last].hex() if last is not None else GENESIS.hex()
    return ChainCheck(n, head_seq, head_hash, tuple(problems))


def _explain(table, seq, prev, stored, enc, expected_prev, seq_of_hash, problems):
    """Why a row's hash doesn't follow from the row before it; None if a gap explains it."""
    own = blake3(prev + enc).digest() == stored  # intact relative to its own prev_hash
    if own and problems and problems[-1].seq == seq and problems[-1].what == "removed":
        return None
    other = seq_of_hash.get(prev)
    if other is not None and prev != expected_prev:
        # Its predecessor is elsewhere in the ledger: was it moved (its seq rewritten)?
        head = f"{table}|{len(str(seq))}:{seq}|".encode()
        orig = other + 1
        if enc.startswith(head):
            moved = f"{table}|{len(str(orig))}:{orig}|".encode() + enc[len(head):]
            if blake3(prev + moved).digest() == stored:
                return ChainProblem(table, seq, "reordered", f"this row was written as seq {orig}, after seq {other}")
        if own:
            return ChainProblem(table, seq, "reordered", f"this row was written after seq {other}, not seq {seq - 1}")
    if prev != expected_prev and other is None:
        return ChainProblem(table, seq, "inserted", "its prev_hash matches no row of this ledger")
    return ChainProblem(table, seq, "changed", "its content no longer matches its row_hash")
