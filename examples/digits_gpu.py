"""The digits pipeline's GPU variant: a small torch network trained with `num_gpus=1`.

    python examples/digits_gpu.py            # where a GPU exists (and torch is installed)

Where there is no GPU, or no torch, it says so and exits without running anything: Ray would
otherwise refuse a `num_gpus=1` step before the run starts (see ledgerflow.errors.ResourceError).
The data steps are the CPU pipeline's own (examples/digits.py), so their results are shared
through the cache; the weights are saved as plain .npy arrays, a format that runs no code
when loaded.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from ledgerflow import Dataset, Model, Resources, log_metric, run, task, workflow

sys.path.insert(0, str(Path(__file__).parent))
from digits import Digit, _arrays, ingest, split, validate  # noqa: E402


def gpu_available() -> str | None:
    """None if the GPU variant can run here, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible on this machine"
    return None


@task(cache=True, resources=Resources(num_cpus=1, num_gpus=1, memory="2GiB"), timeout=1800, retries=1)
def train_gpu(data: Dataset[Digit], epochs: int, lr: float, seed: int) -> Model["torch"]:
    import os

    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda")
    x, y = _arrays(data)
    xs = torch.tensor(x / 16.0, dtype=torch.float32, device=device)
    ys = torch.tensor(y, dtype=torch.long, device=device)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    for epoch in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xs), ys)
        loss.backward()
        optimizer.step()
        log_metric("loss", float(loss), index=epoch)
    log_metric("cuda_visible_devices", float(os.environ.get("CUDA_VISIBLE_DEVICES", "-1").split(",")[0] or -1))
    out = Path(tempfile.mkdtemp(prefix="digits-torch-"))
    for name, tensor in net.state_dict().items():
        np.save(out / f"{name}.npy", tensor.detach().cpu().numpy(), allow_pickle=False)
    return Model.from_path(out, flavor="torch")


@task(cache=True)
def evaluate_gpu(model: Model["torch"], data: Dataset[Digit]) -> float:
    x, y = _arrays(data)
    weights = {p.stem: np.load(p, allow_pickle=False) for p in model.path.glob("*.npy")}
    hidden = np.maximum(x / 16.0 @ weights["0.weight"].T + weights["0.bias"], 0)
    accuracy = float(((hidden @ weights["2.weight"].T + weights["2.bias"]).argmax(1) == y).mean())
    log_metric("accuracy", accuracy)
    return accuracy


@workflow
def pipeline(limit: int = 1797, epochs: int = 200, lr: float = 0.01, seed: int = 0) -> float:
    train_set, test_set = split(data=validate(data=ingest(limit=limit)), test_fraction=0.25, seed=seed)
    return evaluate_gpu(model=train_gpu(data=train_set, epochs=epochs, lr=lr, seed=seed), data=test_set)


if __name__ == "__main__":
    why_not = gpu_available()
    if why_not:
        print(f"skipping the GPU variant: {why_not}. The CPU pipeline is examples/digits.py.")
        sys.exit(0)
    ex = run(pipeline, executor="ray")
    print(f"execution {ex.id}: {ex.status}, test accuracy {ex.outputs:.4f}")
    print(f"see it with: lineage show {ex.id}")
