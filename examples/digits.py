"""A real training pipeline: handwritten digits, a hyperparameter sweep on Ray, an evaluation gate.

    python examples/digits.py                      # or: lineage run examples/digits.py:pipeline
    python examples/digits.py --gamma 0.0005,0.001,0.004

ingest -> validate -> split -> train (one step per hyperparameter set, in parallel)
-> evaluate -> pick the best -> gate (accuracy above the threshold and at least as good as
the model registered as `production`) -> register, or reject.

The data is scikit-learn's bundled digits set (1,797 8x8 images; no download). Models are
saved with skops, a format that does not execute code when loaded (never a bare pickle).
"""

from __future__ import annotations

import argparse
import io
import re
import tempfile
import zipfile
from pathlib import Path

import attrs
import numpy as np
import pyarrow as pa

from ledgerflow import Dataset, Model, Resources, log_metric, map_task, register, run, task, when, workflow
from ledgerflow.lineage import Ledger


@attrs.define
class Digit:
    """One image: 64 pixel intensities (0-16) and the digit it shows."""

    pixels: list[float]
    label: int


@attrs.frozen
class Hyper:
    """One point of the sweep: an RBF support vector classifier's C and gamma."""

    C: float
    gamma: float


SKLEARN = "sklearn"


def save(model: object, path: Path) -> None:
    """Save with skops, byte for byte the same for the same model, so replays compare equal.

    A skops file is a zip whose entry names and `__id__` fields are Python object ids and
    whose entries carry the time of writing; all three change from run to run. Renumbering
    them in order of appearance and fixing the timestamps keeps the format loadable by skops
    and makes the bytes depend on the model alone.
    """
    from skops.io import dumps

    src = zipfile.ZipFile(io.BytesIO(dumps(model)))
    schema = src.read("schema.json").decode()
    arrays = sorted((n for n in src.namelist() if n != "schema.json"), key=lambda n: (schema.find(f'"{n}"'), n))
    renamed = {old: f"{i:04d}{Path(old).suffix}" for i, old in enumerate(arrays)}
    for old, new in renamed.items():
        schema = schema.replace(f'"{old}"', f'"{new}"')
    ids: dict[str, int] = {}
    schema = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {ids.setdefault(m.group(1), len(ids))}', schema)
    entries = [("schema.json", schema.encode())] + [(renamed[n], src.read(n)) for n in arrays]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, payload in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            out.writestr(info, payload)


def _arrays(data: Dataset[Digit]) -> tuple[np.ndarray, np.ndarray]:
    table = data.to_arrow()
    pixels = np.asarray(table["pixels"].combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    return pixels.reshape(table.num_rows, -1), table["label"].to_numpy()


@task(cache=True)
def ingest(limit: int) -> Dataset[Digit]:
    """The bundled digits, at most `limit` rows."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = min(limit, len(digits.target))
    return pa.table({
        "pixels": pa.array([row.tolist() for row in digits.data[:n]], pa.list_(pa.float64())),
        "label": pa.array(digits.target[:n], pa.int64()),
    })


@task(cache=True)
def validate(data: Dataset[Digit]) -> Dataset[Digit]:
    """Refuse data a model should not be trained on: wrong shape, out-of-range pixels, bad labels."""
    x, y = _arrays(data)
    if x.shape[1] != 64:
        raise ValueError(f"expected 64 pixels per image, found {x.shape[1]}")
    if x.min() < 0 or x.max() > 16:
        raise ValueError(f"pixel intensities must lie in [0, 16]; found [{x.min()}, {x.max()}]")
    if not set(np.unique(y)) <= set(range(10)):
        raise ValueError(f"labels must be digits 0-9; found {sorted(set(np.unique(y)) - set(range(10)))}")
    if len(np.unique(y)) < 2:
        raise ValueError("need at least two classes to train a classifier")
    log_metric("rows", len(y))
    return data


@task(cache=True)
def split(data: Dataset[Digit], test_fraction: float, seed: int) -> tuple[Dataset[Digit], Dataset[Digit]]:
    """A seeded, stratified-enough shuffle split: the same seed gives the same two datasets."""
    table = data.to_arrow()
    order = np.random.default_rng(seed).permutation(table.num_rows)
    cut = int(round(table.num_rows * (1 - test_fraction)))
    return table.take(np.sort(order[:cut])), table.take(np.sort(order[cut:]))


@task
def grid(C: float, gammas: list[float]) -> list[Hyper]:
    return [Hyper(C=C, gamma=g) for g in gammas]


@task(cache=True, resources=Resources(num_cpus=1))
def train(data: Dataset[Digit], hyper: Hyper) -> Model["sklearn"]:
    from sklearn.svm import SVC

    x, y = _arrays(data)
    model = SVC(C=hyper.C, gamma=hyper.gamma).fit(x, y)
    out = Path(tempfile.mkdtemp(prefix="digits-model-"))
    save(model, out / "model.skops")
    log_metric("train_accuracy", float((model.predict(x) == y).mean()))
    return Model.from_path(out, flavor=SKLEARN)


def load(model: Model) -> object:
    """Load a model saved by `train`, allowing only the types skops finds in it (no code runs)."""
    from skops.io import get_untrusted_types, load as skops_load

    path = model.path / "model.skops"
    return skops_load(path, trusted=get_untrusted_types(file=path))


@task(cache=True)
def evaluate(model: Model["sklearn"], data: Dataset[Digit]) -> float:
    x, y = _arrays(data)
    accuracy = float((load(model).predict(x) == y).mean())
    log_metric("accuracy", accuracy)
    return accuracy


@task
def pick_best(models: list[Model["sklearn"]], scores: list[float]) -> tuple[Model["sklearn"], float]:
    best = int(np.argmax(scores))
    log_metric("best_accuracy", scores[best])
    return models[best], scores[best]


@task
def production_accuracy(name: str) -> float:
    """The accuracy recorded for the version now aliased `production` (-1.0 if there is none)."""
    current = Ledger().model(name, alias="production")
    return float(current.metrics.get("accuracy", -1.0)) if current else -1.0


@task
def gate(accuracy: float, threshold: float, production: float) -> bool:
    passed = accuracy >= threshold and accuracy >= production
    log_metric("gate_passed", int(passed))
    return passed


@task
def promote(model: Model["sklearn"], accuracy: float, name: str) -> str:
    register(name, model, alias="production", metrics={"accuracy": accuracy},
             why=f"passed the gate with accuracy {accuracy:.4f}")
    return f"registered {name} ({model.digest[:19]}) as production, accuracy {accuracy:.4f}"


@task
def reject(accuracy: float, threshold: float, production: float) -> str:
    return (f"not registered: accuracy {accuracy:.4f} is below the threshold {threshold} "
            f"or the production model's {production:.4f}")


@workflow
def pipeline(limit: int = 1797, test_fraction: float = 0.25, seed: int = 0, C: float = 10.0,
             gammas: list[float] = [0.0005, 0.001, 0.002], threshold: float = 0.9, name: str = "digits") -> str:
    data = validate(data=ingest(limit=limit))
    train_set, test_set = split(data=data, test_fraction=test_fraction, seed=seed)
    models = map_task(train, data=train_set, hyper=grid(C=C, gammas=gammas))
    scores = map_task(evaluate, model=models, data=test_set)
    best, accuracy = pick_best(models=models, scores=scores)
    baseline = production_accuracy(name=name)
    return when(gate(accuracy=accuracy, threshold=threshold, production=baseline),
                then=lambda: promote(model=best, accuracy=accuracy, name=name),
                otherwise=lambda: reject(accuracy=accuracy, threshold=threshold, production=baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", default="ray", choices=["ray", "local"])
    parser.add_argument("--gamma", default="0.0005,0.001,0.002", help="comma-separated gammas to sweep")
    parser.add_argument("--C", type=float, default=10.0)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    params = {"gammas": [float(g) for g in args.gamma.split(",")], "C": args.C, "threshold": args.threshold}
    ex = run(pipeline, params=params, executor=args.executor)
    ledger = Ledger()
    detail = ledger.execution(ex.id)
    print(f"\nexecution {ex.id}: {ex.status}")
    for step in detail.steps:
        for m in step.metrics:  # a cache hit records the metrics of the step it reused
            note = "  (cached)" if m.reused_from else ""
            print(f"  {step.step:<14} {m.name:<15} {m.value:.4f}{note}")
    print(f"\n{ex.outputs}")
    current = ledger.model("digits", alias="production")
    if current:
        print(f"production model: digits v{current.version} ({current.digest[:19]}), from execution "
              f"{current.execution_id}")
    print(f"""
Look at it with:
  lineage show {ex.id}
  lineage models
  lineage query upstream {current.digest[:19] if current else 'DIGEST'}
  lineage replay {ex.id}
  lineage graph {ex.id} --format html > digits.html""")


if __name__ == "__main__":
    main()
