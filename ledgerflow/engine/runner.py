"""The runner: drives an Executor through a workflow's graph and reports to a Recorder.

It submits every step whose inputs are ready, reuses cached outputs, retries failed
attempts with exponential backoff, and stops scheduling after a step fails for good.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import re
import signal
import socket
import threading
import time
import warnings
from collections import deque
from datetime import datetime, timezone
from typing import Any, Optional

import attrs

from ledgerflow.engine import blueprint
from ledgerflow.engine import environment as env
from ledgerflow.engine import events as ev
from ledgerflow.engine.capture import adopt_spools
from ledgerflow.engine.executor import ChecksBeforeRun, Executor
from ledgerflow.engine.failure import HANDLER_STEP, Failure
from ledgerflow.engine.graph import Choice, Constant, FromInput, FromStep, Gather, Guard, Node, Source, upstream_steps
from ledgerflow.engine.tracing import Builder, tracing
from ledgerflow.engine.ids import new_id
from ledgerflow.engine.step import StepCall, StepOutcome, artifact_ref
from ledgerflow.engine.workflow import Workflow
from ledgerflow.errors import ExecutionFailed, IntegrityError, NotAWorkflow, ObjectNotFound, ParameterError
from ledgerflow.store import Store, digest_bytes
from ledgerflow.types.annotations import is_record_type, record_fields
from ledgerflow.types import Handle, TypeMismatch, as_declared, conform, type_name
from ledgerflow.types.codec import decode, handles_inside, value_digest
from ledgerflow.types.kinds import VALUE_KIND

BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 30.0

log = logging.getLogger("ledgerflow")


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
    missing = [p for p in wf.params if p.required and p.name not in params]
    if missing:  # all of them at once, not one per run
        raise ParameterError(f"workflow {wf.name!r} needs " + ", ".join(
            f"parameter {p.name!r} ({type_name(p.type)})" for p in missing) + "; pass them in params={...} or as "
            + " ".join(f"-p {p.name}=..." for p in missing))
    bound = {}
    for p in wf.params:
        if p.name not in params:
            bound[p.name] = p.default
            continue
        try:
            bound[p.name] = conform(params[p.name], p.type, p.name)
        except TypeMismatch as e:
            raise ParameterError(f"workflow {wf.name!r}, parameter {e}") from None
        except RecursionError:
            raise ParameterError(f"workflow {wf.name!r}, parameter {p.name!r}: the value is nested too deeply "
                                 f"to check against {type_name(p.type)}") from None
    return bound


def cache_key(identity: Any, inputs: ev.Binding) -> str:
    """Digest of the task's identity (code, values it reads, cache_version, signature, engine)
    and its inputs' digests."""
    payload = json.dumps([identity.fingerprint, [[n, r.digest] for n, r in inputs]])
    return digest_bytes(payload.encode())


@attrs.define
class _Run:
    """The state of one execution while the runner drives it."""

    wf: Workflow
    params: dict[str, Any]
    executor: Executor
    recorder: ev.Recorder
    store: Store
    use_cache: bool
    id: str
    home: str | None = None
    recompute: frozenset = frozenset()  # steps (or tasks) to run even with a cached result
    identities: dict = attrs.Factory(dict)  # task -> its TaskIdentity in this run
    forced: dict = attrs.Factory(dict)  # step -> why it runs although its result may be cached
    nodes: dict[str, Node] = attrs.Factory(dict)
    values: dict[str, tuple[Any, ...]] = attrs.Factory(dict)  # step -> output values
    refs: dict[str, ev.Binding] = attrs.Factory(dict)  # step -> output artifacts
    input_refs: dict[str, ev.ArtifactRef] = attrs.Factory(dict)
    results: dict[str, StepResult] = attrs.Factory(dict)
    attempts: dict[str, int] = attrs.Factory(dict)
    started: dict[str, datetime] = attrs.Factory(dict)
    call_inputs: dict[str, ev.Binding] = attrs.Factory(dict)
    call_sources: dict[str, ev.Sources] = attrs.Factory(dict)  # step -> where each input came from
    element_origins: dict[str, dict] = attrs.Factory(dict)  # map element -> {param: Origin}
    call_values: dict[str, tuple] = attrs.Factory(dict)
    keys: dict[str, str | None] = attrs.Factory(dict)
    retry_at: list = attrs.Factory(list)  # heap of (monotonic time, step)
    checked: bool = False  # whether the executor checked the graph (`check`, at the first submit)
    completed: deque = attrs.Factory(deque)  # graph nodes just done, whose dependents may be ready
    map_elements: dict[str, list[str]] = attrs.Factory(dict)  # map node -> its element steps
    map_open: dict[str, int] = attrs.Factory(dict)  # map node -> elements not yet ended
    map_failed: dict[str, list[str]] = attrs.Factory(dict)  # map node -> elements that failed for good
    map_of: dict[str, str] = attrs.Factory(dict)  # element step -> its map node
    nodes_seen: set[str] = attrs.Factory(set)  # remote nodes whose environment is recorded already
    errors: dict[str, BaseException] = attrs.Factory(dict)  # step -> the error that failed it for good
    failure: tuple[str, BaseException] | None = None
    # The loop's dependency state: kept on the run so that a dynamic step can add steps while it runs.
    waiting: dict[str, set] = attrs.Factory(dict)  # step -> steps it still waits for
    dependents: dict[str, list] = attrs.Factory(dict)  # step -> steps waiting for it
    ready: deque = attrs.Factory(deque)
    dynamic_out: dict[str, Source] = attrs.Factory(dict)  # expanded dynamic step -> what it returns
    depth: dict[str, int] = attrs.Factory(dict)  # step -> how many dynamic steps deep it was made
    # Whether the recorder answers cache keys (an ActionCache, as the ledger is); asked once.
    caches: bool = attrs.field(init=False, default=attrs.Factory(lambda self: isinstance(self.recorder, ev.ActionCache),
                                                                   takes_self=True))

    # -- what a task depends on ---------------------------------------------------------------
    def identity(self, task: Any):
        """The task's identity for this run, made once (the values it reads are read now) and
        recorded once, so every step of the task in this run has the same key parts."""
        found = self.identities.get(task)
        if found is None:
            found = self.identities[task] = task.identity()
            self.recorder.record(ev.TaskIdentified(self.id, task.qualname, found.fingerprint, found.parts))
            if found.unencodable and task.cache:
                warnings.warn(f"task {task.qualname} is not cached in this run: it reads "
                              f"{', '.join(found.unencodable)}, which has no canonical value to key the cache "
                              "on; set cache_version= on the task to cache it anyway (and bump it when that "
                              "value changes)", stacklevel=4)
        return found

    def fingerprint(self, task: Any) -> str:
        return self.identity(task).fingerprint

    # -- resolving inputs -------------------------------------------------------------------
    def resolve(self, src: Source) -> tuple[Any, ev.ArtifactRef]:
        if isinstance(src, FromInput):
            return self.params[src.name], self.input_refs[src.name]
        if isinstance(src, FromStep):
            node = self.nodes[src.step]
            if src.index is None and len(node.task.outputs) > 1 and not node.mapped:
                values = self.values[src.step]
                return tuple(values), artifact_ref(tuple(values), node.task.output)
            index = 0 if src.index is None else src.index
            if src.field is not None:  # `res.model`: one field of a record
                value = getattr(self.values[src.step][index], src.field)
                return value, artifact_ref(value, src.type)
            return self.values[src.step][index], self.refs[src.step][index][1]
        if isinstance(src, Gather):
            built = src.build([self.resolve(i)[0] for i in src.items])
            return built, artifact_ref(built, src.type)
        if isinstance(src, Choice):
            return self.resolve(src.then if self.resolve(src.condition)[0] else src.otherwise)
        return src.value, artifact_ref(src.value, src.type)

    def origin(self, src: Source) -> ev.Origin | None:
        """The occurrence a source's value comes from; None for a literal, a list written in the
        body or a tuple passed whole (their parts have origins: see `parts`)."""
        if isinstance(src, FromInput):
            return ev.Origin(self.id, blueprint.PARAMS, src.name, ev.FROM_PARAM)
        if isinstance(src, FromStep):
            if blueprint.is_whole_tuple(self.nodes[src.step], src.index, src.field):
                return None
            return ev.Origin(self.id, src.step, src.slot, ev.FROM_STEP)
        if isinstance(src, Choice):
            return self.origin(self.taken(src))
        return None

    def taken(self, choice: Choice) -> Source:
        return choice.then if self.resolve(choice.condition)[0] else choice.otherwise

    def parts(self, name: str, src: Source) -> list:
        """(name, artifact, origin) of the parts of a value that no step made whole: the elements
        of a list or dict written in the body (`xs[0]`, `opts[lr]`) and of a tuple passed whole (`p[0]`),
        so that lineage runs through them to the steps that made each part."""
        if isinstance(src, FromStep) and blueprint.is_whole_tuple(self.nodes[src.step], src.index, src.field):
            return [(f"{name}[{i}]", ref, ev.Origin(self.id, src.step, slot, ev.FROM_STEP))
                    for i, (slot, ref) in enumerate(self.refs[src.step])
                    if i < len(self.nodes[src.step].task.outputs)]
        if isinstance(src, Gather):
            out: list = []
            for i, item in enumerate(src.items):
                out.append((f"{name}{src.label(i)}", self.resolve(item)[1], self.origin(item)))
                out.extend(self.parts(f"{name}{src.label(i)}", item))
            return out
        if isinstance(src, Choice):
            return self.parts(name, self.taken(src))
        return []

    def bind(self, named, refs: dict, origins: dict) -> tuple[ev.Binding, ev.Sources]:
        """Inputs (or the workflow's outputs) as the ledger records them: each value, its parts
        and the handles nested in it, with the origin of each that came from somewhere."""
        bindings: list = []
        sources: list = []
        for name, src in named:
            items = [(name, refs[name], origins.get(name))] + self.parts(name, src)
            for item_name, ref, origin in items:
                for n, r, o in with_nested(item_name, ref, origin):
                    bindings.append((n, r))
                    if o is not None:
                        sources.append((n, o))
        return tuple(bindings), tuple(sources)

    # -- the loop ---------------------------------------------------------------------------
    def go(self) -> None:
        self.nodes = {}
        self.add_nodes(self.wf.graph.nodes)
        ready = self.ready
        while True:
            while (self.completed or (ready and self.has_room())) and self.failure is None:
                while self.completed:
                    finished = self.completed.popleft()
                    for child in self.dependents.get(finished, ()):
                        self.waiting[child].discard(finished)
                        if not self.waiting[child]:
                            ready.append(child)
                if ready and self.has_room():
                    self.start(self.nodes[ready.popleft()])
            while (self.retry_at and self.failure is None and self.retry_at[0][0] <= time.monotonic()
                   and self.has_room()):
                self.submit(self.nodes[heapq.heappop(self.retry_at)[1]])
            pending_retry = self.retry_at[0][0] - time.monotonic() if self.retry_at and self.failure is None else None
            if self.executor.in_flight() == 0:
                if pending_retry is None:
                    return
                time.sleep(max(0.0, pending_retry))
                continue
            outcome = self.executor.wait(None if pending_retry is None else max(0.0, pending_retry))
            if outcome is not None:
                self.finish(self.nodes[outcome.step], outcome)

    def has_room(self) -> bool:
        """Whether the executor can start another attempt now (see `Executor.capacity`)."""
        capacity = self.executor.capacity
        return capacity is None or self.executor.in_flight() < capacity

    def handle_failure(self, handler: Any) -> None:
        """Run the workflow's on_failure task, once, with what failed; the failure stands whatever
        the handler does (it is not retried: the run is already failing)."""
        step, error = self.failure
        failed = self.nodes[step]
        failure = Failure(self.id, self.wf.qualname, step, failed.task.qualname, f"{type(error).__name__}: {error}",
                          self.attempts.get(step, 1))
        name = HANDLER_STEP if HANDLER_STEP not in self.nodes else f"{HANDLER_STEP}_2"
        node = Node(name=name, task=handler, inputs=(("failure", Constant(failure, Failure)),), site=self.wf.site)
        self.nodes[name] = node
        self.start(node)
        while self.executor.in_flight():
            outcome = self.executor.wait(None)
            if outcome is not None:
                self.finish(self.nodes[outcome.step], outcome)

    def add_nodes(self, nodes) -> None:
        """Steps join the run: each waits for the steps it depends on (those not done yet)."""
        for n in nodes:
            self.nodes[n.name] = n
            self.dependents.setdefault(n.name, [])
        for n in nodes:
            deps = {d for d in n.depends_on if d not in self.results}
            self.waiting[n.name] = deps
            for d in deps:
                self.dependents.setdefault(d, []).append(n.name)
            if not deps:
                self.ready.append(n.name)

    # -- dynamic steps ---------------------------------------------------------------------
    def expand_dynamic(self, node: Node, inputs: list) -> None:
        """Run a dynamic step's body with the real values of its inputs: the tasks it calls are
        traced, type-checked and added to this execution as `step.task`, and the step finishes
        with what its body returned, once those steps are done."""
        self.started[node.name] = now()
        depth = self.depth.get(node.name, 0) + 1
        self.recorder.record(ev.StepStarted(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=1, started_at=self.started[node.name], resources=node.task.resources_json))
        if depth > MAX_DYNAMIC_DEPTH:
            self.fail_node(node, RecursionError(
                f"dynamic step {node.name!r} is nested {depth} deep (the limit is {MAX_DYNAMIC_DEPTH}): does "
                f"the recursion of {node.task.qualname} end?"))
            return
        builder = Builder(f"{self.wf.name}/{node.name}")
        try:
            with tracing(builder):
                result = node.task.fn(**{name: value for name, value, _ in inputs})
            out = builder.source_for(result, node.task.output, lambda suffix="": (
                f"dynamic step {node.name!r} (task {node.task.qualname}) returned{suffix}"))
        except Exception as e:  # noqa: BLE001 - its body's failure (or a type error in it) fails the step
            self.fail_node(node, e)
            return
        renamed = {n.name: f"{node.name}.{n.name}" for n in builder.nodes}
        added = [attrs.evolve(n, name=renamed[n.name], inputs=tuple((k, rename(src, renamed)) for k, src in n.inputs),
                              guards=tuple(attrs.evolve(g, condition=rename(g.condition, renamed)) for g in n.guards),
                              after=tuple(renamed[a] for a in n.after))
                 for n in builder.nodes]
        out = rename(out, renamed)
        self.recorder.record(ev.GraphRecorded(self.id, f"dynamic:{node.name}",
                                              blueprint.part_spec(added, out, node.name), now()))
        for n in added:
            self.depth[n.name] = depth
        self.dynamic_out[node.name] = out
        self.add_nodes(added)
        # The step itself finishes once what it returns is there: it waits for those steps.
        waits = {s for s in upstream_steps(out) if s not in self.results}
        self.waiting[node.name] = waits
        for s in waits:
            self.dependents.setdefault(s, []).append(node.name)
        if not waits:
            self.ready.append(node.name)

    def finish_dynamic(self, node: Node) -> None:
        out = self.dynamic_out.pop(node.name)
        value, ref = self.resolve(out)
        self.values[node.name] = self.with_origins(node.name, (value,))
        self.refs[node.name] = (("return", ref),)
        self.results[node.name] = StepResult(node.name, node.task.qualname, ev.SUCCEEDED, 1, {"return": value})
        # What it returned, recorded as consumed from the step inside that made it: lineage runs
        # from the dynamic step's output into the steps its body added.
        origin = self.origin(out)
        inputs = self.call_inputs[node.name] + (("return", ref),)
        sources = self.call_sources[node.name] + ((("return", origin),) if origin is not None else ())
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=1, status=ev.SUCCEEDED, started_at=self.started[node.name], ended_at=now(), inputs=inputs,
            outputs=nested_outputs(self.refs[node.name]), resources=node.task.resources_json, sources=sources,
            condition=f"dynamic: {len([n for n in self.nodes if n.startswith(node.name + '.')])} steps added"))
        self.done(node.name)

    def done(self, name: str) -> None:
        """Mark a step finished so that what depends on it can start (or, for a map element, its map)."""
        parent = self.map_of.get(name)
        if parent is None:
            self.completed.append(name)
        else:
            self.element_ended(parent)

    def start(self, node: Node) -> None:
        """Skip it (a branch not taken), expand it (a map, a dynamic step), reuse cached outputs,
        or submit it."""
        if node.name in self.dynamic_out:  # a dynamic step whose body's steps are done
            self.finish_dynamic(node)
            return
        for guard in node.guards:
            value = self.resolve(guard.condition)[0]
            if bool(value) != guard.expected:
                self.skip(node, guard, value)
                return
        declared = {p.name: p.type for p in node.task.params}
        inputs = []
        for name, src in node.inputs:
            value, ref = self.resolve(src)
            inputs.append((name, as_declared(value, declared.get(name)), ref))
        if node.mapped and node.map_index is None:
            self.expand(node, inputs)
            return
        bindings = tuple((name, ref) for name, _, ref in inputs)
        # A guarded step also took the value that decided it runs: recorded as its input
        # `when=True` (or False), so its lineage reaches the deciding step.
        guards = tuple((f"when={g.expected}", g.condition) for g in node.guards)
        refs = dict(bindings) | {name: self.resolve(src)[1] for name, src in guards}
        origins = self.element_origins.get(node.name) or {name: self.origin(src) for name, src in node.inputs}
        origins |= {name: self.origin(src) for name, src in guards}
        self.call_inputs[node.name], self.call_sources[node.name] = self.bind(node.inputs + guards, refs, origins)
        self.call_values[node.name] = tuple((name, value) for name, value, _ in inputs)
        if node.task.dynamic:
            self.expand_dynamic(node, inputs)
            return
        identity = self.identity(node.task)
        key = cache_key(identity, bindings) if node.task.cache and not identity.unencodable else None
        self.keys[node.name] = key
        if key and not self.use_cache:
            self.forced[node.name] = "no-cache"
        elif key and (node.name in self.recompute or self.map_of.get(node.name) in self.recompute):
            self.forced[node.name] = "recompute"
        elif key and self.reuse(node, key):
            self.done(node.name)
            return
        self.submit(node)

    def skip(self, node: Node, guard: Guard, value: Any) -> None:
        stamp = now()
        source = f" (output of step {guard.condition.step!r})" if isinstance(guard.condition, FromStep) else ""
        why = f"condition{source} was {value!r}; this branch runs when it is {guard.expected}"
        self.results[node.name] = StepResult(node.name, node.task.qualname, ev.SKIPPED, 0, {}, error=why)
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=0, status=ev.SKIPPED, started_at=stamp, ended_at=stamp, resources=node.task.resources_json,
            condition=why, map_index=node.map_index))
        self.done(node.name)

    def expand(self, node: Node, inputs: list) -> None:
        """One element step per index of the mapped lists, each its own step in the ledger."""
        lists = {name: value for name, value, _ in inputs if name in node.mapped}
        lengths = {len(v) for v in lists.values()}
        if len(lengths) > 1:
            error = ValueError(f"map_task({node.task.name}): the mapped lists differ in length: "
                               + ", ".join(f"{k} has {len(v)}" for k, v in lists.items()))
            self.fail_node(node, error)
            return
        count = lengths.pop()
        elements = []
        sources = dict(node.inputs)
        for i in range(count):
            element = attrs.evolve(node, name=f"{node.name}[{i}]", mapped=(), guards=(), map_index=i, inputs=tuple(
                (name, Constant(value[i] if name in node.mapped else value, p.type))
                for (name, value, _), p in zip(inputs, node.task.params)))
            self.nodes[element.name] = element
            self.map_of[element.name] = node.name
            self.element_origins[element.name] = {
                name: self.element_origin(sources[name], i) if name in node.mapped else self.origin(sources[name])
                for name, _, _ in inputs}
            elements.append(element.name)
        self.recorder.record(ev.GraphRecorded(self.id, f"map:{node.name}", blueprint.map_spec(node, count), now()))
        self.map_elements[node.name] = elements
        self.map_open[node.name] = len(elements)
        self.map_failed[node.name] = []
        self.started[node.name] = now()
        if not elements:
            self.element_ended(node.name, count=False)
        self.ready.extend(elements)  # started by the loop as the executor has room (`has_room`)

    def element_origin(self, src: Source, i: int) -> ev.Origin | None:
        """Where element i of a mapped list came from: the i-th item of a list written in the
        body, or element i of a list some step (or the caller) made."""
        if isinstance(src, Choice):
            return self.element_origin(self.taken(src), i)
        if isinstance(src, Gather):
            return self.origin(src.items[i])
        whole = self.origin(src)
        return None if whole is None else attrs.evolve(whole, how=ev.FROM_ELEMENT)

    def element_ended(self, parent: str, failed: str | None = None, *, count: bool = True) -> None:
        """One element of a map ended; fail the map once too many failed, finish it once all ended."""
        if count:
            self.map_open[parent] -= 1
        if failed is not None:
            self.map_failed[parent].append(failed)
        if parent in self.results:
            return
        node, elements, failures = self.nodes[parent], self.map_elements[parent], self.map_failed[parent]
        allowed = len(elements) - math.ceil(node.min_success * len(elements) - 1e-9)
        if len(failures) > allowed:
            first = failures[0]
            self.fail_node(node, self.errors.get(first) or RuntimeError(self.results[first].error), element=first)
            return
        if self.map_open[parent]:
            return
        values = [self.values[e][0] if e in self.values else None for e in elements]
        element_type = node.task.output if node.min_success >= 1 else Optional[node.task.output]
        ref = artifact_ref(values, list[element_type])
        self.values[parent] = (values,)
        self.refs[parent] = (("return", ref),)
        self.results[parent] = StepResult(parent, node.task.qualname, ev.SUCCEEDED, 1, {"return": values})
        consumed = tuple((f"[{i}]", self.refs[e][0][1]) for i, e in enumerate(elements) if e in self.refs)
        sources = tuple((f"[{i}]", ev.Origin(self.id, e, "return", ev.FROM_STEP))
                        for i, e in enumerate(elements) if e in self.refs)
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=parent, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=1, status=ev.SUCCEEDED, started_at=self.started[parent], ended_at=now(), inputs=consumed,
            outputs=nested_outputs(self.refs[parent]), resources=node.task.resources_json, sources=sources,
            condition=f"map over {', '.join(node.mapped)}: {len(elements) - len(failures)}/{len(elements)} succeeded"))
        self.completed.append(parent)

    def fail_node(self, node: Node, error: BaseException, element: str | None = None) -> None:
        """A step that fails without an attempt of its own: a map (or one of its elements), a dynamic step."""
        line = f"{type(error).__name__}: {error}"
        if element:
            line = f"element {element!r} failed: {line}"
        self.results[node.name] = StepResult(node.name, node.task.qualname, ev.FAILED, 1, {}, error=line)
        stamp = now()
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=1, status=ev.FAILED, started_at=self.started.get(node.name, stamp), ended_at=stamp,
            resources=node.task.resources_json, error=line))
        if self.failure is None:
            self.failure = (element or node.name, error)

    def submit(self, node: Node) -> None:
        if not self.checked:
            # A step asking for more GPUs than the cluster has fails here, not hangs; asked at the
            # first step to run (not when the run starts), so a run of cache hits never starts Ray.
            self.checked = True
            if isinstance(self.executor, ChecksBeforeRun):
                self.executor.check(self.wf.graph.nodes, self.store)
        attempt = self.attempts.get(node.name, 0) + 1
        self.attempts[node.name] = attempt
        self.started[node.name] = now()
        self.recorder.record(ev.StepStarted(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=attempt, started_at=self.started[node.name], cache_key=self.keys[node.name],
            resources=node.task.resources_json, map_index=node.map_index, forced=self.forced.get(node.name)))
        call = StepCall(execution_id=self.id, step=node.name, task=node.task, inputs=self.call_values[node.name],
                        attempt=attempt, store_url=self.store.url, home=self.home)
        self.executor.submit(call, timeout=node.task.timeout, resources=node.task.resources)

    def reuse(self, node: Node, key: str) -> bool:
        entry = self.recorder.lookup(key) if self.caches else None
        if entry is None:
            return False
        try:
            for _, ref in entry.outputs:
                if ref.kind == VALUE_KIND:
                    continue
                if self.store.is_local:
                    self.store.local_path(ref.digest, verify=True)  # hashed once per process and file
                elif not self.store.has(ref.digest):  # remote: consumers verify as they read
                    raise ObjectNotFound(ref.digest, self.store.url)
            produced = dict(entry.outputs)
            outputs = tuple((name, produced[name]) for name, _ in node.task.outputs)
            for name, ref in outputs:
                # A plain value is served from the ledger's row: checked against its digest first,
                # as store objects are on read, so an edited row is a miss, never a wrong answer.
                if ref.kind == VALUE_KIND and (ref.value is None or value_digest(ref.value) != ref.digest):
                    raise IntegrityError(f"the recorded value of {entry.step_ref} output {name!r} does not "
                                         f"hash to its digest {ref.digest}", location=f"ledger artifacts row {ref.digest}")
            values = self.with_origins(node.name, tuple(decode(ref.value, tp) for (_, ref), (_, tp)
                                                        in zip(outputs, node.task.outputs)))
        except (ObjectNotFound, IntegrityError, TypeError, ValueError, KeyError) as e:
            warnings.warn(f"step {node.name!r}: cached outputs from {entry.step_ref} cannot be used ({e}); "
                          "running it again", stacklevel=2)
            self.forced[node.name] = "unusable"
            return False
        stamp = now()
        self.values[node.name] = values
        self.refs[node.name] = outputs
        self.results[node.name] = StepResult(node.name, node.task.qualname, ev.CACHED, 0,
                                             dict(zip((n for n, _ in outputs), values)), key, entry.step_ref)
        # The reused step's metrics belong to these outputs too: recorded again, marked as reused,
        # so metrics and compare are complete for a run made of cache hits.
        for name, value, index in entry.metrics:
            self.recorder.record(ev.MetricLogged(self.id, node.name, name, value, stamp, index,
                                                 reused_from=entry.step_ref))
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=0, status=ev.CACHED, started_at=stamp, ended_at=stamp, inputs=self.call_inputs[node.name],
            outputs=nested_outputs(outputs), cache_key=key, cached_from=entry.step_ref,
            resources=node.task.resources_json, map_index=node.map_index, sources=self.call_sources[node.name]))
        return True

    def with_origins(self, step: str, values: tuple) -> tuple:
        """Handles a step made carry the occurrence they are (`EXEC:step.slot`), so that a caller
        who passes one into another run links the two executions by provenance."""
        node = self.nodes[step]
        return tuple(attrs.evolve(v, origin=f"{self.id}:{step}.{slot}") if isinstance(v, Handle) else v
                     for v, (slot, _) in zip(values, node.task.outputs))

    def finish(self, node: Node, outcome: StepOutcome) -> None:
        """Record an attempt; then the step is done, or retried, or has failed for good."""
        outputs = tuple((name, ref) for name, _, ref in outcome.outputs)
        recorded = outputs + record_fields_of(node.task, outcome.outputs)
        if outcome.environment is not None and outcome.node not in self.nodes_seen:
            self.nodes_seen.add(outcome.node)
            self.recorder.record(ev.NodeSeen(self.id, outcome.node, outcome.environment, outcome.ended_at))
        for m in outcome.metrics:
            self.recorder.record(ev.MetricLogged(self.id, node.name, m.name, m.value, m.at, m.index))
        self.record_logs(node.name, outcome.attempt,
                         outcome.logs if outcome.logs_stored else self.adopted_logs(node.name, outcome.attempt),
                         outcome.ended_at)
        error_line = None if outcome.error is None else f"{type(outcome.error).__name__}: {outcome.error}"
        self.recorder.record(ev.StepFinished(
            execution_id=self.id, step=node.name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
            attempt=outcome.attempt, status=outcome.status, started_at=outcome.started_at, ended_at=outcome.ended_at,
            inputs=self.call_inputs[node.name], outputs=nested_outputs(recorded), cache_key=self.keys[node.name],
            resources=node.task.resources_json, node=outcome.node, error=error_line, traceback=outcome.traceback,
            map_index=node.map_index, sources=self.call_sources[node.name], forced=self.forced.get(node.name)))
        if outcome.status == ev.SUCCEEDED:
            for reg in outcome.registrations:
                self.recorder.record(ev.ModelRegistered(
                    name=reg.name, model=artifact_ref(reg.model, type(reg.model)), at=reg.at, who=who(),
                    execution_id=self.id, step=node.name, alias=reg.alias,
                    metrics=json.dumps(reg.metrics, sort_keys=True), why=reg.why))
            self.values[node.name] = self.with_origins(node.name, tuple(v for _, v, _ in outcome.outputs))
            self.refs[node.name] = outputs
            self.results[node.name] = StepResult(node.name, node.task.qualname, ev.SUCCEEDED, outcome.attempt,
                                                 {n: v for n, v, _ in outcome.outputs}, self.keys[node.name])
            self.done(node.name)
        elif outcome.attempt <= node.task.retries and self.failure is None:
            delay = min(BACKOFF_BASE_S * 2 ** (outcome.attempt - 1), BACKOFF_MAX_S)
            heapq.heappush(self.retry_at, (time.monotonic() + delay, node.name))
        else:
            self.results[node.name] = StepResult(node.name, node.task.qualname, outcome.status, outcome.attempt, {},
                                                 self.keys[node.name], error=error_line)
            self.errors[node.name] = outcome.error
            if node.name in self.map_of:
                self.element_ended(self.map_of[node.name], failed=node.name)
            elif self.failure is None:
                self.failure = (node.name, outcome.error)

    def record_logs(self, step: str, attempt: int, logs, at) -> None:
        for kept in logs:
            self.recorder.record(ev.StepLogged(self.id, step, attempt, kept.stream, kept.digest, kept.size, kept.lines,
                                               at))

    def adopted_logs(self, step: str, attempt: int) -> tuple:
        """What an attempt that did not store its own output (cancelled, its worker killed, the
        store failing as it ended) left in its spool files on this host, stored now."""
        if self.home is None:
            return ()
        try:
            return adopt_spools(self.home, self.id, step, attempt, self.store)
        except Exception as e:  # the record of the attempt matters more than its output
            log.warning("step %s attempt %d: its output could not be kept (%s)", step, attempt, e)
            return ()

    def cancel_in_flight(self) -> None:
        """Record every started step that has not finished as cancelled, then stop the executor."""
        stamp = now()
        self.executor.close()  # stopped first, so what the steps wrote up to now is all there is
        for name, started in self.started.items():
            if name not in self.results and name not in self.map_elements:
                node = self.nodes[name]
                self.record_logs(name, self.attempts[name], self.adopted_logs(name, self.attempts[name]), stamp)
                self.recorder.record(ev.StepFinished(
                    execution_id=self.id, step=name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
                    attempt=self.attempts[name], status=ev.CANCELLED, started_at=started, ended_at=stamp,
                    inputs=self.call_inputs[name], cache_key=self.keys[name], resources=node.task.resources_json,
                    error="cancelled: the execution was interrupted", map_index=node.map_index,
                    sources=self.call_sources.get(name, ())))

    def record_not_started(self, why: str) -> None:
        """After the run was stopped: every step of the graph that never started is recorded as
        skipped, saying why, so the record holds the whole graph."""
        stamp = now()
        for name, node in list(self.nodes.items()):
            if name in self.results or name in self.started or name in self.map_elements:
                continue
            self.results[name] = StepResult(name, node.task.qualname, ev.SKIPPED, 0, {}, error=why)
            self.recorder.record(ev.StepFinished(
                execution_id=self.id, step=name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
                attempt=0, status=ev.SKIPPED, started_at=stamp, ended_at=stamp, resources=node.task.resources_json,
                condition=why, map_index=node.map_index))

    def record_unreached(self) -> None:
        """After a step failed for good: every step that never ran is recorded as skipped, with
        the failed step that kept it from running, so the record holds the whole graph."""
        failed = self.failure[0] if self.failure else None
        blocked: dict[str, str] = {}
        for name, result in self.results.items():
            if result.status in (ev.FAILED, ev.TIMEOUT):
                blocked[name] = name
        for name, node in list(self.nodes.items()):
            if name in self.results or name in self.started or name in self.map_elements:
                continue
            deps = [blocked[d] for d in node.depends_on if d in blocked]
            cause = deps[0] if deps else failed
            blocked[name] = cause
            if cause is None:
                continue
            why = (f"upstream step {cause!r} failed" if deps else
                   f"not started: the execution stopped after step {cause!r} failed")
            stamp = now()
            self.results[name] = StepResult(name, node.task.qualname, ev.SKIPPED, 0, {}, error=why)
            self.recorder.record(ev.StepFinished(
                execution_id=self.id, step=name, task=node.task.qualname, task_fingerprint=self.fingerprint(node.task),
                attempt=0, status=ev.SKIPPED, started_at=stamp, ended_at=stamp, resources=node.task.resources_json,
                condition=why, map_index=node.map_index, blocked_by=cause))

    def output(self) -> tuple[Any, ev.Binding, ev.Sources]:
        out = self.wf.graph.output
        if out is None:
            return None, (), ()
        named = tuple((f"return[{i}]", s) for i, s in enumerate(out)) if isinstance(out, tuple) else (("return", out),)
        resolved = {name: self.resolve(src) for name, src in named}
        bindings, sources = self.bind(named, {n: r for n, (_, r) in resolved.items()},
                                      {name: self.origin(src) for name, src in named})
        values = [resolved[name][0] for name, _ in named]
        return (tuple(values) if isinstance(out, tuple) else values[0]), bindings, sources


def with_nested(name: str, ref: ev.ArtifactRef, origin: ev.Origin | None) -> list:
    """(name, artifact, origin) of a bound value and of every handle nested in it (`p.model`,
    `p[0]`): a handle inside a record or a list is an artifact with lineage of its own."""
    out = [(name, ref, origin)]
    if ref.kind == VALUE_KIND:
        for path, kind, digest, size in handles_inside(ref.value):
            out.append((name + path, ev.ArtifactRef(digest=digest, kind=kind, type=kind.capitalize(), size=size),
                        None if origin is None else origin.nested(path)))
    return out


MAX_DYNAMIC_DEPTH = 32  # dynamic steps within dynamic steps: past this, a recursion that does not end


def rename(src: Source, renamed: dict) -> Source:
    """A source with the steps it names renamed (the steps a dynamic body added, `step.task`)."""
    if isinstance(src, FromStep):
        return attrs.evolve(src, step=renamed.get(src.step, src.step))
    if isinstance(src, Gather):
        return attrs.evolve(src, items=tuple(rename(i, renamed) for i in src.items))
    if isinstance(src, Choice):
        return attrs.evolve(src, condition=rename(src.condition, renamed), then=rename(src.then, renamed),
                            otherwise=rename(src.otherwise, renamed))
    return src


def nested_outputs(outputs: ev.Binding) -> ev.Binding:
    """A step's outputs, followed by the handles nested in them (`return.model`), each name once."""
    seen: set = set()
    out = []
    for name, ref in outputs:
        for n, r, _ in with_nested(name, ref, None):
            if n not in seen:
                seen.add(n)
                out.append((n, r))
    return tuple(out)


def record_fields_of(task: Any, outputs: tuple) -> ev.Binding:
    """Each field of a record output (an attrs class or dataclass) as an output of its own,
    `return.model`, `return.accuracy`: named in the ledger, and what `res.model` consumes."""
    fields = []
    for (slot, tp), (_, value, _) in zip(task.outputs, outputs):
        if is_record_type(tp) and isinstance(value, tp):
            for name, field_type in record_fields(tp).items():
                fields.append((f"{slot}.{name}", artifact_ref(getattr(value, name), field_type)))
    return tuple(fields)


def param_sources(bound: dict[str, Any], replay_of: str | None, chosen: dict | None = None) -> ev.Sources:
    """Parameters that came from another execution: all of a replay's (from the original's),
    those the caller says where it found (`chosen`: name -> Origin, e.g. by digest), and
    handles that carry the occurrence they were made as (`handle.origin`)."""
    if replay_of is not None:
        return tuple((name, ev.Origin(replay_of, blueprint.PARAMS, name, ev.FROM_REPLAY)) for name in bound)
    out = []
    for name, value in bound.items():
        origin = (chosen or {}).get(name)
        if origin is None and isinstance(value, Handle):
            origin = parse_origin(getattr(value, "origin", None))
        if origin is not None:
            out.append((name, origin))
    return tuple(out)


_ORIGIN = re.compile(r"^([^:\s]+):(.+?)\.(return(?:[\[.].*)?)$")
_PARAM_ORIGIN = re.compile(r"^([^:\s]+):(@params)\.(\S+)$")  # a parameter of a run: EXEC:@params.name


def parse_origin(text: str | None, how: str = ev.FROM_REFERENCE) -> ev.Origin | None:
    """`EXEC:step.slot` (what `handle.origin` holds) as an Origin; None if it is not one.

    >>> parse_origin("01J:sub.returns_x.return[0]")
    Origin(execution_id='01J', step='sub.returns_x', name='return[0]', how='reference')
    """
    m = _PARAM_ORIGIN.match(text or "") or _ORIGIN.match(text or "")
    return None if m is None else ev.Origin(m.group(1), m.group(2), m.group(3), how)


def who() -> str:
    """user@host, for the ledger's record of who did what."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _with_where(environment: str, executor: Executor) -> str:
    """The environment JSON with where the steps ran (`executor_where`): on Ray, a private local
    runtime or the cluster joined and who chose it, so the record says which."""
    return json.dumps({**json.loads(environment), "executor_where": executor.where}, sort_keys=True)


class _interruptible:
    """For the run's duration, SIGINT raises KeyboardInterrupt even in a process that ignores it
    (a job a script started with `&` does), so `lineage cancel` can stop any run."""

    def __init__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            self.previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def execute(wf: Workflow, params: dict[str, Any] | None = None, *, executor: Executor, recorder: ev.Recorder,
            store: Store, cache: bool = True, replay_of: str | None = None, code_digest: str | None = None,
            environment: str | None = None, home: str | None = None, recompute=(),
            sources: dict | None = None) -> Execution:
    """Run wf's graph on executor, reporting to recorder; raise ExecutionFailed if a step fails.

    `recompute`: names of steps to run even where a cached result exists (a map step's name
    covers its elements). `sources`: parameter -> the Origin its value was found as, recorded
    with the execution's parameters (`run` passes the handles it looked up by digest).
    """
    if not isinstance(wf, Workflow):
        raise NotAWorkflow(f"run() takes a @workflow, not {wf!r}")
    bound = bind_params(wf, params)
    recompute = frozenset([recompute] if isinstance(recompute, str) else recompute or ())
    steps = {n.name for n in wf.graph.nodes}
    unknown = sorted(recompute - steps)
    if unknown:
        raise ParameterError(f"recompute: workflow {wf.name!r} has no step {unknown[0]!r}; its steps are: "
                             + ", ".join(sorted(steps)))
    run = _Run(wf=wf, params=bound, executor=executor, recorder=recorder, store=store, use_cache=cache, id=new_id(),
               home=home, recompute=recompute)
    run.input_refs = {p.name: artifact_ref(bound[p.name], p.type) for p in wf.params}
    started = now()
    recorder.record(ev.ExecutionStarted(
        execution_id=run.id, workflow=wf.qualname, workflow_fingerprint=wf.fingerprint,
        params=json.dumps({k: json.loads(r.value) for k, r in run.input_refs.items()}, sort_keys=True),
        inputs=tuple(run.input_refs.items()), executor=executor.name, started_at=started,
        host=socket.gethostname(), pid=os.getpid(), code_digest=code_digest,
        environment=_with_where(environment or env.capture_json(), executor), replay_of=replay_of,
        sources=param_sources(bound, replay_of, sources)))
    recorder.record(ev.GraphRecorded(run.id, "workflow", blueprint.workflow_spec(wf.graph, wf.on_failure, wf.site),
                                     started))
    interruptible = _interruptible()
    try:
        run.go()
    except BaseException as e:
        # Ctrl-C, or an error of the runner itself (the store unreachable, say): the record
        # says so before the error goes on.
        run.cancel_in_flight()
        if isinstance(e, KeyboardInterrupt):
            status, reason = ev.CANCELLED, "interrupted (Ctrl-C, or lineage cancel)"
        else:
            status, reason = ev.FAILED, f"the run stopped: {type(e).__name__}: {e}"
        run.record_not_started("not started: the execution was " + ("cancelled" if status == ev.CANCELLED
                                                                      else "stopped by an error of the runner"))
        recorder.record(ev.ExecutionFinished(run.id, status, now(), error=reason))
        recorder.flush()
        raise
    finally:
        interruptible.close()
    if run.failure is not None:
        run.record_unreached()
        if wf.on_failure is not None:
            run.handle_failure(wf.on_failure)
        step, error = run.failure
        ended = now()
        message = f"{type(error).__name__}: {error}"
        recorder.record(ev.ExecutionFinished(run.id, ev.FAILED, ended, error=f"step {step!r} failed: {message}"))
        recorder.flush()
        execution = Execution(run.id, wf.qualname, ev.FAILED, bound, None, run.results, started, ended,
                              error=f"step {step!r} failed: {message}")
        node = run.nodes[step]
        raise ExecutionFailed(f"execution {run.id} of workflow {wf.name!r} failed: step {step!r} "
                              f"(task {node.task.qualname}, called at {node.site}) raised {message}",
                              execution=execution, step=step) from error
    value, outputs, sources = run.output()
    ended = now()
    recorder.record(ev.ExecutionFinished(run.id, ev.SUCCEEDED, ended, outputs=outputs, sources=sources))
    recorder.flush()
    return Execution(run.id, wf.qualname, ev.SUCCEEDED, bound, value, run.results, started, ended)
