"""What a step asks of the machine that runs it."""

from __future__ import annotations

import json
import re

import attrs

from ledgerflow.errors import DefinitionError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value: int | str | None) -> int | None:
    """Bytes from an int or a string like "8GiB", "512MB", "1.5g".

    >>> parse_memory("8GiB"), parse_memory(1024), parse_memory(None)
    (8589934592, 1024, None)
    """
    if value is None or isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise DefinitionError(f"memory={value!r} is not a size: write bytes as an int or a string like '8GiB' or '512MB'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _non_negative(instance, attribute, value) -> None:
    if value is not None and value < 0:
        raise DefinitionError(f"Resources({attribute.name}={value}) must not be negative")


@attrs.frozen
class Resources:
    """CPUs, GPUs (fractions allowed), memory and custom Ray resources for one step.

    >>> Resources(num_cpus=2, num_gpus=0.5, memory="8GiB").memory
    8589934592
    """

    num_cpus: float = attrs.field(default=1, validator=_non_negative)
    num_gpus: float = attrs.field(default=0, validator=_non_negative)
    memory: int | None = attrs.field(default=None, converter=parse_memory, validator=_non_negative)
    custom: dict[str, float] = attrs.field(factory=dict, converter=lambda d: dict(sorted((d or {}).items())))

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)
