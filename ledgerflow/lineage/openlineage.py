"""OpenLineage run events for executions: exported from the ledger, or sent live while running.

The mapping, the same for `lineage export ID --format openlineage` and for the live emitter:

- an execution is a run of the job named after its workflow (`module:function`) in the
  job namespace (default "ledgerflow"); every *attempt* of a step is a child run of job
  `<workflow>.<step>`, whose `parent` facet points at the execution's run. One run per
  attempt, not per step, as Airflow's integration does with try numbers: a live emitter
  can't know whether a failed attempt will be retried, and each attempt gets its own
  START and FAIL/COMPLETE.
- each run gets a START event and, once it has ended, one of COMPLETE (succeeded, and
  for steps also cached and skipped), FAIL (failed, timeout) or ABORT (cancelled,
  interrupted). A still-running execution exports only its START events.
- every artifact a step consumed or produced is a dataset in the namespace of the store
  holding it (`file:///...` for a local store, the URL for a remote one). A handle (File,
  Directory, Dataset, Model) is named by its digest: it is that stored object, and runs
  that read or write the same bytes meet on it (the content question "which models were
  trained on this dataset?"). A plain value is not a stored object, and equal values made
  by unrelated steps (`True`, `1`, the same float) must not join their runs, so it is
  named by the occurrence it is, as the ledger records it: `EXECUTION_ID:step.slot` for a
  step's output (`EXECUTION_ID:@params.name` for a parameter), and for an input the
  occurrence it came from (`Bound.source`, `StepFinished.sources`); an input that came
  from nowhere (a literal in the workflow) is named after itself, `EXECUTION_ID:step.name`.
  Values thus link exactly the runs the ledger says passed them. An execution recorded
  before the ledger kept sources (schema < 4) is exported as it was then: every dataset
  by digest. The terminal
  event of a run carries its inputs and outputs (a START doesn't: the runner only knows a
  step's inputs when the step ends, and live and exported events are meant to agree).
- facets: `schema` (read from the stored Arrow object of a Dataset; the declared type is
  in the `ledgerflow_artifact` facet either way), `datasetVersion` (the digest),
  `datasetType` (the kind), input/output statistics (`size`), the standard
  `executionParameters` (the execution's parameters; for a step, its plain-value inputs),
  `errorMessage` with the traceback, `processing_engine`, `jobType`, and two custom run
  facets, `ledgerflow_execution` and `ledgerflow_step`, with what OpenLineage has no
  place for (fingerprints, cache key, cache hit source, node, resources). Custom facets
  follow the spec's conventions: a `ledgerflow_` prefix, `_producer` and `_schemaURL`;
  their JSON schema is `FACET_SCHEMA`.

Run ids are UUIDs derived from the execution id (uuid5), so exporting an execution
twice, or exporting what was sent live, gives the same ids.

Needs the optional dependency openlineage-python (`pip install ledgerflow[openlineage]`);
events are built with its model classes, and sent through its transports.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import uuid
from datetime import datetime, timezone

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    DatasetFacet,
    dataset_type_dataset,
    dataset_version_dataset,
    error_message_run,
    execution_parameters_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from ledgerflow.engine import events as ev
from ledgerflow.engine.status import EXECUTION_STATES, STEP_STATES, Status
from ledgerflow.lineage.schema import OUTPUTS_STEP, PARAMS_STEP
from ledgerflow.lineage.values import ExecutionDetail
from ledgerflow.types.kinds import HANDLE_KINDS, Storage, VALUE_KIND, storage_of

log = logging.getLogger("ledgerflow.openlineage")

PRODUCER = "https://github.com/ledgerflow/ledgerflow"
DEFAULT_NAMESPACE = "ledgerflow"
# Where the custom facets' JSON schema (FACET_SCHEMA, below) is published.
FACET_SCHEMA_URL = f"{PRODUCER}/blob/main/spec/openlineage-facets/1-0-0.json"
# uuid5 namespace of run ids: uuid5(RUN_NAMESPACE, execution_id) for an execution,
# uuid5(RUN_NAMESPACE, "EXECUTION_ID:step#attempt") for an attempt of a step.
RUN_NAMESPACE = uuid.UUID("8c4e6f0a-3b7d-5a53-9a61-6c6564676572")

_TERMINAL = {s.value: RunState[s.openlineage] for s in Status if s.final}


def run_id(execution_id: str, step: str | None = None, attempt: int | None = None) -> str:
    """The OpenLineage run id of an execution, or of one attempt of one of its steps.

    >>> run_id("01JD3Q8ZKX7V2M5N9P4R6T8W0Y")
    '90358a96-a7eb-5f73-afb8-a176b7ff825c'
    >>> run_id("01JD3Q8ZKX7V2M5N9P4R6T8W0Y", "train", 1) != run_id("01JD3Q8ZKX7V2M5N9P4R6T8W0Y", "train", 2)
    True
    """
    name = execution_id if step is None else f"{execution_id}:{step}#{attempt}"
    return str(uuid.uuid5(RUN_NAMESPACE, name))


def dataset_namespace(store_url: str) -> str:
    """A store URL as an OpenLineage dataset namespace: local paths become `file://` URLs.

    >>> dataset_namespace("/data/lf/store"), dataset_namespace("s3://bucket/prefix")
    ('file:///data/lf/store', 's3://bucket/prefix')
    """
    if "://" in store_url:
        return store_url.rstrip("/")
    return "file://" + os.path.abspath(store_url)


def _time(at: datetime) -> str:
    # The ledger stores naive UTC, the runner emits aware datetimes: both print the same.
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds") + "Z"


def _json_or_none(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- custom facets ---------------------------------------------------------------------


def _schema_url(name: str) -> str:
    return f"{FACET_SCHEMA_URL}#/$defs/{name}"


@attr.define
class LedgerflowExecutionRunFacet(RunFacet):
    """What the ledger knows of an execution that OpenLineage has no facet for."""

    executionId: str  # noqa: N815
    workflow: str
    workflowFingerprint: str | None = None  # noqa: N815
    codeDigest: str | None = None  # noqa: N815
    executor: str | None = None
    host: str | None = None
    replayOf: str | None = None  # noqa: N815
    status: str | None = None  # on the terminal event: succeeded | failed | cancelled | interrupted

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LedgerflowExecutionRunFacet")


@attr.define
class LedgerflowStepRunFacet(RunFacet):
    """One attempt of a step: task, fingerprints, cache key, cache hit source, where it ran."""

    executionId: str  # noqa: N815
    step: str
    attempt: int
    task: str | None = None
    taskFingerprint: str | None = None  # noqa: N815
    cacheKey: str | None = None  # noqa: N815
    resources: dict | None = None
    mapIndex: int | None = None  # noqa: N815
    status: str | None = None  # on the terminal event: succeeded | cached | skipped | failed | timeout | cancelled
    cachedFrom: str | None = None  # noqa: N815
    node: str | None = None
    condition: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LedgerflowStepRunFacet")


@attr.define
class LedgerflowArtifactDatasetFacet(DatasetFacet):
    """A ledger artifact: its kind, declared type, size, store, and the value of a plain value."""

    digest: str
    kind: str | None = None
    type: str | None = None  # noqa: A003
    size: int | None = None
    uri: str | None = None
    value: str | None = None  # canonical JSON of a plain value

    @staticmethod
    def _get_schema() -> str:
        return _schema_url("LedgerflowArtifactDatasetFacet")


_BASE = {"_producer": {"type": "string", "format": "uri"}, "_schemaURL": {"type": "string", "format": "uri"}}
_S, _I = {"type": "string"}, {"type": "integer"}

# JSON schema of the custom facets (draft 2020-12), published at FACET_SCHEMA_URL.
FACET_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": FACET_SCHEMA_URL,
    "$defs": {
        "LedgerflowExecutionRunFacet": {
            "type": "object",
            "properties": {**_BASE, "executionId": _S, "workflow": _S, "workflowFingerprint": _S,
                           "codeDigest": _S, "executor": _S, "host": _S, "replayOf": _S,
                           "status": {"enum": [s.value for s in EXECUTION_STATES]}},
            "required": ["_producer", "_schemaURL", "executionId", "workflow"],
            "additionalProperties": False,
        },
        "LedgerflowStepRunFacet": {
            "type": "object",
            "properties": {**_BASE, "executionId": _S, "step": _S, "attempt": _I, "task": _S,
                           "taskFingerprint": _S, "cacheKey": _S, "resources": {"type": "object"},
                           "mapIndex": _I, "cachedFrom": _S, "node": _S, "condition": _S,
                           "status": {"enum": [s.value for s in STEP_STATES]}},
            "required": ["_producer", "_schemaURL", "executionId", "step", "attempt"],
            "additionalProperties": False,
        },
        "LedgerflowArtifactDatasetFacet": {
            "type": "object",
            "properties": {**_BASE, "digest": {"type": "string", "pattern": "^blake3:[0-9a-f]{64}$"},
                           "kind": {"enum": ["value", *HANDLE_KINDS]},
                           "type": _S, "size": _I, "uri": _S, "value": _S},
            "required": ["_producer", "_schemaURL", "digest"],
            "additionalProperties": False,
        },
    },
}


# -- building events -------------------------------------------------------------------


class EventBuilder:
    """Builds the OpenLineage events of executions and step attempts (see the module docstring).

    `store_url` is the store of the home, the namespace of artifacts that don't name their
    own store (plain values); `dataset_namespace`, when given, names every dataset's
    namespace instead. `read_schemas=False` leaves out the `schema` facet (which opens
    each Dataset's stored object to read its Arrow schema).

    >>> b = EventBuilder(store_url="/tmp/lf/store")
    >>> e = b.execution_start("01JD3Q8ZKX7V2M5N9P4R6T8W0Y", "m:wf", datetime(2026, 1, 1), params={"n": 3})
    >>> e.eventType.value, e.job.name, e.run.facets["executionParameters"].parameters[0].value
    ('START', 'm:wf', '3')
    """

    def __init__(self, *, namespace: str = DEFAULT_NAMESPACE, store_url: str | None = None,
                 dataset_namespace: str | None = None, read_schemas: bool = True):
        self.namespace = namespace
        self.store_url = store_url
        self.fixed_dataset_namespace = dataset_namespace
        self.read_schemas = read_schemas
        self._schemas: dict = {}  # digest -> SchemaDatasetFacet or None
        self._stores: dict = {}  # url -> Store

    # -- runs

    def _engine(self) -> processing_engine_run.ProcessingEngineRunFacet:
        return processing_engine_run.ProcessingEngineRunFacet(
            version=_version("ledgerflow"), name="Ledgerflow", openlineageAdapterVersion=_version("openlineage-python"), producer=PRODUCER
        )

    def _job(self, name: str, job_type: str) -> Job:
        facet = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LEDGERFLOW", jobType=job_type,
                                             producer=PRODUCER)
        return Job(namespace=self.namespace, name=name, facets={"jobType": facet})

    def _event(self, state: RunState, at: datetime, run: Run, job: Job, inputs=(), outputs=()) -> RunEvent:
        return RunEvent(eventType=state, eventTime=_time(at), run=run, job=job, producer=PRODUCER,
                        inputs=list(inputs), outputs=list(outputs))

    def execution_start(self, execution_id: str, workflow: str, at: datetime, *, params: dict | None = None,
                        workflow_fingerprint: str | None = None, code_digest: str | None = None,
                        executor: str | None = None, host: str | None = None,
                        replay_of: str | None = None) -> RunEvent:
        """The START event of an execution."""
        facets = self._execution_facets(execution_id, workflow, params, workflow_fingerprint, code_digest,
                                         executor, host, replay_of, None)
        return self._event(RunState.START, at, Run(runId=run_id(execution_id), facets=facets),
                           self._job(workflow, "WORKFLOW"))

    def execution_end(self, execution_id: str, workflow: str, status: str, at: datetime, *,
                      params: dict | None = None, workflow_fingerprint: str | None = None,
                      code_digest: str | None = None, executor: str | None = None, host: str | None = None,
                      replay_of: str | None = None, error: str | None = None, inputs=(), outputs=(),
                      sources: dict | None = None) -> RunEvent:
        """The COMPLETE, FAIL or ABORT event of an execution; `inputs` (its parameters) and
        `outputs` are (name, artifact) pairs; `sources` maps an output's name to the
        occurrence it came from ("EXEC:step.slot"). `sources=None`: name every dataset by
        digest (an execution recorded before schema 4)."""
        facets = self._execution_facets(execution_id, workflow, params, workflow_fingerprint, code_digest,
                                         executor, host, replay_of, status)
        if error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python", producer=PRODUCER)
        legacy = sources is None
        params_named = _named(inputs, lambda name: f"{execution_id}:{PARAMS_STEP}.{name}", legacy)
        outputs_named = _named(
            outputs, lambda name: (sources or {}).get(name) or f"{execution_id}:{OUTPUTS_STEP}.{name}", legacy)
        return self._event(_TERMINAL[status], at, Run(runId=run_id(execution_id), facets=facets),
                           self._job(workflow, "WORKFLOW"), self._inputs(params_named), self._outputs(outputs_named))

    def _execution_facets(self, execution_id, workflow, params, fingerprint, code_digest, executor, host,
                          replay_of, status) -> dict:
        facets: dict = {
            "processing_engine": self._engine(),
            "ledgerflow_execution": LedgerflowExecutionRunFacet(
                executionId=execution_id, workflow=workflow, workflowFingerprint=fingerprint, codeDigest=code_digest,
                executor=executor, host=host, replayOf=replay_of, status=status, producer=PRODUCER),
        }
        if params:
            facets["executionParameters"] = _parameters({k: json.dumps(v, sort_keys=True) for k, v in params.items()})
        return facets

    def _step_run(self, execution_id, workflow, step, attempt, facet, extra=None) -> Run:
        parent = run_id(execution_id)
        facets: dict = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent),
                job=parent_run.Job(namespace=self.namespace, name=workflow),
                root=parent_run.Root(run=parent_run.RootRun(runId=parent),
                                     job=parent_run.RootJob(namespace=self.namespace, name=workflow)),
                producer=PRODUCER),
            "processing_engine": self._engine(),
            "ledgerflow_step": facet,
        }
        facets.update(extra or {})
        return Run(runId=run_id(execution_id, step, attempt), facets=facets)

    def step_start(self, execution_id: str, workflow: str, step: str, attempt: int, at: datetime, *,
                   task: str | None = None, task_fingerprint: str | None = None, cache_key: str | None = None,
                   resources: str | None = None, map_index: int | None = None) -> RunEvent:
        """The START event of one attempt of a step."""
        facet = LedgerflowStepRunFacet(
            executionId=execution_id, step=step, attempt=attempt, task=task, taskFingerprint=task_fingerprint,
            cacheKey=cache_key, resources=_json_or_none(resources), mapIndex=map_index, producer=PRODUCER)
        return self._event(RunState.START, at, self._step_run(execution_id, workflow, step, attempt, facet),
                           self._job(f"{workflow}.{step}", "TASK"))

    def step_end(self, execution_id: str, workflow: str, step: str, attempt: int, status: str, at: datetime, *,
                 task: str | None = None, task_fingerprint: str | None = None, cache_key: str | None = None,
                 resources: str | None = None, map_index: int | None = None, cached_from: str | None = None,
                 node: str | None = None, condition: str | None = None, error: str | None = None,
                 traceback: str | None = None, inputs=(), outputs=(), sources: dict | None = None) -> RunEvent:
        """The COMPLETE, FAIL or ABORT event of one attempt of a step; `inputs`/`outputs` are
        (name, artifact) pairs, `sources` maps an input's name to the occurrence it came from.
        `sources=None`: name every dataset by digest (an execution recorded before schema 4)."""
        facet = LedgerflowStepRunFacet(
            executionId=execution_id, step=step, attempt=attempt, task=task, taskFingerprint=task_fingerprint,
            cacheKey=cache_key, resources=_json_or_none(resources), mapIndex=map_index, status=status,
            cachedFrom=cached_from, node=node, condition=condition, producer=PRODUCER)
        extra: dict = {}
        values = {name: a.value for name, a in inputs if a.kind == VALUE_KIND and a.value is not None}
        if values:
            extra["executionParameters"] = _parameters(values)
        if error:
            extra["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python", stackTrace=traceback, producer=PRODUCER)
        legacy = sources is None
        inputs_named = _named(inputs, lambda name: (sources or {}).get(name) or f"{execution_id}:{step}.{name}",
                              legacy)
        outputs_named = _named(outputs, lambda name: f"{execution_id}:{step}.{name}", legacy)
        return self._event(_TERMINAL[status], at, self._step_run(execution_id, workflow, step, attempt, facet, extra),
                           self._job(f"{workflow}.{step}", "TASK"), self._inputs(inputs_named),
                           self._outputs(outputs_named))

    # -- datasets

    def _inputs(self, named) -> list:
        """Input datasets of (dataset name, artifact) pairs (see `_named`)."""
        out = {}
        for name, a in named:  # one dataset per name, even when bound to two parameters
            out.setdefault(name, InputDataset(
                namespace=self._namespace_of(a), name=name, facets=self._dataset_facets(a),
                inputFacets={"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    size=a.size, producer=PRODUCER)}))
        return list(out.values())

    def _outputs(self, named) -> list:
        out = {}
        for name, a in named:
            out.setdefault(name, OutputDataset(
                namespace=self._namespace_of(a), name=name, facets=self._dataset_facets(a),
                outputFacets={"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    size=a.size, producer=PRODUCER)}))
        return list(out.values())

    def _namespace_of(self, a) -> str:
        if self.fixed_dataset_namespace:
            return self.fixed_dataset_namespace
        url = a.uri or self.store_url
        return dataset_namespace(url) if url else self.namespace

    def _dataset_facets(self, a) -> dict:
        facets: dict = {
            "datasetVersion": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=a.digest,
                                                                                 producer=PRODUCER),
            "ledgerflow_artifact": LedgerflowArtifactDatasetFacet(
                digest=a.digest, kind=a.kind, type=a.type, size=a.size, uri=a.uri,
                value=a.value if a.kind == VALUE_KIND else None, producer=PRODUCER),
        }
        if a.kind:
            kind = HANDLE_KINDS.get(a.kind)
            facets["datasetType"] = dataset_type_dataset.DatasetTypeDatasetFacet(
                datasetType=kind.openlineage_type if kind else a.kind.upper(), subType=a.type, producer=PRODUCER)
        if storage_of(a.kind) is Storage.TABLE and self.read_schemas:  # its schema is in the stream
            schema = self._schema(a)
            if schema is not None:
                facets["schema"] = schema
        return facets

    def _schema(self, a):
        """The schema facet of a Dataset, from its stored Arrow IPC stream; None if unreadable.

        Only the stream's first message (the schema) is read, so this is cheap even for a
        large object in a remote store.
        """
        if a.digest in self._schemas:
            return self._schemas[a.digest]
        facet = None
        url = a.uri or self.store_url
        if url:
            try:
                import pyarrow as pa

                from ledgerflow.store import Store

                store = self._stores.get(url) or self._stores.setdefault(url, Store.open(url))
                with store.open(a.digest, verify=False) as fh:
                    schema = pa.ipc.open_stream(fh).schema
                facet = schema_dataset.SchemaDatasetFacet(fields=[_field(f) for f in schema], producer=PRODUCER)
            except Exception as exc:  # gone (gc), unreachable, not Arrow: the declared type still says what it was
                log.debug("no schema for %s: %s", a.digest, exc)
        self._schemas[a.digest] = facet
        return facet


def dataset_name(artifact, occurrence: str) -> str:
    """The OpenLineage dataset name of an artifact: a handle's digest (the stored object);
    for a plain value, `occurrence` ("EXEC:step.slot"), so equal values never join runs.

    >>> from ledgerflow.lineage.values import ArtifactInfo
    >>> dataset_name(ArtifactInfo("blake3:ab", "value", "bool", 4, None, "true"), "01J:gate.return")
    '01J:gate.return'
    >>> dataset_name(ArtifactInfo("blake3:cd", "model", "Model", 9, "/s", None), "01J:train.return")
    'blake3:cd'
    """
    return occurrence if artifact.kind == VALUE_KIND else artifact.digest


def _named(binding, occurrence, legacy: bool) -> list:
    """(dataset name, artifact) for each (name, artifact) of a binding; `occurrence(name)`
    names a plain value's occurrence. `legacy`: by digest, as before schema 4."""
    return [(a.digest if legacy else dataset_name(a, occurrence(name)), a) for name, a in binding]


def _field(f) -> schema_dataset.SchemaDatasetFacetFields:
    import pyarrow as pa

    t = f.type
    children = []
    if pa.types.is_struct(t):
        children = [_field(t.field(i)) for i in range(t.num_fields)]
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        children = [_field(t.value_field)]
    return schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(t), fields=children)


def _parameters(values: dict) -> execution_parameters_run.ExecutionParametersRunFacet:
    return execution_parameters_run.ExecutionParametersRunFacet(
        parameters=[execution_parameters_run.ExecutionParameter(key=k, value=v) for k, v in values.items()],
        producer=PRODUCER)


def _version(package: str) -> str:
    from importlib.metadata import version

    try:
        return version(package)
    except Exception:
        return "unknown"


# -- export from the ledger ------------------------------------------------------------


def execution_events(detail: ExecutionDetail, builder: EventBuilder) -> list:
    """The OpenLineage events of a recorded execution, in time order (START first, its end last)."""
    s = detail.summary
    common = dict(params=detail.params, workflow_fingerprint=detail.workflow_fingerprint,
                  code_digest=detail.code_digest, executor=s.executor, host=s.host, replay_of=s.replay_of)
    out = [builder.execution_start(s.id, s.workflow, s.started_at, **common)]
    legacy = detail.graph is None  # recorded before the ledger kept sources: datasets by digest, as then

    def sources(bound):
        return None if legacy else {b.name: b.source for b in bound if b.source}

    steps = []
    for st in detail.steps:
        inputs = tuple((b.name, b.artifact) for b in st.inputs)
        outputs = tuple((b.name, b.artifact) for b in st.outputs)
        last = st.attempts[-1].attempt if st.attempts else None
        for a in st.attempts:
            started = a.started_at or a.ended_at or s.started_at
            steps.append(builder.step_start(s.id, s.workflow, st.step, a.attempt, started, task=st.task,
                                            task_fingerprint=st.task_fingerprint, cache_key=st.cache_key,
                                            resources=st.resources, map_index=st.map_index))
            if a.status == ev.RUNNING:
                continue
            # Only the last attempt produced the step's outputs; every attempt had its inputs.
            steps.append(builder.step_end(
                s.id, s.workflow, st.step, a.attempt, a.status, a.ended_at or started, task=st.task,
                task_fingerprint=st.task_fingerprint, cache_key=st.cache_key, resources=st.resources,
                map_index=st.map_index, cached_from=st.cached_from if a.attempt == last else None, node=a.node,
                condition=st.condition if a.attempt == last else None, error=a.error, traceback=a.traceback,
                inputs=inputs, outputs=outputs if a.attempt == last else (), sources=sources(st.inputs)))
    # Stable: events of the same instant keep START before the end, in step order.
    out += sorted(steps, key=lambda e: e.eventTime)
    if s.status != ev.RUNNING:
        out.append(builder.execution_end(s.id, s.workflow, s.status, s.ended_at or s.started_at, error=s.error,
                                         inputs=tuple((b.name, b.artifact) for b in detail.inputs),
                                         outputs=tuple((b.name, b.artifact) for b in detail.outputs),
                                         sources=sources(detail.outputs), **common))
    return out


def export_events(ledger, ref: str, *, namespace: str = DEFAULT_NAMESPACE,
                  dataset_namespace: str | None = None) -> list:
    """The OpenLineage events of the execution `ref` (an id or unique prefix) of `ledger`.

    >>> from ledgerflow import Ledger
    >>> events = export_events(Ledger(home), ex.id)
    >>> for e in events:
    ...     print(e.eventType.value, e.job.name)
    START pipeline:pipeline
    START pipeline:pipeline.ingest
    COMPLETE pipeline:pipeline.ingest
    START pipeline:pipeline.train
    COMPLETE pipeline:pipeline.train
    COMPLETE pipeline:pipeline
    >>> print(to_json(events[0]))     # doctest: +ELLIPSIS
    {"eventTime": "...", "eventType": "START", "inputs": [], "job": {...}, ...}
    """
    builder = EventBuilder(namespace=namespace, store_url=ledger.home.store_url, dataset_namespace=dataset_namespace)
    return execution_events(ledger.execution(ref), builder)


def to_json(event: RunEvent) -> str:
    """One event as a line of JSON, as the client's transports send it (nulls left out, keys sorted)."""
    return Serde.to_json(event)


# -- the live emitter -------------------------------------------------------------------


class _Flush:
    def __init__(self):
        self.done = threading.Event()


_STOP = object()


class OpenLineageEmitter:
    """A Recorder that sends the execution's OpenLineage events while it runs.

    Events go through an `OpenLineageClient` (by default configured by the usual
    OPENLINEAGE_* variables or openlineage.yml: http, file, console, kafka ...), from a
    background thread, so the runner never waits on the network. Sending is best effort:
    a failure is logged on the `ledgerflow.openlineage` logger and never fails the run
    (the ledger, not the lineage server, is the record). `flush` waits up to
    `flush_timeout` seconds for what was recorded to be sent.

    Beside the ledger, to a file (here; an HTTP server in production):

    >>> from openlineage.client.transport.file import FileConfig, FileTransport
    >>> client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path="events.jsonl", append=True)))
    >>> emitter = OpenLineageEmitter(client, store_url=home.store_url)
    >>> from ledgerflow import run
    >>> ex = run(pipeline, recorders=[emitter])
    >>> emitter.close()
    >>> [json.loads(line)["eventType"] for line in open("events.jsonl")]
    ['START', 'START', 'COMPLETE', 'START', 'COMPLETE', 'COMPLETE']
    """

    def __init__(self, client: OpenLineageClient | None = None, *, namespace: str | None = None,
                 store_url: str | None = None, dataset_namespace: str | None = None, flush_timeout: float = 10.0):
        self.client = client if client is not None else OpenLineageClient()
        # OPENLINEAGE_NAMESPACE is the variable other integrations (Airflow, Spark) read for the job namespace.
        self.builder = EventBuilder(namespace=namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE,
                                    store_url=store_url, dataset_namespace=dataset_namespace)
        self.flush_timeout = flush_timeout
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        # Only the sending thread touches these: what START said, for the events that follow.
        self._executions: dict = {}  # execution_id -> dict of its start facts
        self._started: set = set()  # (execution_id, step, attempt) whose START was sent

    def record(self, event) -> None:
        if self._closed:
            return
        self._queue.put(event)
        if self._thread is None:
            with self._thread_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="openlineage-emitter", daemon=True)
                    self._thread.start()

    def flush(self) -> None:
        if self._thread is None:
            return
        marker = _Flush()
        self._queue.put(marker)
        if not marker.done.wait(self.flush_timeout):
            log.warning("OpenLineage events not all sent after %.0f s; carrying on", self.flush_timeout)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.flush_timeout)
        try:
            self.client.close(self.flush_timeout)
        except Exception as exc:
            log.warning("closing the OpenLineage client failed: %s", exc)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                item.done.set()
                continue
            try:
                for event in self.events_for(item):
                    self.client.emit(event)
            except Exception as exc:
                log.warning("could not send OpenLineage events for %s: %s", type(item).__name__, exc)

    def events_for(self, e) -> list:
        """The OpenLineage events one engine event stands for (none for most kinds).

        Not thread-safe: called from the sending thread only (or, in tests, from one thread).
        """
        b = self.builder
        if isinstance(e, ev.ExecutionStarted):
            facts = dict(params=_json_or_none(e.params) or {}, workflow_fingerprint=e.workflow_fingerprint,
                         code_digest=e.code_digest, executor=e.executor, host=e.host, replay_of=e.replay_of)
            self._executions[e.execution_id] = (e.workflow, facts, e.inputs)
            return [b.execution_start(e.execution_id, e.workflow, e.started_at, **facts)]
        if isinstance(e, ev.ExecutionFinished):
            workflow, facts, inputs = self._executions.pop(e.execution_id, (None, {}, ()))
            if workflow is None:
                return []  # started before this emitter was listening
            self._started = {k for k in self._started if k[0] != e.execution_id}
            return [b.execution_end(e.execution_id, workflow, e.status, e.ended_at, error=e.error,
                                    inputs=inputs, outputs=e.outputs,
                                    sources={name: o.ref for name, o in e.sources}, **facts)]
        if isinstance(e, (ev.StepStarted, ev.StepFinished)):
            known = self._executions.get(e.execution_id)
            if known is None:
                return []
            workflow = known[0]
            key = (e.execution_id, e.step, e.attempt)
            out = []
            if key not in self._started:
                # Cached and skipped steps, and attempts that ended within one flush, come
                # without a StepStarted: their START is sent with their end.
                self._started.add(key)
                out.append(b.step_start(e.execution_id, workflow, e.step, e.attempt, e.started_at, task=e.task,
                                        task_fingerprint=e.task_fingerprint, cache_key=e.cache_key,
                                        resources=e.resources, map_index=e.map_index))
            if isinstance(e, ev.StepFinished):
                out.append(b.step_end(
                    e.execution_id, workflow, e.step, e.attempt, e.status, e.ended_at, task=e.task,
                    task_fingerprint=e.task_fingerprint, cache_key=e.cache_key, resources=e.resources,
                    map_index=e.map_index, cached_from=e.cached_from, node=e.node, condition=e.condition,
                    error=e.error, traceback=e.traceback, inputs=e.inputs, outputs=e.outputs,
                    sources={name: o.ref for name, o in e.sources}))
            return out
        return []


__all__ = [
    "DEFAULT_NAMESPACE", "FACET_SCHEMA", "PRODUCER", "EventBuilder", "LedgerflowArtifactDatasetFacet",
    "LedgerflowExecutionRunFacet", "LedgerflowStepRunFacet", "OpenLineageEmitter", "dataset_name", "dataset_namespace",
    "execution_events", "export_events", "run_id", "to_json",
]
