"""Synthetic, realistic event streams for the ledger tests (lineage/test_ledger_events.py checks them).

`pipeline_events` emits what the runner would for ingest -> train -> evaluate: the
parameters as value artifacts, a dataset, a model, a metric, optional failed attempts.
Other test modules (and subprocesses) import it: `from ledger_events import ...`.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime, timedelta, timezone

from blake3 import blake3

from ledgerflow.engine.events import (
    FROM_REFERENCE,
    Origin,
    FAILED,
    SUCCEEDED,
    ArtifactRef,
    ExecutionFinished,
    ExecutionStarted,
    MetricLogged,
    StepFinished,
    StepStarted,
)

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)


def new_id() -> str:
    return "01JD" + uuid.uuid4().hex[:22].upper()


def digest_of(*parts) -> str:
    return "blake3:" + blake3(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def value(v, type_: str) -> ArtifactRef:
    text = json.dumps(v)
    return ArtifactRef(digest=digest_of("value", text), kind="value", type=type_, size=len(text), value=text)


def handle(kind: str, type_: str, *derived_from) -> ArtifactRef:
    d = digest_of(kind, *derived_from)
    return ArtifactRef(digest=d, kind=kind, type=type_, size=1000, uri=f"store://{d}")


def steps_of(execution_id, step, task, inputs, outputs, at, *, attempts_failing=0, cache_key=None, cached_from=None):
    """Events for one step: failed attempts first, then a success (or a cache hit)."""
    evs = []
    fp = digest_of("fp", task)
    attempt = 1
    for _ in range(attempts_failing):
        evs.append(StepStarted(execution_id, step, task, fp, attempt, at, cache_key=cache_key))
        evs.append(
            StepFinished(
                execution_id, step, task, fp, attempt, FAILED, at, at + timedelta(seconds=1),
                inputs=inputs, cache_key=cache_key, node=socket.gethostname(),
                error="RuntimeError: CUDA out of memory", traceback="Traceback (most recent call last):\n  ...",
            )
        )
        attempt += 1
        at += timedelta(seconds=2)
    status = "cached" if cached_from else SUCCEEDED
    if not cached_from:
        evs.append(StepStarted(execution_id, step, task, fp, attempt, at, cache_key=cache_key))
    evs.append(
        StepFinished(
            execution_id, step, task, fp, attempt, status, at, at + timedelta(seconds=3),
            inputs=inputs, outputs=outputs, cache_key=cache_key, cached_from=cached_from,
            node=socket.gethostname(), resources='{"num_cpus": 1}',
        )
    )
    return evs


def pipeline_events(
    *,
    execution_id: str | None = None,
    n: int = 500,
    lr: float = 0.001,
    train_failures: int = 0,
    t0: datetime = T0,
    finish: bool = True,
    fail_evaluate: bool = False,
):
    """ingest(n) -> dataset; train(dataset, lr) -> model; evaluate(model, dataset) -> score.

    Returns (events, artifacts) where artifacts maps "n", "lr", "dataset", "model", "score".
    """
    e = execution_id or new_id()
    a_n, a_lr = value(n, "int"), value(lr, "float")
    ds = handle("dataset", "Dataset[Digits]", "ingest", n)
    model = handle("model", "Model[sklearn]", "train", ds.digest, lr)
    score = value(round(0.9 + lr, 6), "float")
    evs = [
        ExecutionStarted(
            e, "examples.quickstart:pipeline", digest_of("wf"), json.dumps({"n": n, "lr": lr}),
            (("n", a_n), ("lr", a_lr)), "local", t0, socket.gethostname(), os.getpid(),
            code_digest=digest_of("code"), environment=json.dumps({"python": "3.11"}),
        )
    ]
    at = t0
    evs += steps_of(e, "ingest", "examples.quickstart:ingest", (("n", a_n),), (("return", ds),), at,
                    cache_key=digest_of("ck", "ingest", n))
    at += timedelta(seconds=5)
    evs += steps_of(e, "train", "examples.quickstart:train", (("data", ds), ("lr", a_lr)), (("return", model),), at,
                    attempts_failing=train_failures, cache_key=digest_of("ck", "train", ds.digest, lr))
    evs.append(MetricLogged(e, "train", "loss", 0.25, at + timedelta(seconds=2), index=1))
    at += timedelta(seconds=10)
    if fail_evaluate:
        evs += steps_of(e, "evaluate", "examples.quickstart:evaluate", (("model", model), ("data", ds)), (), at,
                        attempts_failing=1)[:2]
    else:
        evs += steps_of(e, "evaluate", "examples.quickstart:evaluate", (("model", model), ("data", ds)),
                        (("return", score),), at)
        evs.append(MetricLogged(e, "evaluate", "accuracy", 0.97, at + timedelta(seconds=3)))
    if finish:
        if fail_evaluate:
            evs.append(ExecutionFinished(e, FAILED, at + timedelta(seconds=4), error="RuntimeError: CUDA out of memory"))
        else:
            evs.append(ExecutionFinished(e, SUCCEEDED, at + timedelta(seconds=4), outputs=(("model", model), ("score", score))))
    return evs, {"n": a_n, "lr": a_lr, "dataset": ds, "model": model, "score": score, "id": e}


def retrain_events(dataset: ArtifactRef, *, lr: float, execution_id: str | None = None, t0: datetime = T0,
                   dataset_from: str | None = None):
    """A second workflow that takes an existing dataset as a parameter and trains on it.

    `dataset_from`: the execution whose `ingest` made the dataset, when the handle was passed
    on by reference (so the ledger records the link); None for bytes that arrived unlinked.
    """
    e = execution_id or new_id()
    a_lr = value(lr, "float")
    model = handle("model", "Model[sklearn]", "train", dataset.digest, lr)
    evs = [
        ExecutionStarted(
            e, "examples.retrain:retrain", digest_of("wf2"), json.dumps({"data": dataset.digest, "lr": lr}),
            (("data", dataset), ("lr", a_lr)), "local", t0, socket.gethostname(), os.getpid(),
            sources=(("data", Origin(dataset_from, "ingest", "return", FROM_REFERENCE)),) if dataset_from else (),
        )
    ]
    evs += steps_of(e, "train", "examples.quickstart:train", (("data", dataset), ("lr", a_lr)), (("return", model),), t0)
    evs.append(ExecutionFinished(e, SUCCEEDED, t0 + timedelta(seconds=5), outputs=(("model", model),)))
    return evs, {"lr": a_lr, "model": model, "id": e}


def chain_events(steps: int, *, execution_id: str | None = None, t0: datetime = T0, finish: bool = True):
    """A linear execution of `steps` steps, each consuming the last one's output."""
    e = execution_id or new_id()
    seed = value(steps, "int")
    evs = [ExecutionStarted(e, "bench:chain", "fp", json.dumps({"steps": steps}), (("steps", seed),), "local", t0,
                            socket.gethostname(), os.getpid())]
    prev = seed
    for i in range(steps):
        out = handle("file", "File", e, i)
        evs += steps_of(e, f"s{i}", "bench:step", (("x", prev),), (("return", out),), t0 + timedelta(seconds=i))
        prev = out
    if finish:
        evs.append(ExecutionFinished(e, SUCCEEDED, t0 + timedelta(seconds=steps), outputs=(("result", prev),)))
    return evs
