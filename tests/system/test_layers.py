"""The package's layers hold: no import runs up a layer, and no subpackage imports in a cycle.

Layers, bottom up (docs/architecture.md): the base modules (errors, home, liveness, ...), then
store, types, engine, executors, lineage, and app (the application: run, replay, the CLI,
the UI). A module may import its own layer and those below.
Imports under `if TYPE_CHECKING:` are for annotations only and do not count; imports inside
functions do, in both checks: a lazy import is still a dependency, and a cycle hidden in a
function is still two modules that cannot be understood one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ledgerflow

ROOT = Path(ledgerflow.__file__).parent
LAYERS = ("(base)", "store", "types", "engine", "executors", "lineage", "app")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The ledgerflow modules `path` imports (a `from package import name` naming a submodule
    counts as that submodule)."""
    out: set[str] = set()

    def visit(nodes, in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ledgerflow"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    out.add(sub if sub in MODULES else node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("ledgerflow"))
            is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if is_function and top_level_only:
                continue
            visit(ast.iter_child_nodes(node), in_function or is_function)

    visit(ast.parse(path.read_text()).body, False)
    return {m for m in out if m in MODULES}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the package itself: it re-exports the public API from every layer
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else 0


def test_no_import_runs_up_a_layer():
    upward = sorted(f"{m} imports {d}" for m, path in MODULES.items() if layer(m) >= 0
                    for d in _imports(path, top_level_only=False) if layer(d) > layer(m))
    assert not upward, "\n".join(upward)


def test_no_subpackage_imports_in_a_cycle():
    graph = {m: {d for d in _imports(p, top_level_only=False) if d != m} for m, p in MODULES.items()}
    cycles = []
    for package in {m.rsplit(".", 1)[0] for m in MODULES if m.count(".") >= 2}:
        inside = {m for m in graph if m.startswith(package + ".")}
        cycle = _a_cycle({m: graph[m] & inside for m in inside})
        if cycle:
            cycles.append(" -> ".join(cycle))
    assert not cycles, "\n".join(cycles)


def _a_cycle(graph: dict) -> list | None:
    state: dict = {}

    def walk(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = walk(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = walk(start, [start])
            if found:
                return found
    return None


def test_the_walk_sees_the_imports_it_checks():
    # The checker itself: it finds a known import, and a known layer order.
    assert "ledgerflow.engine.step" in _imports(MODULES["ledgerflow.executors.local"], top_level_only=True)
    assert layer("ledgerflow.app.running") > layer("ledgerflow.lineage.ledger") > layer("ledgerflow.engine.runner") \
        > layer("ledgerflow.store.cas")


def test_lineage_is_the_ledger_library_only():
    # The application (run, replay, register, the CLI, the UI, progress) lives in app/: nothing in
    # lineage/ composes executors, and no module below app/ reaches the application.
    assert not [m for m in MODULES if m.startswith("ledgerflow.lineage.") and any(
        d.startswith("ledgerflow.executors") for d in _imports(MODULES[m], top_level_only=False))]


def test_no_module_reaches_into_another_modules_privates():
    # `from ledgerflow.x import _name` and `module._name` on an imported ledgerflow module: what
    # a module keeps private may change without notice, so no other module may lean on it.
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ledgerflow"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        found.append(f"{name}:{node.lineno} imports {node.module}.{a.name}")
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                aliases.update({a.asname or a.name.split(".")[0]: a.name for a in node.names
                                if a.name.startswith("ledgerflow")})
        found += [f"{name}:{node.lineno} reads {node.value.id}.{node.attr}" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not found, "make these public (a name and a docstring) or keep them inside their module:\n" + \
        "\n".join(found)
