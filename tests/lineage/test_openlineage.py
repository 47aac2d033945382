"""OpenLineage: exported run events, checked against openlineage-python's models, and the live emitter."""

from __future__ import annotations

import http.server
import json
import os
import textwrap
import threading
import uuid

import pytest
from click.testing import CliRunner

pytest.importorskip("openlineage.client")

import attrs  # noqa: E402
import cattrs  # noqa: E402
import jsonschema  # noqa: E402
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState  # noqa: E402
from openlineage.client.facet_v2 import (  # noqa: E402
    dataset_type_dataset, dataset_version_dataset, error_message_run, execution_parameters_run,
    input_statistics_input_dataset, job_type_job, output_statistics_output_dataset, parent_run,
    processing_engine_run, schema_dataset,
)
from openlineage.client.serde import Serde  # noqa: E402

from ledgerflow import ExecutionFailed, Ledger, MemoryRecorder, run  # noqa: E402
from ledgerflow.engine.loading import import_file  # noqa: E402
from ledgerflow.lineage import openlineage as ol  # noqa: E402
from ledgerflow.app import recorders  # noqa: E402
from ledgerflow.app.cli import cli  # noqa: E402

SOURCE = '''
import os
import pyarrow as pa
from ledgerflow import task, workflow, Dataset

CALLS = {"n": 0}

@task(cache=True)
def ingest(n: int) -> Dataset:
    return pa.table({"x": list(range(n)), "name": [str(i) for i in range(n)]})

@task(retries=1)
def total(data: Dataset, scale: float) -> float:
    CALLS["n"] += 1
    if CALLS["n"] == 1:
        raise ConnectionError("first attempt")
    return float(sum(data.to_arrow().column("x").to_pylist())) * scale

@task
def check(x: float) -> float:
    if os.environ.get("LF_BOOM"):
        raise RuntimeError("boom")
    return x

@workflow
def pipe(n: int = 5, scale: float = 2.0) -> float:
    return check(x=total(data=ingest(n=n), scale=scale))
'''

RUN_FACETS = {
    "parent": parent_run.ParentRunFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    "executionParameters": execution_parameters_run.ExecutionParametersRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "ledgerflow_execution": ol.LedgerflowExecutionRunFacet,
    "ledgerflow_step": ol.LedgerflowStepRunFacet,
}
JOB_FACETS = {"jobType": job_type_job.JobTypeJobFacet}
DATASET_FACETS = {
    "datasetVersion": dataset_version_dataset.DatasetVersionDatasetFacet,
    "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet,
    "schema": schema_dataset.SchemaDatasetFacet,
    "ledgerflow_artifact": ol.LedgerflowArtifactDatasetFacet,
}
INPUT_FACETS = {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet}
OUTPUT_FACETS = {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet}

_strict = cattrs.Converter(forbid_extra_keys=True)


def _facets(data: dict | None, known: dict) -> dict:
    """Each facet structured into its model class, strictly: an unknown key or a wrong type fails."""
    out = {}
    for name, facet in (data or {}).items():
        cls = known[name]  # KeyError: a facet we don't mean to send
        body = {k: v for k, v in facet.items() if k != "_schemaURL"}
        out[name] = _strict.structure(body, cls)
        assert facet["_schemaURL"] == cls._get_schema()
        assert facet["_producer"] == ol.PRODUCER
    return out


def parse(line: str) -> RunEvent:
    """A JSON line back into the client's RunEvent model; serialising that must give the same JSON."""
    d = json.loads(line)
    event = RunEvent(
        eventType=RunState(d["eventType"]), eventTime=d["eventTime"], producer=d["producer"],
        run=Run(runId=d["run"]["runId"], facets=_facets(d["run"].get("facets"), RUN_FACETS)),
        job=Job(namespace=d["job"]["namespace"], name=d["job"]["name"], facets=_facets(d["job"].get("facets"), JOB_FACETS)),
        inputs=[InputDataset(namespace=i["namespace"], name=i["name"], facets=_facets(i.get("facets"), DATASET_FACETS),
                             inputFacets=_facets(i.get("inputFacets"), INPUT_FACETS)) for i in d.get("inputs", [])],
        outputs=[OutputDataset(namespace=o["namespace"], name=o["name"], facets=_facets(o.get("facets"), DATASET_FACETS),
                               outputFacets=_facets(o.get("outputFacets"), OUTPUT_FACETS)) for o in d.get("outputs", [])],
    )
    assert Serde.to_dict(event) == d
    assert d["schemaURL"] == RunEvent._get_schema()
    return event


def custom_facets_valid(d: dict) -> None:
    """The custom facets against the JSON schema we publish for them."""
    def check(facet, name):
        jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", **ol.FACET_SCHEMA}).validate(facet)

    for key, name in (("ledgerflow_execution", "LedgerflowExecutionRunFacet"), ("ledgerflow_step", "LedgerflowStepRunFacet")):
        if key in d["run"].get("facets", {}):
            check(d["run"]["facets"][key], name)
    for ds in d.get("inputs", []) + d.get("outputs", []):
        check(ds["facets"]["ledgerflow_artifact"], "LedgerflowArtifactDatasetFacet")


@pytest.fixture(autouse=True)
def _no_openlineage_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)


@pytest.fixture
def mod(tmp_path):
    path = tmp_path / f"olwf_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(SOURCE))
    return import_file(path)


def cli_run(*args, home):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def export_lines(home, ex_id, *extra) -> list:
    out = cli_run("export", ex_id, "--format", "openlineage", *extra, home=home)
    assert out.exit_code == 0, out.output
    return [line for line in out.stdout.splitlines() if line]


@pytest.mark.slow
def test_export_is_valid_openlineage_and_says_what_ran(home, mod):
    ex = run(mod.pipe, {"n": 4}, progress=False)
    lines = export_lines(home, ex.id)
    events = [parse(line) for line in lines]
    dicts = [json.loads(line) for line in lines]
    for d in dicts:
        custom_facets_valid(d)

    root = events[0]
    assert root.eventType.value == "START" and root.job.name == mod.pipe.qualname and root.job.namespace == "ledgerflow"
    assert root.run.runId == ol.run_id(ex.id) and uuid.UUID(root.run.runId)
    params = {p.key: p.value for p in root.run.facets["executionParameters"].parameters}
    assert params == {"n": "4", "scale": "2.0"}
    assert events[-1].eventType.value == "COMPLETE" and events[-1].run.runId == root.run.runId
    # A plain value is named by the occurrence it is: what the workflow returned came from `check`.
    assert [o.name for o in events[-1].outputs] == [f"{ex.id}:check.return"]
    assert events[-1].outputs[0].facets["datasetVersion"].datasetVersion == \
        Ledger(home).execution(ex.id).outputs[0].artifact.digest

    steps = events[1:-1]
    by_run: dict = {}
    for e in steps:
        assert e.run.facets["parent"].run.runId == root.run.runId
        assert e.run.facets["parent"].job.name == mod.pipe.qualname
        by_run.setdefault((e.job.name, e.run.facets["ledgerflow_step"].attempt), []).append(e.eventType.value)
    total = f"{mod.pipe.qualname}.total"
    # Every attempt is a run of its own: the first of `total` failed, the retry completed.
    assert by_run[(total, 1)] == ["START", "FAIL"] and by_run[(total, 2)] == ["START", "COMPLETE"]
    assert by_run[(f"{mod.pipe.qualname}.ingest", 1)] == ["START", "COMPLETE"]
    failed = next(e for e in steps if e.eventType.value == "FAIL")
    assert "ConnectionError: first attempt" in failed.run.facets["errorMessage"].message
    assert "Traceback" in failed.run.facets["errorMessage"].stackTrace

    # The Dataset ingest produced is total's input: the same dataset, named by digest, with its Arrow schema.
    made = next(e for e in steps if e.job.name.endswith(".ingest") and e.eventType.value == "COMPLETE")
    (ds,) = made.outputs
    assert ds.name.startswith("blake3:") and ds.namespace == "file://" + str(home / "store")
    assert [(f.name, f.type) for f in ds.facets["schema"].fields] == [("x", "int64"), ("name", "string")]
    assert ds.facets["ledgerflow_artifact"].kind == "dataset" and ds.facets["datasetVersion"].datasetVersion == ds.name
    assert ds.outputFacets["outputStatistics"].size > 0
    done = next(e for e in steps if e.job.name == total and e.eventType.value == "COMPLETE")
    assert ds.name in [i.name for i in done.inputs]
    assert {p.key: p.value for p in done.run.facets["executionParameters"].parameters} == {"scale": "2.0"}

    # Deterministic: the same execution exports the same events.
    assert export_lines(home, ex.id) == lines


def _datasets(events, kind: str) -> set:
    return {(d.name, e.job.name.rsplit(".", 1)[-1]) for e in events for d in getattr(e, kind)}


@pytest.mark.slow
def test_plain_values_link_exactly_the_recorded_occurrences(home, mod):
    """`check` returns the float `total` gave it: one digest, three occurrences. Runs meet on a
    value only where the ledger recorded it being passed, never because the bytes are equal."""
    first = run(mod.pipe, {"n": 4}, progress=False)
    second = run(mod.pipe, {"n": 4}, progress=False)  # ingest is a cache hit; the values are the same again
    ev1 = [parse(line) for line in export_lines(home, first.id)]
    ev2 = [parse(line) for line in export_lines(home, second.id)]
    made = {name for name, job in _datasets(ev1, "outputs")}
    assert f"{first.id}:total.return" in made and f"{first.id}:check.return" in made
    check_done = next(e for e in ev1 if e.job.name.endswith(".check") and e.eventType.value == "COMPLETE")
    assert [i.name for i in check_done.inputs] == [f"{first.id}:total.return"]
    assert ev1[-1].inputs and {i.name for i in ev1[-1].inputs} == {f"{first.id}:@params.n", f"{first.id}:@params.scale"}
    total_done = next(e for e in ev1 if e.job.name.endswith(".total") and e.eventType.value == "COMPLETE")
    assert f"{first.id}:@params.scale" in {i.name for i in total_done.inputs}

    names1 = {d.name for e in ev1 for d in e.inputs + e.outputs}
    names2 = {d.name for e in ev2 for d in e.inputs + e.outputs}
    shared = names1 & names2
    assert shared and all(n.startswith("blake3:") for n in shared)  # only the Dataset, a stored object
    values = {d.facets["ledgerflow_artifact"].kind for e in ev1 for d in e.inputs + e.outputs if d.name in shared}
    assert values == {"dataset"}

    # An execution recorded before the ledger kept sources is exported as it was: by digest.
    detail = Ledger(home).execution(first.id)
    builder = ol.EventBuilder(store_url=str(home / "store"))
    old = ol.execution_events(attrs.evolve(detail, graph=None), builder)
    assert {d.name for e in old for d in e.inputs + e.outputs} <= {
        b.artifact.digest for s in detail.steps for b in s.inputs + s.outputs} | {
        b.artifact.digest for b in detail.inputs + detail.outputs}


@pytest.mark.slow
def test_failed_and_cached_executions(home, mod, monkeypatch, tmp_path):
    run(mod.pipe, {"n": 3}, progress=False)
    monkeypatch.setenv("LF_BOOM", "1")
    with pytest.raises(ExecutionFailed) as err:
        run(mod.pipe, {"n": 3}, progress=False)
    eid = err.value.execution.id
    path = tmp_path / "events.jsonl"
    out = cli_run("export", eid, "--format", "openlineage", "-o", str(path), "--namespace", "team-a",
                  "--dataset-namespace", "s3://lake", home=home)
    assert out.exit_code == 0
    events = [parse(line) for line in path.read_text().splitlines()]
    assert {e.job.namespace for e in events} == {"team-a"}
    assert events[-1].eventType.value == "FAIL" and "boom" in events[-1].run.facets["errorMessage"].message
    cached = next(e for e in events if e.job.name.endswith(".ingest") and e.eventType.value == "COMPLETE")
    step = cached.run.facets["ledgerflow_step"]
    assert step.status == "cached" and step.cachedFrom.endswith(":ingest")
    assert {d.namespace for e in events for d in e.inputs + e.outputs} == {"s3://lake"}


def test_cli_errors_are_one_line_exit_2(home, mod):
    run(mod.pipe, progress=False)
    for args in (["export", "--format", "openlineage"], ["export", "NOPE", "--format", "openlineage"],
                 ["export", "x", "--format", "parquet", "-o", "f"], ["export", "x"]):
        out = cli_run(*args, home=home)
        assert out.exit_code == 2, (args, out.output)
        assert "Traceback" not in out.output


def key(d: dict) -> tuple:
    return (d["run"]["runId"], d["eventType"], d["job"]["name"], tuple(i["name"] for i in d.get("inputs", [])),
            tuple(o["name"] for o in d.get("outputs", [])))


@pytest.mark.slow
def test_live_emitter_file_transport_sends_what_export_says(home, mod, monkeypatch, tmp_path):
    log = tmp_path / "ol" / "events.jsonl"
    log.parent.mkdir()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(log))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    ex = run(mod.pipe, {"n": 6}, progress=False)
    sent = [json.loads(line) for line in log.read_text().splitlines() if line]
    exported = [json.loads(line) for line in export_lines(home, ex.id)]
    assert sorted(map(key, sent)) == sorted(map(key, exported))
    assert sent[0]["eventType"] == "START" and sent[-1]["eventType"] == "COMPLETE"
    for d in sent:  # the client adds its own facets (tags, maybe source location); ours are intact
        custom_facets_valid(d)
        assert d["run"]["facets"]["ledgerflow_" + ("step" if "parent" in d["run"]["facets"] else "execution")]


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_live_emitter_http_transport(home, mod, monkeypatch):
    _Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        ex = run(mod.pipe, {"n": 2}, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    paths = {p for p, _ in _Collector.received}
    assert paths == {"/api/v1/lineage"}
    sent = [d for _, d in _Collector.received]
    exported = [json.loads(line) for line in export_lines(home, ex.id)]
    assert sorted(map(key, sent)) == sorted(map(key, exported))


def test_no_emitter_without_configuration(home):
    assert recorders.openlineage_emitter(Ledger(home).home) is None
    assert recorders.configured(Ledger(home).home) == ()


def test_recorders_given_in_code_replace_the_environments(home, mod, monkeypatch, tmp_path):
    # The environment configures a file transport; a run given its recorders in code reports to
    # those (a MemoryRecorder beside the ledger) and builds no emitter of its own.
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(log))
    memory = MemoryRecorder()
    ex = run(mod.pipe, {"n": 2}, progress=False, recorders=[memory])
    assert not log.exists()
    kinds = [type(e).__name__ for e in memory.events]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionFinished"
    assert {e.execution_id for e in memory.events} == {ex.id}
    assert Ledger(home).execution(ex.id).summary.status == "succeeded"  # the ledger recorded it too


def test_an_emitter_given_in_code_sends_without_the_environment(home, mod, tmp_path):
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    from ledgerflow.lineage.openlineage import OpenLineageEmitter

    log = tmp_path / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True)))
    ex = run(mod.pipe, {"n": 3}, progress=False, recorders=[OpenLineageEmitter(client)])
    sent = [json.loads(line) for line in log.read_text().splitlines() if line]
    exported = [json.loads(line) for line in export_lines(home, ex.id)]
    assert sorted(map(key, sent)) == sorted(map(key, exported))
    assert sent[-1]["eventType"] == "COMPLETE"


def test_emitter_never_fails_the_run(home, mod, monkeypatch, caplog):
    # Nothing listens on this port: sending fails, is logged, and the run is unaffected.
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "http")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TIMEOUT", "1")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__RETRY", '{"total": 0}')
    with caplog.at_level("WARNING", logger="ledgerflow.openlineage"):
        ex = run(mod.pipe, {"n": 2}, progress=False)
    assert ex.status == "succeeded"
    assert "could not send OpenLineage events" in caplog.text
