"""The smallest useful Ledgerflow pipeline: make a table, summarise it, record both.

    python examples/quickstart.py            # runs it, prints the execution id and outputs
    lineage run examples/quickstart.py:pipeline -p n=500
"""

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ledgerflow import Dataset, log_metric, run, task, workflow


@attrs.define
class Points:
    x: int
    y: int


@task(cache=True)
def ingest(n: int) -> Dataset[Points]:
    """n rows of (x, x mod 3)."""
    return pa.table({"x": list(range(n)), "y": [i % 3 for i in range(n)]})


@task(cache=True)
def summarize(data: Dataset[Points]) -> dict[str, float]:
    t = data.to_arrow()
    mean_x = pc.mean(t["x"]).as_py() if t.num_rows else 0.0
    log_metric("rows", t.num_rows)
    return {"rows": float(t.num_rows), "mean_x": float(mean_x)}


@workflow
def pipeline(n: int = 100) -> dict[str, float]:
    return summarize(data=ingest(n=n))


if __name__ == "__main__":
    ex = run(pipeline, params={"n": 500})
    print(f"execution {ex.id}: {ex.status}")
    print(f"outputs: {ex.outputs}")
    print(f"see it with: lineage show {ex.id}")
