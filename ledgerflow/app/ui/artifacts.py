"""One artifact in `lineage ui`: what the ledger says of it, a preview of its bytes, downloads.

The preview follows how the kind keeps its bytes (`types.kinds.storage_of`): a TABLE (a
Dataset) shows its schema and first rows, read with `Dataset.to_arrow()`; a BLOB (a File)
the head of its text; a MANIFEST (a Directory, a Model, a code snapshot) its file listing,
each file downloadable; a plain value its canonical JSON. Reads go to the home's store and
never write to it; bytes are streamed, never loaded whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ledgerflow.errors import LedgerflowError, RefError
from ledgerflow.app.display import format_size
from ledgerflow.lineage.values import jsonable
from ledgerflow.types.kinds import VALUE_KIND, Storage, storage_of

PREVIEW_ROWS = 50  # rows of a Dataset shown
PREVIEW_BYTES = 64 << 10  # bytes of a File read for its text preview
PREVIEW_CELL = 200  # characters of one cell (a list column of 64 pixels reads as a long text)
LISTED_FILES = 2000  # entries of a directory listed
CHUNK = 1 << 20


def info_of(ledger, digest: str) -> dict:
    """The artifact's recorded facts (digest, kind, type, size, store, value), its producers and
    consumers (steps one hop away by recorded provenance, and executions it was a parameter or
    an output of), the model-registry versions holding it, and a gc removal if there was one.

    A code snapshot is not an artifact row; a digest that is an execution's code snapshot is
    described as one. RefError naming the digest when the ledger knows neither.
    """
    try:
        resolved = ledger.resolve(digest)
    except RefError:
        code_of = _code_snapshot_of(ledger, digest)
        if not code_of:
            raise
        art = {"digest": digest, "kind": "directory", "type": "code snapshot", "size": None, "uri": None,
               "value": None}
        return {"artifact": art, "producers": [], "consumers": [{"kind": "execution", "ref": e, "label": "code of",
                                                                 "status": None} for e in code_of],
                "registry": [], "collected": None, "code_snapshot": True}
    if resolved.kind != "artifact":
        raise RefError(f"{digest!r} names {resolved.kind} {resolved.ref}, not an artifact")
    digest = resolved.digest
    up = ledger.upstream(digest, 1)
    down = ledger.downstream(digest, 1)
    root = next((n for n in up.nodes if n.depth == 0), None)
    art = jsonable(root.artifact) if root is not None and root.artifact is not None else {
        "digest": digest, "kind": None, "type": None, "size": None, "uri": None, "value": None}
    registry = [jsonable(v) for m in ledger.models() for v in m.versions if v.digest == digest]
    collected = ledger.collected(digest)
    return {"artifact": art, "producers": [_near(n) for n in up.nodes if n.depth == 1],
            "consumers": [_near(n) for n in down.nodes if n.depth == 1], "registry": registry,
            "collected": jsonable(collected) if collected else None, "code_snapshot": False}


def _near(node) -> dict:
    return {"kind": node.kind, "ref": node.ref, "label": node.label, "status": node.status}


def _code_snapshot_of(ledger, digest: str) -> list:
    if not digest.startswith("blake3:") or len(digest) != 71:
        return []
    rows = ledger.sql("SELECT execution_id FROM executions WHERE code_digest = ? ORDER BY started_at DESC LIMIT 20",
                      [digest])
    return rows.column("execution_id").to_pylist()


def store_of(ledger):
    """The home's store (`LEDGERFLOW_STORE` or <home>/store): where downloads come from."""
    from ledgerflow.store import Store

    return Store.open(ledger.home.store_url)


def preview(store, artifact: dict) -> dict:
    """What the page shows of the bytes: {"kind": "table" | "text" | "listing" | "value" | "none", ...}.
    An object missing from the store (collected by gc, or a remote store out of reach) is
    said so, not an error page."""

    digest, kind = artifact["digest"], artifact.get("kind")
    storage = storage_of(kind) if kind not in (None, VALUE_KIND) else None
    if artifact.get("type") == "code snapshot":
        storage = Storage.MANIFEST
    if storage is None:
        value = artifact.get("value")
        return {"kind": "value", "text": _pretty(value)} if value is not None else {"kind": "none",
                                                                                    "note": "nothing recorded"}
    try:
        if not store.has(digest):
            return {"kind": "none", "note": f"not in the store at {store.url}"}
        if storage is Storage.TABLE:
            return _table(store, artifact)
        if storage is Storage.MANIFEST:
            return _listing(store, digest)
        return _text(store, digest)
    except (LedgerflowError, OSError, ValueError) as exc:
        return {"kind": "none", "note": f"cannot read it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"}


def _pretty(value: str) -> str:
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return value


def _cell(value) -> object:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(jsonable(value), default=str, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CELL else text[:PREVIEW_CELL - 1] + "\u2026"


def _table(store, artifact: dict) -> dict:
    from ledgerflow.types.handles import Dataset

    # Not verified: the preview reads the first rows of a memory-mapped table, and hashing a
    # large dataset to show 50 rows would cost its whole size; downloads are verified.
    table = Dataset(digest=artifact["digest"], size=artifact.get("size") or 0,
                    store_url=store.url).to_arrow(verify=False)
    head = table.slice(0, PREVIEW_ROWS).to_pylist()
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    return {"kind": "table", "columns": columns, "num_rows": table.num_rows,
            "rows": [[_cell(r[c["name"]]) for c in columns] for r in head]}


def _text(store, digest: str) -> dict:
    with store.open(digest, verify=False) as fh:
        head = fh.read(PREVIEW_BYTES + 1)
    truncated = len(head) > PREVIEW_BYTES
    head = head[:PREVIEW_BYTES]
    if b"\x00" in head:
        return {"kind": "none", "note": "binary content: no text preview (download it)"}
    return {"kind": "text", "text": head.decode("utf-8", errors="replace"), "truncated": truncated}


def _listing(store, digest: str) -> dict:
    entries = store.get_manifest(digest).entries
    return {"kind": "listing", "count": len(entries), "size": sum(e.size for e in entries),
            "files": [{"path": e.path, "digest": e.digest, "size": e.size, "size_h": format_size(e.size),
                       "executable": e.executable} for e in entries[:LISTED_FILES]]}


def manifest_file(store, digest: str, path: str):
    """The entry `path` of the directory manifest `digest`; RefError naming both if there is none."""
    for entry in store.get_manifest(digest).entries:
        if entry.path == path:
            return entry
    raise RefError(f"directory {digest} has no file {path!r}")


def stream(store, digest: str) -> Iterator[bytes]:
    """The object's bytes, in chunks, verified as they are read (IntegrityError at the end
    if they no longer match the digest: the download stops short instead of lying)."""
    with store.open(digest, verify=True) as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def download_name(artifact: dict) -> str:
    """A file name for a download: the digest's first 12 hex characters and the kind's suffix."""
    hexpart = artifact["digest"].partition(":")[2][:12]
    kind = artifact.get("kind")
    suffix = ".json" if kind == VALUE_KIND else ".arrow" if storage_of(kind) is Storage.TABLE else ""
    return f"{artifact.get('kind') or 'artifact'}-{hexpart}{suffix}"
