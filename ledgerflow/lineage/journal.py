"""The journal: each recording process appends its events to a file of its own, with no lock.

DuckDB lets one process hold the ledger file at a time, so a run that wrote there would wait
for readers and other runs, and could fail because its bookkeeping was busy. Instead every
`Ledger` that records appends to `<home>/journal/<name>.jrnl`, a file only it writes, and
the events are moved into the hash-chained tables later, in large batches, by whichever
process holds the file (`ledgerflow.lineage.moving`).

A journal is text, one record a line::

    <json>\\t<crc32 of the json, 8 hex digits>\\n

The first record is the header (`{"journal": 1, "host": ..., "pid": ..., "start": ...}`:
who owns it, so a reader can tell a finished owner from a dead one); then one record per
event (`{"t": "StepFinished", "execution_id": ..., ...}`, fields at their default left
out); a journal closed cleanly ends with `{"closed": true}`. A record counts only when it is
whole: ends with a newline and its checksum matches. Reading stops at the first record that
isn't, so a kill -9 in the middle of a write leaves a torn tail that is ignored; nothing is
ever written after it (its owner is dead, and a writer whose write fails cuts the file back
to its last whole record before it raises), so no whole record is ever lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from datetime import datetime
from pathlib import Path

import attrs

from ledgerflow.engine.events import ArtifactRef, Binding, Origin, Sources
from ledgerflow.errors import LedgerError
from ledgerflow import liveness
from ledgerflow.regular_files import NotARegularFile, open_regular

SUFFIX = ".jrnl"
MOVED_SUFFIX = ".moved"  # beside a journal: how far it has been moved (a hint; the ledger holds the truth)
FORMAT = 1


# -- one event as one JSON object ------------------------------------------------------------

def _event_types() -> dict:
    from ledgerflow.lineage import append

    return {cls.__name__: cls for cls in append.ROWS}


# How a value of each kind is written, as an expression of `v` (compiled into each class's encoder).
_ENCODE = {
    "datetime": "v.isoformat()",
    "binding": "[[n, [r.digest, r.kind, r.type, r.size, r.uri, r.value]] for n, r in v]",
    "sources": "[[n, [o.execution_id, o.step, o.name, o.how]] for n, o in v]",
    "artifact": "[v.digest, v.kind, v.type, v.size, v.uri, v.value]",
}
_DECODE = {
    "datetime": datetime.fromisoformat,
    "binding": lambda v: tuple((name, ArtifactRef(*ref)) for name, ref in v),
    "sources": lambda v: tuple((name, Origin(*o)) for name, o in v),
    "artifact": lambda v: ArtifactRef(*v),
}


def _kind(field) -> str | None:
    if field.type is datetime:
        return "datetime"
    if field.type == Binding:
        return "binding"
    if field.type == Sources:
        return "sources"
    if field.type is ArtifactRef:
        return "artifact"
    return None


@attrs.frozen
class _Shape:
    """How one event class is written: (name, kind, default) per field."""

    cls: type
    fields: tuple
    encode: object  # (event, start) -> dict

    @classmethod
    def of(cls, event_type: type) -> "_Shape":
        attrs.resolve_types(event_type)
        fields = tuple((f.name, _kind(f), attrs.NOTHING if isinstance(f.default, attrs.Factory) else f.default)
                       for f in attrs.fields(event_type))
        return cls(event_type, fields, _encoder(event_type.__name__, fields))


def _encoder(tag: str, fields: tuple):
    """A function writing one event class, generated as attrs generates `__init__`: recording
    calls it for every event, and a loop over the fields with getattr costs twice as much."""
    lines = ["def encode(ev, start):", f"    out = {{'t': {tag!r}}}"]
    defaults = {}
    for name, kind, default in fields:
        lines.append(f"    v = ev.{name}")
        value = "v" if kind is None else f"None if v is None else {_ENCODE[kind]}"
        if default is attrs.NOTHING:
            lines.append(f"    out[{name!r}] = {value}")
        else:
            defaults[f"d_{name}"] = default
            test = "v is not None" if default is None else f"v != d_{name}"
            lines.append(f"    if {test}:")
            lines.append(f"        out[{name!r}] = {value}")
    lines += ["    if start is not None:", "        out['@start'] = start", "    return out"]
    namespace = dict(defaults)
    exec(compile("\n".join(lines), f"<journal encoder {tag}>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace["encode"]


_shapes: dict = {}
_shapes_by_tag: dict = {}


def _shape(event_type: type) -> _Shape:
    shape = _shapes.get(event_type)
    if shape is None:
        shape = _shapes[event_type] = _Shape.of(event_type)
    return shape


def encode(event, start: str | None = None) -> dict:
    """An event as a JSON-ready dict; `start` is the process-start token of an ExecutionStarted.

    >>> from ledgerflow.engine.events import AliasMoved
    >>> from datetime import timezone
    >>> encode(AliasMoved("digits", "production", 2, datetime(2026, 1, 1, tzinfo=timezone.utc), "ann@lab"))
    {'t': 'AliasMoved', 'name': 'digits', 'alias': 'production', 'version': 2, 'at': '2026-01-01T00:00:00+00:00', 'who': 'ann@lab'}
    """
    return _shape(type(event)).encode(event, start)


def decode(record: dict) -> tuple:
    """(event, process-start token) from what `encode` made; LedgerError if it names no event."""
    if not _shapes_by_tag:
        _shapes_by_tag.update({tag: _shape(cls) for tag, cls in _event_types().items()})
    shape = _shapes_by_tag.get(record.get("t"))
    if shape is None:
        raise LedgerError(f"a journal record of unknown kind {record.get('t')!r}: written by a newer Ledgerflow?")
    values = {}
    for name, kind, _ in shape.fields:
        if name in record:
            value = record[name]
            values[name] = value if kind is None or value is None else _DECODE[kind](value)
    return shape.cls(**values), record.get("@start")


# -- framing ---------------------------------------------------------------------------------

def frame(record: dict) -> bytes:
    text = json.dumps(record, separators=(",", ":")).encode()
    return b"%s\t%08x\n" % (text, zlib.crc32(text))


def _unframe(line: bytes) -> dict | None:
    """The record in one line (its newline included), or None if it is not whole."""
    if not line.endswith(b"\n"):
        return None
    text, tab, crc = line[:-1].rpartition(b"\t")
    if not tab or len(crc) != 8:
        return None
    try:
        if int(crc, 16) != zlib.crc32(text):
            return None
        return json.loads(text)
    except ValueError:
        return None


@attrs.frozen
class Header:
    """Who owns a journal: its liveness says whether more may still be appended."""

    host: str
    pid: int
    start: str | None
    end: int  # byte offset just after the header record: where events begin

    def owner_alive(self) -> bool | None:
        """False once the owner is gone (nothing more will ever be appended); None: another host."""
        return liveness.is_alive(self.host, self.pid, self.start)


@attrs.frozen
class Chunk:
    """The whole records of a journal from some offset: (end offset, record) each."""

    records: tuple
    end: int  # offset just after the last whole record read
    closed: bool  # the owner closed it: nothing follows


def read_header(path: Path) -> Header | None:
    """The header of the journal at `path`; None if it has none yet (or no whole one)."""
    try:
        with open_regular(path, follow_symlinks=False) as f:
            line = f.readline()
    except (FileNotFoundError, NotARegularFile):
        return None  # removed meanwhile, or something else put there: not a journal
    record = _unframe(line)
    if record is None or record.get("journal") != FORMAT:
        return None
    return Header(record.get("host"), record.get("pid"), record.get("start"), len(line))


def read(path: Path, offset: int) -> Chunk:
    """The whole records of the journal at `path` after byte `offset`, up to its first torn one."""
    records = []
    closed = False
    try:
        with open_regular(path, follow_symlinks=False) as f:
            f.seek(offset)
            data = f.read()
    except (FileNotFoundError, NotARegularFile):
        return Chunk((), offset, False)
    end = offset
    for line in data.splitlines(keepends=True):
        record = _unframe(line)
        if record is None:
            break
        end += len(line)
        if record.get("closed"):
            closed = True
            break
        records.append((end, record))
    return Chunk(tuple(records), end, closed)


def moved_hint(path: Path) -> int:
    """How far the journal at `path` has been moved into the ledger, as last noted beside it.

    A hint, written after the move committed: it may lag the truth (the ledger's
    `journal_moves`), never lead it. 0 when there is none.
    """
    try:
        return int(path.with_suffix(MOVED_SUFFIX).read_text() or 0)
    except (OSError, ValueError):
        return 0


def note_moved(path: Path, offset: int) -> None:
    hint = path.with_suffix(MOVED_SUFFIX)
    tmp = hint.with_name(f".{hint.name}.{os.getpid()}.tmp")
    tmp.write_text(str(offset))
    os.replace(tmp, hint)


def journals(directory: Path) -> list:
    """The journals in `directory`, oldest first (names start with their creation time)."""
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX)
    except FileNotFoundError:
        return []


def pending(directory: Path) -> list:
    """Journals with bytes not yet moved into the ledger (by their hints)."""
    out = []
    for path in journals(directory):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size > moved_hint(path):
            out.append(path)
    return out


def pending_bytes(directory: Path) -> int:
    total = 0
    for path in journals(directory):
        try:
            total += max(0, path.stat().st_size - moved_hint(path))
        except FileNotFoundError:
            continue
    return total


def remove(path: Path) -> None:
    """Remove a journal that has been moved whole, and its hint."""
    path.unlink(missing_ok=True)
    path.with_suffix(MOVED_SUFFIX).unlink(missing_ok=True)


# -- the writer --------------------------------------------------------------------------------

_sequence = 0
_sequence_lock = threading.Lock()


def _new_name() -> str:
    global _sequence
    with _sequence_lock:
        _sequence += 1
        n = _sequence
    # Sorted by name is sorted by creation: the order in which journals are moved.
    return f"{time.time_ns():020d}-{os.getpid()}-{n}-{os.urandom(3).hex()}{SUFFIX}"


class JournalWriter:
    """The append end of one journal, owned by one Ledger of one process.

    Not thread-safe by itself: the Ledger calls it under its own lock.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / _new_name()
        self._fd: int | None = None
        self._size = 0
        self._synced = 0  # bytes known to be on disk

    def _open(self) -> None:
        # The header is written to a temporary file that is then renamed into place, so a
        # journal never exists without one (a kill -9 can't leave a journal of unknown owner).
        pid = os.getpid()
        header = frame({"journal": FORMAT, "host": liveness.this_host(), "pid": pid,
                        "start": liveness.process_start(pid)})
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(header)
            os.rename(tmp, self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise LedgerError(f"cannot record in {self.directory}: {exc.strerror or exc} (is the home writable?)") \
                from exc
        self._size = len(header)

    def append(self, records: list) -> None:
        """Append whole records (dicts), in one write."""
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:
            # Someone removed the journal (the home deleted under a running process; movers
            # never remove a live owner's journal): what follows goes to a new one.
            os.close(self._fd)
            self._fd = None
            self.path = self.directory / _new_name()
        if self._fd is None:
            self._open()
        if records:
            self._write(b"".join(frame(r) for r in records))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            # A short write (a full disk) would leave a torn record with whole ones after it:
            # cut the file back to its last whole record, so a reader never stops early.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise LedgerError(f"cannot record in {self.path}: {exc.strerror or exc}") from exc
        self._size += len(data)

    def close(self) -> None:
        """Mark the journal closed: nothing will follow, so a mover may remove it once moved.

        Not synced: a close record lost to a power cut only means the journal is removed
        when its owner is found gone instead.
        """
        if self._fd is None:
            return
        try:
            self._write(frame({"closed": True}))
        except LedgerError:
            pass  # (a full disk): the journal is removed once its owner is gone instead
        finally:
            os.close(self._fd)
            self._fd = None

    def sync(self) -> None:
        """Make what was appended durable against a power cut (a kill -9 loses none of it anyway)."""
        if self._fd is not None and self._synced != self._size:
            os.fsync(self._fd)
            self._synced = self._size
