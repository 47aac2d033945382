"""Code snapshots: the user's source files an execution ran, stored as a Directory.

A replay loads the workflow from its snapshot, not from today's working tree, so any
execution can be replayed after its code has changed.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import attrs

from ledgerflow.engine.dependencies import analyse
from ledgerflow.engine.fingerprint import is_user_code, is_user_file
from ledgerflow.engine.loading import LoadError, workflow_in
from ledgerflow.engine.workflow import Workflow
from ledgerflow.errors import IntegrityError, ObjectNotFound
from ledgerflow.store import Store

MANIFEST = "ledgerflow-snapshot.json"


def _modules(wf: Workflow) -> dict[str, Path]:
    """The user's modules the workflow's code depends on: the same analysis that makes the cache
    keys (engine/dependencies.py), so `import helper; helper.f()` is snapshotted as well as keyed."""
    found: dict[str, Path] = {}
    functions = {id(f): f for f in [wf.fn] + [n.task.fn for n in wf.graph.nodes]}  # a task called 1,000 times: once
    for fn in functions.values():
        if is_user_code(fn):
            found.update(analyse(fn).modules)
    return found


@attrs.frozen
class Snapshot:
    digest: str
    workflow: str  # "module:qualname" as importable from the snapshot


def take(wf: Workflow, store: Store) -> Snapshot:
    """Store the source files of wf's modules (not site-packages) and say how to load wf from them."""
    modules = _modules(wf)
    ref = wf.qualname
    with tempfile.TemporaryDirectory(prefix="ledgerflow-snapshot-") as tmp:
        root = Path(tmp)
        files = {}
        for name, path in sorted(modules.items()):
            parts = name.split(".")
            is_package = path.name == "__init__.py"
            relative = Path(*parts, "__init__.py") if is_package else Path(*parts).with_suffix(".py")
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / relative)
            files[name] = relative.as_posix()
            # Keep enclosing packages importable: copy their __init__.py too, innermost first.
            folder = path.parent.parent if is_package else path.parent
            for depth in range(len(parts) - 1, 0, -1):
                init, target = folder / "__init__.py", root / Path(*parts[:depth]) / "__init__.py"
                if init.is_file() and not target.exists():
                    shutil.copyfile(init, target)
                folder = folder.parent
        (root / MANIFEST).write_text(json.dumps({"workflow": ref, "modules": files}, sort_keys=True, indent=1))
        digest = store.put_directory(root)
    return Snapshot(digest=digest, workflow=ref)


@contextlib.contextmanager
def loaded(store: Store, digest: str):
    """Import the workflow of a snapshot under its original module names, for the block only.

    The modules this process already has under those names are set aside and restored after,
    so a replay neither sees nor disturbs today's code.
    """
    # Code to be imported is checked out privately, each file hashed against the digest the
    # ledger recorded as it is copied (a snapshot is a few source files, so this is cheap).
    # The store's shared checkout is only checked by file sizes: a same-size edit there, or
    # a planted __pycache__, would have been imported and run (found by tests/system/test_faults.py).
    with tempfile.TemporaryDirectory(prefix="ledgerflow-replay-") as tmp:
        try:
            root = store.checkout(digest, Path(tmp) / "code", verify=True)
        except (IntegrityError, ObjectNotFound) as e:
            raise LoadError(f"snapshot {digest} cannot be used: {e}") from e
        try:
            meta = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise LoadError(f"snapshot {digest} has no readable {MANIFEST}: {e}") from e
        names = list(meta["modules"])
        # Every user module is set aside while the snapshot is imported, not only those it
        # holds: one it lacks must fail to import, never come from today's files or from this
        # process's memory (whatever sys.path, PYTHONPATH or `python -m` say).
        saved = {name: sys.modules.pop(name) for name in list(sys.modules)
                 if name in names or _is_user_module(sys.modules.get(name))}
        guard = _SnapshotOnly(root, digest)
        sys.meta_path.insert(0, guard)
        sys.path.insert(0, str(root))
        try:
            module_part, _, qualname = meta["workflow"].partition(":")
            if module_part not in meta["modules"]:
                raise LoadError(f"workflow {meta['workflow']} was defined where its source is not a file "
                                "(an interactive session or a notebook), so its code was not snapshotted; "
                                "define it in a .py file to be able to replay it")
            import importlib

            try:
                module = importlib.import_module(module_part)
            except Exception as e:  # ImportError, or the module's own code failing here
                raise LoadError(f"the recorded code cannot be imported in this environment: "
                                f"{type(e).__name__}: {e}") from e
            yield workflow_in(module, qualname, meta["workflow"])
        finally:
            sys.path.remove(str(root))
            sys.meta_path.remove(guard)
            inside = str(root) + os.sep  # what the snapshot's own imports have as their __file__
            for name in [n for n, m in list(sys.modules.items()) if n in names or _is_user_module(m, inside)]:
                sys.modules.pop(name, None)
            sys.modules.update(saved)


def _is_user_module(module, inside: str | None = None) -> bool:
    """A module imported from one of the user's files (or, with `inside`, from the snapshot
    checked out in that folder)."""
    path = getattr(module, "__file__", None)
    if not path:
        return False
    if inside is not None and path.startswith(inside):
        return True
    return is_user_file(path)


class _SnapshotOnly(importlib.abc.MetaPathFinder):
    """While a replay imports its code: a user module the snapshot lacks is an error naming it."""

    def __init__(self, root: Path, digest: str):
        self.root, self.digest = root.resolve(), digest

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        origin = getattr(spec, "origin", None)
        if not origin or origin in ("built-in", "frozen") or Path(origin).resolve().is_relative_to(self.root):
            return None  # the snapshot's own, the standard library or a package: the usual finders
        if is_user_file(origin):
            raise ModuleNotFoundError(
                f"replay imports only the recorded code: module {name!r} is not in the code snapshot "
                f"{self.digest} (today's {origin} is not used); it was not found to be needed when the "
                "execution was recorded", name=name)
        return None
