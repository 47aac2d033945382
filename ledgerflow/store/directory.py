"""Directory trees in and out of the store: scanning into a manifest, checking out to disk.

Checkouts are copies, never hardlinks to objects: a user editing a file in a
checkout then edits their own copy, not the object every other run shares.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerflow.store.digest import PREFIX
from ledgerflow.store.layout import CHECKOUTS, TMP
from ledgerflow.store.manifest import Manifest, ManifestEntry

if TYPE_CHECKING:
    from ledgerflow.store.cas import Store

_COPY_BUFFER = 1 << 20


def put_directory(store: "Store", root: Path) -> str:
    """Store every file under `root` and the manifest listing them; return the manifest digest.

    Symlinks are followed when they point inside `root` (the target's content is
    stored under the link's path) and refused when they point outside it, dangle,
    or loop. Sockets, FIFOs and devices are refused. Empty directories are not
    recorded.
    """
    if not root.is_dir():
        raise NotADirectoryError(f"cannot store {root} as a directory: it is not one")
    real_root = os.path.realpath(root)
    entries: list[ManifestEntry] = []
    _scan(store, root, real_root, "", {real_root}, entries)
    return store.put_bytes(Manifest(tuple(entries)).to_bytes())


def _scan(store: "Store", top: Path, real_root: str, prefix: str, chain: set[str], out: list[ManifestEntry]) -> None:
    with os.scandir(os.path.join(top, prefix) if prefix else top) as it:
        listing = sorted(it, key=lambda e: e.name)
    for entry in listing:
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if target != real_root and not target.startswith(real_root + os.sep):
                raise ValueError(f"symlink {entry.path} points outside {top} (to {target}); refusing to store it")
            if not os.path.exists(target):
                raise ValueError(f"symlink {entry.path} points to nothing ({target}); refusing to store it")
            if os.path.isdir(target):
                if target in chain:
                    raise ValueError(f"symlink {entry.path} loops back to {target}; refusing to store it")
                _scan(store, top, real_root, rel, chain | {target}, out)
                continue
        st = os.stat(entry.path)  # follows an inside symlink to its target
        if stat.S_ISDIR(st.st_mode):
            _scan(store, top, real_root, rel, chain | {os.path.realpath(entry.path)}, out)
        elif stat.S_ISREG(st.st_mode):
            digest, size = store.put_file(entry.path)
            out.append(ManifestEntry(rel, digest, size, bool(st.st_mode & stat.S_IXUSR)))
        else:
            raise ValueError(f"{entry.path} is not a regular file, directory or symlink; refusing to store it")


def checkout(store: "Store", digest: str, dest: Path | None, *, verify: bool) -> Path:
    manifest = store.get_manifest(digest)
    scratch = store._backend.scratch()
    if dest is None:
        final = scratch / CHECKOUTS / digest[len(PREFIX) :]
        if final.is_dir():
            if _looks_intact(final, manifest):
                return final
            _remove_aside(final, scratch / TMP)
        building = _fresh_dir(scratch / TMP, "checkout-")
        shared = True
    else:
        final = Path(dest).absolute()
        if final.exists() and (not final.is_dir() or any(final.iterdir())):
            raise FileExistsError(f"cannot check out {digest} into {final}: it exists and is not an empty directory")
        final.parent.mkdir(parents=True, exist_ok=True)
        # A sibling, so the final rename stays on one filesystem and is atomic.
        building = _fresh_dir(final.parent, f".{final.name}.tmp-")
        shared = False
    try:
        for entry in manifest.entries:
            _materialize(store, entry, building, read_only=shared, verify=verify)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(building, final)  # replaces an empty dir; fails on a full one
        except OSError:
            if shared and final.is_dir():  # another process built the same checkout first
                shutil.rmtree(building, ignore_errors=True)
                return final
            raise
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final


def _materialize(store: "Store", entry: ManifestEntry, into: Path, *, read_only: bool, verify: bool) -> None:
    target = into.joinpath(*entry.path.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if read_only:
        mode = 0o555 if entry.executable else 0o444
    else:
        mode = 0o777 if entry.executable else 0o666  # the umask narrows these, as for any new file
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "wb") as out, store.open(entry.digest, verify=verify) as src:
        shutil.copyfileobj(src, out, _COPY_BUFFER)


def _looks_intact(path: Path, manifest: Manifest) -> bool:
    # Cheap (one stat per file), not proof: the shared checkout's files are
    # read-only, and this catches deletions and most edits.
    try:
        return all(path.joinpath(*e.path.split("/")).stat().st_size == e.size for e in manifest.entries)
    except OSError:
        return False


def _remove_aside(path: Path, tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    aside = tmp / f"damaged-{secrets.token_hex(8)}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(8)}"
    path.mkdir()
    return path
