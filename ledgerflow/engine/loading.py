"""Finding a workflow from text: `path/to/file.py:pipeline` or `package.module:pipeline`."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from ledgerflow.engine.workflow import Workflow
from ledgerflow.errors import LedgerflowError, LoadError  # LoadError stays importable from here


def load_workflow(target: str) -> Workflow:
    """The @workflow named by `FILE.py:NAME` or `MODULE:NAME`.

    A file is imported as a module named after its stem, with its folder on sys.path so it
    can import its neighbours, as `python FILE.py` would.

    >>> load_workflow("pipeline.py:pipeline")      # a file in the current folder
    <workflow pipeline:pipeline: 2 steps>
    >>> load_workflow("pipeline:pipeline")         # the same, as a module
    <workflow pipeline:pipeline: 2 steps>
    """
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise LoadError(f"{target!r} is not FILE.py:WORKFLOW or MODULE:WORKFLOW (e.g. examples/digits.py:pipeline)")
    if where.endswith(".py") or "/" in where or Path(where).is_file():
        path = Path(where)
        if not path.is_file():
            raise LoadError(f"{where}: no such file")
        module = import_file(path)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules of the current folder
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise LoadError(f"cannot import module {where!r}: {e}") from e
        except SystemExit as e:
            raise LoadError(f"module {where!r}: importing it called sys.exit({e.code!r}); a workflow module "
                            "must not exit when imported") from None
    return workflow_in(module, name, target)


def import_file(path: Path):
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path:
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:
        # `sys.exit(0)` at import would end `lineage run` with 0 and nothing recorded.
        sys.modules.pop(name, None)
        raise LoadError(f"{path}: importing it called sys.exit({e.code!r}); a workflow file must not exit "
                        "when imported (put that under `if __name__ == \"__main__\":`)") from None
    except Exception as e:
        sys.modules.pop(name, None)
        if isinstance(e, LedgerflowError):
            raise
        raise LoadError(f"{path}: importing it raised {type(e).__name__}: {e}") from e
    return module


def workflow_in(module, qualname: str, target: str) -> Workflow:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            found = sorted(k for k, v in vars(module).items() if isinstance(v, Workflow))
            raise LoadError(f"{target}: no {qualname!r} in {module.__name__}; workflows there: "
                            + (", ".join(found) or "none"))
    if not isinstance(obj, Workflow):
        raise LoadError(f"{target}: {qualname!r} is a {type(obj).__name__}, not a @workflow")
    return obj


# A handle parameter given by reference: a digest (or prefix), or the occurrence that made it
# (`EXEC:step.output`, or `EXEC:step` for its `return`).
_REFERENCE = re.compile(r"^(blake3:[0-9a-f]+|(?:[0-9A-Z]{4,26}|latest(?:~\d{1,9})?):[\w.@\[\]-]+)$")


def _handle_from_text(text: str, tp: Any, pair: str) -> Any:
    """A File, Directory, Model or Dataset parameter from command-line text: a path (File and
    Dataset a file, Directory and Model a directory; a Dataset read from Parquet, CSV or Arrow
    IPC), else a reference to a recorded handle, which `run` resolves. ParameterError if neither."""
    from ledgerflow.errors import ParameterError
    from ledgerflow.types import type_name

    path = Path(text).expanduser()
    if text and path.exists():
        try:
            return tp.value_from_path(path)
        except ValueError as e:
            raise ParameterError(f"-p {pair!r}: {e}") from None
    if _REFERENCE.match(text):
        return text  # `run` finds the recorded handle, and records where it came from
    raise ParameterError(f"-p {pair!r}: a {type_name(tp)} parameter takes a path that exists, a digest (or unique "
                         f"prefix) of a recorded artifact, or EXECUTION_ID:step[.output]; {text!r} is none of them")


def params_from_text(wf: Workflow, pairs: list[str] | tuple[str, ...]) -> dict:
    """Workflow parameters from `name=value` strings, each converted to its declared type.

    >>> params_from_text(pipeline, ["n=500", "lr=1e-3"])
    {'n': 500, 'lr': 0.001}
    """
    from ledgerflow.errors import ParameterError
    from ledgerflow.types import type_name
    from ledgerflow.types.annotations import is_handle_type
    from ledgerflow.types.codec import parse_text

    declared = {p.name: p for p in wf.params}
    signature = ", ".join(f"{p.name}: {type_name(p.type)}" for p in wf.params) or "none"
    params = {}
    for given in pairs:
        name, sep, text = given.partition("=")
        pair = given if len(given) <= 80 else given[:60] + f"... ({len(given):,} characters)"  # as errors show it
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p {pair!r}: write parameters as name=value (e.g. -p n=500)")
        if name not in declared:
            raise ParameterError(f"-p {pair!r}: workflow {wf.name!r} has no parameter {name!r}; its parameters are: "
                                 f"{signature}")
        if is_handle_type(declared[name].type):
            params[name] = _handle_from_text(text, declared[name].type, pair)
            continue
        try:
            params[name] = parse_text(text, declared[name].type)
        except ValueError as e:
            raise ParameterError(f"-p {pair!r}: parameter {name!r} is {type_name(declared[name].type)}, "
                                 f"and {e}") from None
    missing = [p for p in wf.params if p.required and p.name not in params]
    if missing:
        raise ParameterError(f"workflow {wf.name!r} needs " + ", ".join(
            f"-p {p.name}=... ({type_name(p.type)})" for p in missing))
    return params
