"""The Ray executor: every step is a Ray task, scheduled by Ray with its declared resources.

Ray is how Ledgerflow scales: the same workflow runs on a local Ray runtime or on a cluster
(`RAY_ADDRESS`). Only the driver writes the ledger; workers read and write the store.
"""

from __future__ import annotations

import collections
import functools
import os
import pickle
import socket
import sys
import time
from typing import Any

import attrs

from ledgerflow.engine import capture, environment
from ledgerflow.engine.events import FAILED, TIMEOUT
from ledgerflow.engine.fingerprint import is_user_code
from ledgerflow.engine.resources import Resources
from ledgerflow.engine.step import StepCall, StepOutcome, run_step
from ledgerflow.errors import ResourceError
from ledgerflow.store import digest_bytes
from ledgerflow.executors import ray_cluster
from ledgerflow.executors.deadline import deadline


BATCH_WINDOW_S = 0.005  # how long a wait gathers completions into one batch
_TASKS: dict[str, Any] = {}  # in a worker: tasks already unpickled, by the digest of their bytes
_ENVIRONMENT_SENT: set[str] = set()  # in a worker: executions its environment was already sent to


@functools.lru_cache(maxsize=1)
def _node_name() -> str:
    """hostname/ray-node-id of this worker: the same for every step it runs."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def _pack(value: Any, *, by_reference_first: bool = False) -> bytes:
    """One step's call, or its outcome, as the single bytes object that crosses Ray.

    Ray serialises every argument of a task on its own: measured, a call passed as four
    arguments cost 0.08 ms a step more than the same pickled into one bytes object, and an
    outcome returned as an object 0.05 ms more than as bytes. Cloudpickle, as Ray would, so that
    a value of a class defined in the driver's script travels by value. An outcome goes back to
    the driver, which has the classes a worker could name: plain pickle first (several times
    faster), cloudpickle for what it cannot pickle (a class the worker got by value).
    """
    import ray

    if by_reference_first:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
    return ray.cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _run_remote(packed: bytes) -> bytes:
    """In a Ray worker: run one attempt packed by the driver, and return its packed outcome."""
    import ray

    task_key, task_bytes, call, timeout = pickle.loads(packed)
    task = _TASKS.get(task_key)
    if task is None:
        task = _TASKS[task_key] = ray.cloudpickle.loads(task_bytes)
        # This process runs steps only: its capture of stdout, stderr and logging stays put
        # between steps instead of being put up and taken down for each (a root-logger level
        # change, which clears every logger's cache: ~30 µs a step in a Ray worker).
        capture.stay_installed()
    with deadline(timeout, call.step, kill_process=True):
        outcome = run_step(attrs.evolve(call, task=task))
    changes: dict[str, Any] = {"node": _node_name()}
    if call.execution_id not in _ENVIRONMENT_SENT:
        # Once per worker and execution: the driver records each node's environment per execution.
        _ENVIRONMENT_SENT.add(call.execution_id)
        changes["environment"] = environment.capture_json()
    if outcome.error is not None:
        try:
            pickle.dumps(outcome.error)
        except Exception:  # an exception that cannot travel back: keep its text and traceback
            changes["error"] = RuntimeError(f"{type(outcome.error).__name__}: {outcome.error}")
    return _pack(attrs.evolve(outcome, **changes), by_reference_first=True)


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

    Joins `address` (or `RAY_ADDRESS`; `auto` for the cluster last started on this host) on
    purpose, else reuses a runtime this process already started, else starts a private local
    one for the run and shuts it down afterwards (never the host's "current" cluster: see
    `ray_cluster`). `where` says which, for the record.

    To run on a cluster::

        run(pipeline, executor=RayExecutor(address="ray://head:10001"))

    Nothing starts when the executor is made; Ray starts (or is joined) at the first step
    to run, so a run whose steps are all cache hits never starts it:

    >>> from ledgerflow import run
    >>> executor = RayExecutor()
    >>> executor.where
    'a private local Ray runtime'
    >>> first = run(pipeline)                        # locally: the steps run, and are cached
    >>> again = run(pipeline, executor=executor)     # every step cached: Ray is not started
    >>> again.outputs, [str(step.status) for step in again.steps.values()]
    (4.5, ['cached', 'cached'])
    """

    name = "ray"

    capacity = None  # Ray schedules what it is given by resources, and queues the rest

    def __init__(self, address: str | None = None, *, init: dict[str, Any] | None = None):
        self.cluster = ray_cluster.choose(address)
        self.address = self.cluster.address
        if self.address is not None:
            import ray

            if not ray.is_initialized():
                # A cluster asked for by name is checked now, before a run records anything: gone,
                # it is one line naming it (Ray starts, or joins, later: at the first step to run).
                ray_cluster.reachable(self.cluster)
        self.init_options = dict(init or {})
        self._owns_runtime = False
        self._flights: dict[Any, _Flight] = {}
        self._tasks: dict[int, tuple[str, bytes]] = {}
        self._remote = None
        self._remote_options: dict[tuple, Any] = {}
        self._done: collections.deque[StepOutcome] = collections.deque()  # came back, not yet handed out

    def _ray(self):
        import ray

        if not ray.is_initialized():
            # Only what Ledgerflow uses: no dashboard (nor its agent's HTTP server), no usage report.
            options = {"include_dashboard": False, **self.init_options}
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            self._owns_runtime = ray_cluster.connect(self.cluster, options)
        elif self.cluster.source == "private":
            self.cluster = ray_cluster.Cluster(None, "this process")  # a runtime this process started before
        if self._remote is None:
            self._remote = ray.remote(max_retries=0)(_run_remote)
        return ray

    @property
    def where(self) -> str:
        """Which Ray runtime the steps run on, in words (recorded with the execution)."""
        return self.cluster.description

    def check(self, nodes: Any, store: Any = None) -> None:
        """Refuse, before anything runs, what cannot work: a step that no node of the cluster could
        ever run, or a store on this machine's disk that other nodes cannot reach. (The runner asks
        at its first submit: a run of cache hits never starts Ray.)"""
        ray = self._ray()
        alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        if store is not None and store.is_local and len(alive) > 1 and not os.environ.get("LEDGERFLOW_SHARED_STORE"):
            raise ResourceError(
                f"the store {store.url} is a local path, but the Ray cluster has {len(alive)} nodes and the others "
                "cannot read this machine's disk. Use an object store (LEDGERFLOW_STORE=s3://bucket/prefix, or any "
                "fsspec URL), or, if that path is a shared filesystem mounted on every node, set "
                "LEDGERFLOW_SHARED_STORE=1.")
        for node in nodes:
            asked = node.task.resources
            if not any(_fits(asked, r) for r in alive):
                have = "; ".join(", ".join(f"{k}={_amount(k, v)}" for k, v in sorted(r.items())
                                           if k in ("CPU", "GPU", "memory") or k in asked.custom) for r in alive)
                raise ResourceError(
                    f"step {node.name!r} asks for {_describe(asked)}, but no node of the Ray cluster can give "
                    f"that (nodes: {have or 'none alive'}). Lower the request in @task(resources=...) or add "
                    f"a node that has it (e.g. `ray start --num-gpus=1`).")

    def _publish(self, task: Any) -> tuple[str, bytes]:
        """The task pickled once, with a key workers cache it under.

        Small bytes inline in the call beat an object reference the worker must fetch for
        every step (measured: 1.9x slower for a chain of trivial steps).
        """
        packed = self._tasks.get(id(task))
        if packed is None:
            ray = self._ray()
            module = sys.modules.get(task.fn.__module__)
            if module is not None and is_user_code(task.fn):
                # Workers may not have the user's files on their path: ship the code by value.
                ray.cloudpickle.register_pickle_by_value(module)
            blob = ray.cloudpickle.dumps(task)
            packed = self._tasks[id(task)] = (digest_bytes(blob), blob)
        return packed

    def _remote_for(self, r: Resources, name: str) -> Any:
        # Named after the task: Ray prefixes what a task prints with its name, `(train pid=...)`.
        # Per task, not per step, so the options (~0.1 ms each in Ray) are made once per task.
        key = (r.num_cpus, r.num_gpus, r.memory, tuple(r.custom.items()), name)
        remote = self._remote_options.get(key)
        if remote is None:
            options: dict[str, Any] = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "name": name}
            if r.memory:
                options["memory"] = r.memory
            if r.custom:
                options["resources"] = dict(r.custom)
            remote = self._remote_options[key] = self._remote.options(**options)
        return remote

    def submit(self, call: StepCall, *, timeout: float | None = None, resources: Resources | None = None) -> None:
        self._ray()
        key, blob = self._publish(call.task)
        remote = self._remote_for(resources or Resources(), call.task.name)
        ref = remote.remote(_pack((key, blob, attrs.evolve(call, task=None), timeout)))
        self._flights[ref] = _Flight(call, timeout, time.monotonic())

    def wait(self, timeout: float | None = None) -> StepOutcome | None:
        if self._done:
            return self._done.popleft()
        if not self._flights:
            return None
        ray = self._ray()
        refs = list(self._flights)
        # Completions are taken in batches: every one done within a short window, in one wait and
        # one get, rather than a wait over all the flights per step (n² for a fan-out of n). With
        # one flight (a chain) the wait returns the moment it is done: no latency added.
        window = BATCH_WINDOW_S if timeout is None else min(timeout, BATCH_WINDOW_S)
        ready, rest = ray.wait(refs, num_returns=len(refs), timeout=window)
        if not ready:
            remaining = None if timeout is None else max(0.0, timeout - window)
            ready, rest = ray.wait(refs, num_returns=1, timeout=remaining)
            if not ready:
                return None
            if rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
        self._done.extend(self._outcomes(ray, ready))
        return self._done.popleft()

    def _outcomes(self, ray, refs: list) -> list[StepOutcome]:
        try:
            values = ray.get(refs)
        except Exception:  # one of them failed to come back: take them one by one
            return [self._outcome(ray, ref) for ref in refs]
        for ref in refs:
            self._flights.pop(ref)
        return [pickle.loads(v) for v in values]

    def _outcome(self, ray, ref) -> StepOutcome:
        flight = self._flights.pop(ref)
        try:
            return pickle.loads(ray.get(ref))
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
        return len(self._flights) + len(self._done)

    def close(self) -> None:
        self._done.clear()
        if self._flights:
            import ray

            for ref in self._flights:
                ray.cancel(ref, force=True)
            self._flights.clear()
        self._tasks.clear()
        self._remote_options.clear()
        if self._owns_runtime:
            import ray

            ray.shutdown()
            self._owns_runtime = False


def _amount(name: str, value: float) -> str:
    return f"{value / 2**30:.1f}GiB" if name == "memory" else f"{value:g}"


def _describe(r: Resources) -> str:
    parts = [f"num_cpus={r.num_cpus:g}"]
    if r.num_gpus:
        parts.append(f"num_gpus={r.num_gpus:g}")
    if r.memory:
        parts.append(f"memory={_amount('memory', r.memory)}")
    parts.extend(f"{k}={v:g}" for k, v in r.custom.items())
    return ", ".join(parts)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
