"""Every parameter from the command line (issue 15, point 5): a File, a Directory or a Dataset
from a path, any recorded handle by digest, prefix or EXECUTION_ID:step[.output] (recorded as
provenance), an Enum by value or by name, a record as JSON, every missing parameter at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledgerflow import Ledger

ROOT = Path(__file__).parents[2]
LINEAGE = Path(sys.executable).with_name("lineage")

FLOW = '''
import enum
from pathlib import Path

import attrs
from ledgerflow import Dataset, Directory, File, task, workflow


@attrs.frozen
class Sale:
    region: str
    amount: float


class Coffee(enum.Enum):
    LATTE = "latte"
    ESPRESSO = "espresso"


@attrs.frozen
class Settings:
    depth: int
    rate: float


@task
def line_count(f: File) -> int:
    return len(Path(f.path).read_text().splitlines())


@task
def file_names(d: Directory) -> list[str]:
    return sorted(p.name for p in Path(d.path).iterdir())


@task
def total(sales: Dataset[Sale]) -> float:
    return float(sum(sales.to_arrow()["amount"].to_pylist()))


@task
def order(coffee: Coffee, settings: Settings) -> str:
    return f"{coffee.value}:{settings.depth}:{settings.rate}"


@workflow
def count_lines(data: File) -> int:
    return line_count(f=data)


@workflow
def list_dir(images: Directory) -> list[str]:
    return file_names(d=images)


@workflow
def sum_sales(sales: Dataset[Sale]) -> float:
    return total(sales=sales)


@workflow
def coffee(kind: Coffee, settings: Settings, extra: int) -> str:
    return order(coffee=kind, settings=settings)
'''


@pytest.fixture
def lineage(tmp_path):
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    home = tmp_path / "home"

    def call(*args):
        base = [str(LINEAGE)] if LINEAGE.exists() else [sys.executable, "-m", "ledgerflow.app.cli"]
        args = [a.replace("FLOW", str(script)) for a in args]
        return subprocess.run(base + ["--home", str(home), *args], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})

    call.home = home
    return call


def _ok(out) -> dict:
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.slow
def test_a_file_and_a_directory_from_paths(lineage, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "images").mkdir()
    for name in ("x.png", "y.png"):
        (tmp_path / "images" / name).write_bytes(b"\x89PNG")
    assert _ok(lineage("run", "FLOW:count_lines", "-p", "data=./data.csv", "--json"))["outputs"] == 3
    assert _ok(lineage("run", "FLOW:list_dir", "-p", "images=./images/", "--json"))["outputs"] == ["x.png", "y.png"]
    wrong = lineage("run", "FLOW:count_lines", "-p", "data=./images")
    assert wrong.returncode == 2 and "is a directory" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.slow
def test_a_dataset_from_csv_and_parquet_is_schema_checked(lineage, tmp_path):
    (tmp_path / "sales.csv").write_text("region,amount\nnorth,1.5\nsouth,2.5\n")
    pq.write_table(pa.table({"region": ["east"], "amount": [4.0]}), tmp_path / "sales.parquet")
    assert _ok(lineage("run", "FLOW:sum_sales", "-p", "sales=sales.csv", "--json"))["outputs"] == 4.0
    assert _ok(lineage("run", "FLOW:sum_sales", "-p", "sales=./sales.parquet", "--json"))["outputs"] == 4.0
    (tmp_path / "bad.csv").write_text("region,price\nnorth,1.5\n")
    bad = lineage("run", "FLOW:sum_sales", "-p", "sales=./bad.csv")
    assert bad.returncode == 2 and "amount" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.mark.slow
def test_a_recorded_handle_by_digest_prefix_or_step_links_the_runs(lineage, tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    first = _ok(lineage("run", "FLOW:count_lines", "-p", "data=./data.csv", "--json"))
    ledger = Ledger(lineage.home)
    digest = ledger.execution(first["id"]).inputs[0].artifact.digest
    for ref in (digest, digest[:16], f"{first['id']}:@params.data"):
        again = _ok(lineage("run", "FLOW:count_lines", "-p", f"data={ref}", "--json"))
        assert again["outputs"] == 2
        up = Ledger(lineage.home).upstream(again["id"])
        assert any(first["id"] in n.ref for n in up.nodes), ref  # lineage crosses into the first run
        # The ledger says how the link was made: carried by a named occurrence, or chosen by content.
        [source] = Ledger(lineage.home).execution(again["id"]).inputs
        assert source.how == ("reference" if ref.startswith(first["id"]) else "digest"), (ref, source)
        assert source.source == f"{first['id']}:@params.data"
    missing = lineage("run", "FLOW:count_lines", "-p", "data=./nope.csv")
    assert missing.returncode == 2 and "a path that exists" in missing.stderr


@pytest.mark.slow
def test_enums_by_value_or_name_records_as_json_and_every_missing_parameter(lineage):
    settings = '{"depth": 3, "rate": 0.5}'
    for kind in ("latte", "LATTE"):
        out = _ok(lineage("run", "FLOW:coffee", "-p", f"kind={kind}", "-p", f"settings={settings}", "-p", "extra=1",
                          "--json"))
        assert out["outputs"] == "latte:3:0.5"
    missing = lineage("run", "FLOW:coffee")
    assert missing.returncode == 2
    assert all(f"-p {p}=" in missing.stderr for p in ("kind", "settings", "extra")), missing.stderr
