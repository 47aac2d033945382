"""The Ray executor: every step is a Ray task, scheduled by Ray with its declared resources.

Ray is how Ledgerflow scales: the same workflow runs on a local Ray runtime or on a cluster
(`RAY_ADDRESS`). Only the driver writes the ledger; workers read and write the store.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
from typing import Any

import attrs

from ledgerflow.engine.events import FAILED, TIMEOUT
from ledgerflow.engine.fingerprint import is_user_code
from ledgerflow.engine.resources import Resources
from ledgerflow.engine.step import StepCall, StepOutcome, run_step
from ledgerflow.errors import ResourceError
from ledgerflow.executors.deadline import deadline


def _run_remote(task: Any, call: StepCall, timeout: float | None) -> StepOutcome:
    import ray

    with deadline(timeout, call.step, kill_process=True):
        outcome = run_step(attrs.evolve(call, task=task))
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    outcome = attrs.evolve(outcome, node=node)
    if outcome.error is not None:
        try:
            pickle.dumps(outcome.error)
        except Exception:  # an exception that cannot travel back: keep its text and traceback
            outcome = attrs.evolve(outcome, error=RuntimeError(f"{type(outcome.error).__name__}: {outcome.error}"))
    return outcome


@attrs.define
class _Flight:
    call: StepCall
    timeout: float | None
    submitted: float


def _fits(asked: Resources, node: dict[str, float]) -> bool:
    need = {"CPU": asked.num_cpus, "GPU": asked.num_gpus, "memory": asked.memory or 0, **asked.custom}
    return all(node.get(k, 0) >= v for k, v in need.items() if v)


class RayExecutor:
    """Runs steps as Ray tasks with `num_cpus`, `num_gpus`, `memory` and custom resources.

    Connects to `address` (or `RAY_ADDRESS`), else reuses a runtime this process already
    started, else starts a local one for the run and shuts it down afterwards.

    >>> run(pipeline, executor=RayExecutor(address="ray://head:10001"))   # doctest: +SKIP
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, init: dict[str, Any] | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.init_options = dict(init or {})
        self._owns_runtime = False
        self._flights: dict[Any, _Flight] = {}
        self._task_refs: dict[int, Any] = {}
        self._remote = None

    def _ray(self):
        import ray

        if not ray.is_initialized():
            options = {"include_dashboard": False, **self.init_options}
            ray.init(address=self.address, **options)
            self._owns_runtime = True
        if self._remote is None:
            self._remote = ray.remote(max_retries=0)(_run_remote)
        return ray

    def check(self, nodes: Any) -> None:
        """Refuse, before anything runs, a step that no node of the cluster could ever run."""
        ray = self._ray()
        alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        for node in nodes:
            asked = node.task.resources
            if not any(_fits(asked, r) for r in alive):
                have = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(r.items())
                                           if k in ("CPU", "GPU", "memory") or k in asked.custom) for r in alive)
                raise ResourceError(
                    f"step {node.name!r} asks for {_describe(asked)}, but no node of the Ray cluster can give "
                    f"that (nodes: {have or 'none alive'}). Lower the request in @task(resources=...) or add "
                    f"a node that has it (e.g. `ray start --num-gpus=1`).")

    def _publish(self, task: Any) -> Any:
        ref = self._task_refs.get(id(task))
        if ref is None:
            ray = self._ray()
            module = sys.modules.get(task.fn.__module__)
            if module is not None and is_user_code(task.fn):
                # Workers may not have the user's files on their path: ship the code by value.
                ray.cloudpickle.register_pickle_by_value(module)
            ref = self._task_refs[id(task)] = ray.put(task)
        return ref

    def submit(self, call: StepCall, *, timeout: float | None = None, resources: Resources | None = None) -> None:
        self._ray()
        r = resources or Resources()
        options: dict[str, Any] = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus}
        if r.memory:
            options["memory"] = r.memory
        if r.custom:
            options["resources"] = dict(r.custom)
        ref = self._remote.options(**options).remote(self._publish(call.task), attrs.evolve(call, task=None), timeout)
        self._flights[ref] = _Flight(call, timeout, time.monotonic())

    def wait(self, timeout: float | None = None) -> StepOutcome | None:
        if not self._flights:
            return None
        ray = self._ray()
        ready, _ = ray.wait(list(self._flights), num_returns=1, timeout=timeout)
        if not ready:
            return None
        flight = self._flights.pop(ready[0])
        try:
            return ray.get(ready[0])
        except Exception as e:  # the worker died (os._exit, SIGKILL, OOM) or the task was cancelled
            elapsed = time.monotonic() - flight.submitted
            timed_out = flight.timeout is not None and elapsed >= flight.timeout
            if timed_out:
                e = TimeoutError(f"step {flight.call.step!r} did not stop within its timeout of "
                                 f"{flight.timeout:g} s; its worker was killed")
            stamp = _now()
            return StepOutcome(step=flight.call.step, attempt=flight.call.attempt, status=TIMEOUT if timed_out else FAILED,
                               started_at=stamp, ended_at=stamp, node="ray", error=e,
                               traceback=f"{type(e).__name__}: {e}")

    def in_flight(self) -> int:
        return len(self._flights)

    def close(self) -> None:
        if self._flights:
            import ray

            for ref in self._flights:
                ray.cancel(ref, force=True)
            self._flights.clear()
        self._task_refs.clear()
        if self._owns_runtime:
            import ray

            ray.shutdown()
            self._owns_runtime = False


def _describe(r: Resources) -> str:
    parts = [f"num_cpus={r.num_cpus:g}"]
    if r.num_gpus:
        parts.append(f"num_gpus={r.num_gpus:g}")
    if r.memory:
        parts.append(f"memory={r.memory}")
    parts.extend(f"{k}={v:g}" for k, v in r.custom.items())
    return ", ".join(parts)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
