"""Fast start: `import ledgerflow` and `lineage --help` leave duckdb, pyarrow and ray unloaded.

Timing is not asserted here (machines are noisy); bench/startup.py measures it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("duckdb", "pyarrow", "ray", "numpy")


def _loaded_after(code: str, tmp_path) -> list:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in %r if m in sys.modules)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "", "LEDGERFLOW_HOME": str(tmp_path / "home")}, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_ledgerflow_loads_no_heavy_module(tmp_path):
    assert _loaded_after("import ledgerflow", tmp_path) == []


def test_public_names_still_import(tmp_path):
    # The lazy names resolve (and only then load what they need).
    code = ("from ledgerflow import task, workflow, Resources, File, Directory, Dataset, Model, run, replay, "
            "Replay, Ledger, register, log_metric, map_task, when, MemoryRecorder, Execution, StepResult, Task, "
            "Workflow, ExecutionFailed, IntegrityError, LedgerflowError, ParameterError, StepOutputError, "
            "WorkflowTypeError\nimport ledgerflow\nassert ledgerflow.__version__\n"
            "assert set(ledgerflow.__all__) <= set(dir(ledgerflow))")
    assert set(_loaded_after(code, tmp_path)) >= {"duckdb"}  # Ledger was asked for, so the ledger loaded


def test_defining_a_workflow_loads_no_heavy_module(tmp_path):
    code = ("from ledgerflow import task, workflow, Dataset\n"
            "@task\ndef inc(x: int) -> int:\n    return x + 1\n"
            "@workflow\ndef wf(x: int = 0) -> int:\n    return inc(x=x)\n")
    assert _loaded_after(code, tmp_path) == []


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["list", "--help"], ["query", "sql", "--help"],
                                  ["show", "--help"], ["verify", "--help"], ["--version"]])
@pytest.mark.slow
def test_lineage_help_loads_no_heavy_module(tmp_path, argv):
    code = ("import sys\nfrom ledgerflow.app.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n")
    assert _loaded_after(code, tmp_path) == []
