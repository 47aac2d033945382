"""Directory trees in and out of the store: scanning into a manifest, checking out to disk.

Checkouts are copies, never hardlinks to objects: a user editing a file in a
checkout then edits their own copy, not the object every other run shares.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerflow.errors import StoreRefused
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
                raise StoreRefused(f"symlink {entry.path} points outside {top} (to {target}); refusing to store it")
            if not os.path.exists(target):
                raise StoreRefused(f"symlink {entry.path} points to nothing ({target}); refusing to store it")
            if os.path.isdir(target):
                if target in chain:
                    raise StoreRefused(f"symlink {entry.path} loops back to {target}; refusing to store it")
                _scan(store, top, real_root, rel, chain | {target}, out)
                continue
        st = os.stat(entry.path)  # follows an inside symlink to its target
        if stat.S_ISDIR(st.st_mode):
            _scan(store, top, real_root, rel, chain | {os.path.realpath(entry.path)}, out)
        elif stat.S_ISREG(st.st_mode):
            digest, size = store.put_file(entry.path)
            out.append(ManifestEntry(rel, digest, size, bool(st.st_mode & stat.S_IXUSR)))
        else:
            raise StoreRefused(f"{entry.path} is not a regular file, directory or symlink; refusing to store it")


def checkout(store: "Store", digest: str, dest: Path | None, *, verify: bool) -> Path:
    manifest = store.get_manifest(digest)
    scratch = store.scratch()
    if dest is None:
        final = scratch / CHECKOUTS / digest[len(PREFIX) :]
        if final.is_dir():
            if _looks_intact(final, manifest) or _rehashed(store, final, manifest):
                return final
            _remove_aside(final, scratch / TMP)
            _stamp_path(final).unlink(missing_ok=True)
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
        stamp = _stamp_of(building, manifest) if shared else None
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
    if stamp is not None:
        _write_stamp(final, stamp)
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


# A shared checkout is handed to every step that reads the Directory, so one edited in place
# (by a step that wrote into its input, or by hand) would feed changed bytes to the next. When
# it is built, each file's inode, size and mtime go into a stamp beside it; before it is handed
# out again every file is stat'ed against the stamp (one stat a file), and anything else (a
# file changed, added, removed, or no stamp) means re-hashing it against its manifest.
# `verify_checkout` re-hashes regardless, for `lineage verify`.


def _stamp_path(checkout: Path) -> Path:
    return checkout.with_name(checkout.name + ".stamp")


def _stamp_of(root: Path, manifest: Manifest) -> dict:
    out = {}
    for e in manifest.entries:
        st = os.lstat(root.joinpath(*e.path.split("/")))
        out[e.path] = [st.st_ino, st.st_size, st.st_mtime_ns]
    return out


def _write_stamp(checkout: Path, stamp: dict) -> None:
    path = _stamp_path(checkout)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps(stamp, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # without a stamp, the next use re-hashes it: slower, still right


def _files_under(root: Path) -> set:
    found = set()
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            found.add(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return found


def _looks_intact(path: Path, manifest: Manifest) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        if _files_under(path) != {e.path for e in manifest.entries}:
            return False
        return all(stamp.get(e.path) == [st.st_ino, st.st_size, st.st_mtime_ns] and stat.S_ISREG(st.st_mode)
                   for e in manifest.entries for st in [os.lstat(path.joinpath(*e.path.split("/")))])
    except (OSError, ValueError):
        return False


def _rehashed(store: "Store", path: Path, manifest: Manifest) -> bool:
    """True if every file of the checkout still hashes to its manifest entry (and nothing was
    added); the stamp is then written afresh."""
    if not verify_checkout(path, manifest):
        try:
            _write_stamp(path, _stamp_of(path, manifest))
        except OSError:
            return False
        return True
    return False


def verify_checkout(path: Path, manifest: Manifest) -> list:
    """What differs between a checkout and its manifest: [] when every file hashes to its entry
    and there is nothing else; else one line per difference."""
    from ledgerflow.regular_files import NotARegularFile, open_regular
    from ledgerflow.store.digest import Hasher

    problems = []
    expected = {e.path: e for e in manifest.entries}
    for extra in sorted(_files_under(path) - set(expected)):
        problems.append(f"{extra}: not in the directory it checks out")
    for rel, entry in expected.items():
        target = path.joinpath(*rel.split("/"))
        try:
            with open_regular(target, follow_symlinks=False) as f:
                hasher = Hasher()
                while chunk := f.read(_COPY_BUFFER):
                    hasher.update(chunk)
        except FileNotFoundError:
            problems.append(f"{rel}: removed")
            continue
        except (NotARegularFile, OSError) as exc:
            problems.append(f"{rel}: {exc.strerror or exc}")
            continue
        if hasher.digest() != entry.digest:
            problems.append(f"{rel}: changed (hashes to {hasher.digest()}, not {entry.digest})")
    return problems


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
