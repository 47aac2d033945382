"""The environment an execution ran in: Python, platform, installed packages, GPUs."""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata


def _gpus() -> dict:
    info: dict = {}
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        info["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
            info["devices"] = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            info["devices"] = []
    torch = sys.modules.get("torch")  # only if the user imported it: importing torch is slow
    if torch is not None and getattr(torch, "cuda", None) is not None:
        info["torch_cuda"] = torch.version.cuda
        info["torch_cuda_available"] = bool(torch.cuda.is_available())
    return info


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[tuple[str, str], ...]:
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower().replace("_", "-")] = dist.version
    return tuple(sorted(found.items()))


def capture() -> dict:
    """This process's environment, as recorded per execution (packages are read once per process)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": dict(_packages()),
        "gpus": _gpus(),
    }


def capture_json() -> str:
    return json.dumps(capture(), sort_keys=True)


def differences(recorded: dict, current: dict) -> list[str]:
    """What changed between two environments, one line each: 'numpy 1.26.4 -> 2.1.0', 'python 3.11 -> 3.12'."""
    lines = []
    for key in ("python", "implementation", "platform", "machine"):
        if recorded.get(key) != current.get(key):
            lines.append(f"{key} {recorded.get(key)} -> {current.get(key)}")
    old, new = recorded.get("packages", {}), current.get("packages", {})
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append(f"package {name} {old[name]} removed")
        elif name not in old:
            lines.append(f"package {name} {new[name]} added")
        elif old[name] != new[name]:
            lines.append(f"package {name} {old[name]} -> {new[name]}")
    if recorded.get("gpus", {}).get("devices") != current.get("gpus", {}).get("devices"):
        lines.append(f"gpus {recorded.get('gpus', {}).get('devices')} -> {current.get('gpus', {}).get('devices')}")
    return lines
