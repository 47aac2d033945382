"""What a contributor relies on in the suite itself: docstring examples run, and the markers
deselect what the fast suite promises to leave out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ledgerflow

ROOT = Path(__file__).parents[2]
PACKAGE = Path(ledgerflow.__file__).parent


def test_no_docstring_example_is_skipped():
    # A skipped example is never checked, so it rots: every example runs (the root conftest.py
    # gives each a temporary home and a small pipeline) or is prose.
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "doctest: +SKIP" in line]
    assert not found, "make these examples run, or write them as prose:\n" + "\n".join(found)


def _selected(marks: str, *paths: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", marks, *paths], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return [line for line in out.stdout.splitlines() if "::" in line]


@pytest.mark.slow  # two pytest processes collecting
def test_the_fast_suite_leaves_out_ray_s3_postgres_and_the_browser():
    fast = "not ray and not s3 and not browser and not slow"
    # Whole modules that start Ray, the S3 server, PostgreSQL or Chromium: nothing of them is fast.
    assert _selected(fast, "tests/executors/test_ray_executor.py", "tests/store/test_store_s3.py",
                     "tests/lineage/test_team_ledger.py", "tests/app/test_ui.py") == []
    # A parametrized test runs its local/file cases and leaves out its Ray and PostgreSQL ones.
    kept = _selected(fast, "tests/engine/test_fanout_branching.py", "tests/lineage/test_ledger.py")
    assert kept and not [t for t in kept if "[ray]" in t or "[server]" in t]
    assert [t for t in kept if "[local]" in t] and [t for t in kept if "[file]" in t]
