"""The runner: drives an Executor through a workflow's graph and reports to a Recorder.

It submits every step whose inputs are ready, reuses cached outputs, retries failed
attempts with exponential backoff, and stops scheduling after a step fails for good.
"""

from __future__ import annotations

import heapq
from collections import deque
import json
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any
import warnings

import attrs

from ledgerflow.engine import events as ev
from ledgerflow.engine.executor import Executor
from ledgerflow.engine.graph import Constant, FromInput, FromStep, Gather, Node, Source
from ledgerflow.engine.ids import new_id
from ledgerflow.engine.step import StepCall, StepOutcome, artifact_ref
from ledgerflow.engine.workflow import Workflow
from ledgerflow.errors import ExecutionFailed, IntegrityError, ObjectNotFound, ParameterError
from ledgerflow.store import Store, digest_bytes
from ledgerflow.types import TypeMismatch, conform, type_name
from ledgerflow.types.codec import decode

BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 30.0


def now() -> datetime:
    return datetime.now(timezone.utc)


@attrs.frozen
class StepResult:
    """How one step ended in an execution."""

    name: str
    task: str
    status: str
    attempts: int
    outputs: dict[str, Any]
    cache_key: str | None = None
    cached_from: str | None = None
    error: str | None = None


@attrs.frozen
class Execution:
    """One run of a workflow. `outputs` is what the workflow returns; `status` is "succeeded" or "failed"."""

    id: str
    workflow: str
    status: str
    params: dict[str, Any]
    outputs: Any
    steps: dict[str, StepResult]
    started_at: datetime
    ended_at: datetime
    error: str | None = None


def bind_params(wf: Workflow, params: dict[str, Any] | None) -> dict[str, Any]:
    """The workflow's parameters, defaults filled in and each checked against its type."""
    params = dict(params or {})
    declared = {p.name: p for p in wf.params}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParameterError(f"workflow {wf.name!r} has no parameter {unknown[0]!r}; its parameters are: "
                             + (", ".join(f"{p.name}: {type_name(p.type)}" for p in wf.params) or "none"))
    bound = {}
    for p in wf.params:
        if p.name not in params:
            if p.required:
                raise ParameterError(f"workflow {wf.name!r} needs parameter {p.name!r} ({type_name(p.type)}); "
                                     f"pass it in params={{{p.name!r}: ...}} or -p {p.name}=...")
            bound[p.name] = p.default
            continue
        try:
            bound[p.name] = conform(params[p.name], p.type, p.name)
        except TypeMismatch as e:
            raise ParameterError(f"workflow {wf.name!r}, parameter {e}") from None
    return bound


def cache_key(task: Any, inputs: ev.Binding) -> str:
    """Digest of the task fingerprint, its type signature and its inputs' digests."""
    payload = json.dumps([task.fingerprint, task.type_signature, [[n, r.digest] for n, r in inputs]])
    return digest_bytes(payload.encode())


@attrs.define
class _Run:
    wf: Workflow
    params: dict[str, Any]
    executor: Executor
    recorder: ev.Recorder
    store: Store
    use_cache: bool
    id: str
    values: dict[str, tuple[Any, ...]] = attrs.Factory(dict)  # step -> output values
    refs: dict[str, tuple[tuple[str, ev.ArtifactRef], ...]] = attrs.Factory(dict)
    input_refs: dict[str, ev.ArtifactRef] = attrs.Factory(dict)
    results: dict[str, StepResult] = attrs.Factory(dict)
    attempts: dict[str, int] = attrs.Factory(dict)
    started: dict[str, datetime] = attrs.Factory(dict)
    call_inputs: dict[str, ev.Binding] = attrs.Factory(dict)
    call_values: dict[str, tuple] = attrs.Factory(dict)
    nodes: dict[str, Node] = attrs.Factory(dict)
    keys: dict[str, str | None] = attrs.Factory(dict)
    retry_at: list = attrs.Factory(list)  # heap of (time, step)
    failure: tuple[str, BaseException] | None = None

    # -- resolving inputs -------------------------------------------------------------------
    def resolve(self, src: Source) -> tuple[Any, ev.ArtifactRef | None]:
        if isinstance(src, FromInput):
            return self.params[src.name], self.input_refs[src.name]
        if isinstance(src, FromStep):
            index = 0 if src.index is None else src.index
            node = self.nodes[src.step]
            if src.index is None and len(node.task.outputs) > 1:
                values = self.values[src.step]
                return tuple(values), artifact_ref(tuple(values), node.task.output)
            return self.values[src.step][index], self.refs[src.step][index][1]
        if isinstance(src, Gather):
            items = [self.resolve(i)[0] for i in src.items]
            return items, artifact_ref(items, src.type)
        assert isinstance(src, Constant)
        return src.value, artifact_ref(src.value, src.type)

    # -- the loop ---------------------------------------------------------------------------
    def go(self) -> None:
        nodes = self.wf.graph.nodes
        self.nodes = {n.name: n for n in nodes}
        waiting = {n.name: set(n.depends_on) for n in nodes}
        dependents: dict[str, list[str]] = {n.name: [] for n in nodes}
        for n in nodes:
            for d in n.depends_on:
                dependents[d].append(n.name)
        ready = deque(n.name for n in nodes if not waiting[n.name])

        def release(done: str) -> None:
            for child in dependents[done]:
                waiting[child].discard(done)
                if not waiting[child]:
                    ready.append(child)

        while True:
            while ready and self.failure is None:
                name = ready.popleft()
                if self.start(self.nodes[name]):
                    release(name)
            while self.retry_at and self.failure is None and self.retry_at[0][0] <= time.monotonic():
                self.submit(self.nodes[heapq.heappop(self.retry_at)[1]])
            pending_retry = self.retry_at[0][0] - time.monotonic() if self.retry_at and self.failure is None else None
            if self.executor.in_flight() == 0:
                if pending_retry is None:
                    return
                time.sleep(max(0.0, pending_retry))
                continue
            outcome = self.executor.wait(None if pending_retry is None else max(0.0, pending_retry))
            if outcome is not None and self.finish(self.nodes[outcome.step], outcome):
                release(outcome.step)

    def start(self, node: Node) -> bool:
        """Submit the step, or reuse cached outputs; True if it is already done."""
        inputs = [(name, *self.resolve(src)) for name, src in node.inputs]
        self.call_inputs[node.name] = tuple((name, ref) for name, _, ref in inputs)
        self.call_values[node.name] = tuple((name, value) for name, value, _ in inputs)
        key = cache_key(node.task, self.call_inputs[node.name]) if node.task.cache else None
        self.keys[node.name] = key
        if key and self.use_cache and self.reuse(node, key):
            return True
        self.submit(node)
        return False

    def submit(self, node: Node) -> None:
        attempt = self.attempts.get(node.name, 0) + 1
        self.attempts[node.name] = attempt
        self.started[node.name] = now()
        self.recorder.record(ev.StepStarted(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=node.task.fingerprint,
            attempt=attempt, started_at=self.started[node.name], cache_key=self.keys[node.name],
            resources=node.task.resources.to_json()))
        call = StepCall(execution_id=self.id, step=node.name, task=node.task, inputs=self.call_values[node.name],
                        attempt=attempt, store_url=self.store.url)
        self.executor.submit(call, timeout=node.task.timeout, resources=node.task.resources)

    def reuse(self, node: Node, key: str) -> bool:
        lookup = getattr(self.recorder, "lookup", None)
        entry = lookup(key) if lookup else None
        if entry is None:
            return False
        try:
            for _, ref in entry.outputs:
                if ref.kind != "value":
                    self.store.verify(ref.digest)
            values = tuple(decode(ref.value, tp) for (_, ref), (_, tp) in zip(entry.outputs, node.task.outputs))
        except (ObjectNotFound, IntegrityError, TypeError, ValueError) as e:
            warnings.warn(f"step {node.name!r}: cached outputs from {entry.step_ref} cannot be used ({e}); "
                          "running it again", stacklevel=2)
            return False
        stamp = now()
        self.values[node.name] = values
        self.refs[node.name] = entry.outputs
        self.results[node.name] = StepResult(node.name, node.task.qualname, ev.CACHED, 0,
                                             dict(zip((n for n, _ in entry.outputs), values)), key, entry.step_ref)
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=node.task.fingerprint,
            attempt=0, status=ev.CACHED, started_at=stamp, ended_at=stamp, inputs=self.call_inputs[node.name],
            outputs=entry.outputs, cache_key=key, cached_from=entry.step_ref, resources=node.task.resources.to_json()))
        return True

    def finish(self, node: Node, outcome: StepOutcome) -> bool:
        """Record an attempt; schedule a retry or note the failure. True if the step succeeded."""
        outputs = tuple((name, ref) for name, _, ref in outcome.outputs)
        for m in outcome.metrics:
            self.recorder.record(ev.MetricLogged(self.id, node.name, m.name, m.value, m.at, m.index))
        error_line = None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=node.task.fingerprint,
            attempt=outcome.attempt, status=outcome.status, started_at=outcome.started_at, ended_at=outcome.ended_at,
            inputs=self.call_inputs[node.name], outputs=outputs, cache_key=self.keys[node.name],
            resources=node.task.resources.to_json(), node=outcome.node, error=error_line, traceback=outcome.traceback))
        if outcome.status == ev.SUCCEEDED:
            self.values[node.name] = tuple(v for _, v, _ in outcome.outputs)
            self.refs[node.name] = outputs
            self.results[node.name] = StepResult(node.name, node.task.qualname, ev.SUCCEEDED, outcome.attempt,
                                                 {n: v for n, v, _ in outcome.outputs}, self.keys[node.name])
            return True
        if outcome.attempt <= node.task.retries and self.failure is None:
            delay = min(BACKOFF_BASE_S * 2 ** (outcome.attempt - 1), BACKOFF_MAX_S)
            heapq.heappush(self.retry_at, (time.monotonic() + delay, node.name))
        else:
            self.results[node.name] = StepResult(node.name, node.task.qualname, outcome.status, outcome.attempt, {},
                                                 self.keys[node.name], error=error_line)
            if self.failure is None:
                self.failure = (node.name, outcome.error)
        return False

    def output(self) -> tuple[Any, ev.Binding]:
        out = self.wf.graph.output
        if out is None:
            return None, ()
        if isinstance(out, tuple):
            resolved = [self.resolve(s) for s in out]
            return tuple(v for v, _ in resolved), tuple((f"return[{i}]", r) for i, (_, r) in enumerate(resolved))
        value, ref = self.resolve(out)
        return value, (("return", ref),)


def environment_json() -> str:
    import platform
    import sys

    return json.dumps({"python": sys.version.split()[0], "platform": platform.platform()}, sort_keys=True)


def execute(wf: Workflow, params: dict[str, Any] | None = None, *, executor: Executor, recorder: ev.Recorder,
            store: Store, cache: bool = True, replay_of: str | None = None, code_digest: str | None = None,
            environment: str | None = None) -> Execution:
    """Run wf's graph on executor, reporting to recorder; raise ExecutionFailed if a step fails."""
    if not isinstance(wf, Workflow):
        raise TypeError(f"run() takes a @workflow, not {wf!r}")
    bound = bind_params(wf, params)
    run = _Run(wf=wf, params=bound, executor=executor, recorder=recorder, store=store, use_cache=cache, id=new_id())
    run.input_refs = {p.name: artifact_ref(bound[p.name], p.type) for p in wf.params}
    started = now()
    recorder.record(ev.ExecutionStarted(
        execution_id=run.id, workflow=wf.qualname, workflow_fingerprint=wf.fingerprint,
        params=json.dumps({k: json.loads(r.value) for k, r in run.input_refs.items()}, sort_keys=True),
        inputs=tuple(run.input_refs.items()), executor=executor.name, started_at=started,
        host=socket.gethostname(), pid=os.getpid(), code_digest=code_digest,
        environment=environment or environment_json(), replay_of=replay_of))
    try:
        run.go()
    except BaseException:
        # Ctrl-C or a crash of the runner itself: the record says so before the error goes on.
        recorder.record(ev.ExecutionFinished(run.id, ev.CANCELLED, now(), error="interrupted by the user"))
        recorder.flush()
        raise
    if run.failure is not None:
        step, error = run.failure
        ended = now()
        message = f"{type(error).__name__}: {error}"
        recorder.record(ev.ExecutionFinished(run.id, ev.FAILED, ended, error=f"step {step!r} failed: {message}"))
        recorder.flush()
        execution = Execution(run.id, wf.qualname, ev.FAILED, bound, None, run.results, started, ended,
                              error=f"step {step!r} failed: {message}")
        node = wf.graph.node(step)
        raise ExecutionFailed(f"execution {run.id} of workflow {wf.name!r} failed: step {step!r} "
                              f"(task {node.task.qualname}, called at {node.site}) raised {message}",
                              execution=execution, step=step) from error
    value, outputs = run.output()
    ended = now()
    recorder.record(ev.ExecutionFinished(run.id, ev.SUCCEEDED, ended, outputs=outputs))
    recorder.flush()
    return Execution(run.id, wf.qualname, ev.SUCCEEDED, bound, value, run.results, started, ended)
