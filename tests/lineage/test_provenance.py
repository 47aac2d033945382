"""Issue 11: lineage follows what was recorded (the graph as built, each input's source),
never a coincidence of digests. Values here collide on purpose: `True`, `1`, the same
float, the same bytes made by unrelated steps and executions.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ledgerflow import (Dataset, ExecutionFailed, File, Ledger, Model, log_metric, map_task, run, task, when,
                        workflow)
from ledgerflow.engine.graph import Choice, FromStep, Gather
from ledgerflow.app.cli import cli

TESTS = Path(__file__).parent


def lineage(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def save_model(text: str) -> Model:
    out = Path(tempfile.mkdtemp(prefix="toy-model-"))
    (out / "weights.txt").write_text(text)
    return Model.from_path(out, flavor="toy")


def save_file(text: str) -> File:
    path = Path(tempfile.mkdtemp(prefix="toy-file-")) / "data.txt"
    path.write_text(text)
    return File.from_path(path)


def step_refs(walk) -> set:
    return {n.ref for n in walk.of_kind("step")}


def mentions(walk, execution_id: str) -> bool:
    """Whether an execution shows up anywhere in a walk: a node's ref or an edge's end."""
    texts = [n.ref for n in walk.nodes] + [t for e in walk.edges for t in (e.source, e.target)]
    return any(execution_id in t for t in texts)


_DOT_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)" \[(.*)\];$')


def dot_edges(text: str) -> dict:
    """(source, target) -> the edge's label, from `lineage graph --format dot`."""
    out = {}
    for line in text.splitlines():
        if m := _DOT_EDGE.match(line):
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', m.group(3))
            out[(json.loads(f'"{m.group(1)}"'), json.loads(f'"{m.group(2)}"'))] = label.group(1) if label else ""
    return out


def label_names(label: str) -> set:
    """The parameter names of a data edge's label ("accuracy · 8650d21c, production · ...")."""
    return {part.split(" · ")[0] for part in label.split(", ")}


# ------------------------------------------------------- tasks whose values all collide
# Every one returns 1 (or True, [1, 1], a File holding "1"...); none is cached (a cache hit
# would rightly link to another execution). Tasks live at module level for code snapshots.


@attrs.frozen
class Holder:
    file: File
    n: int


@task
def one(x: int) -> int:
    return 1


@task
def two(a: int, b: int) -> int:
    return 1


@task
def pair(x: int) -> tuple[int, int]:
    return 1, 1


@task
def use(p: tuple[int, int]) -> int:
    return 1


@task
def ones(x: int) -> list[int]:
    return [1, 1]  # the same bytes as `pair`'s tuple


@task
def total(xs: list[int]) -> int:
    return 1


@task
def flag(x: int, value: bool) -> bool:
    return value


@task
def wrap(x: int) -> Holder:
    return Holder(file=save_file("1"), n=1)  # the file's bytes are the JSON of the int 1


@task
def unwrap(h: Holder) -> int:
    return 1


@workflow
def sub(x: int) -> int:
    return two(a=one(x=x), b=one(x=x))


# ------------------------------------------------------- 1. plain values across workflows


@workflow
def flip(n: int = 3) -> bool:
    return flag(x=n, value=True)


@task
def train_toy(go: bool, n: int) -> Model["toy"]:
    return save_model(f"trained {go} {n}")


@workflow
def training(n: int = 3) -> Model["toy"]:
    return train_toy(go=flag(x=n, value=True), n=n)  # the same step, inputs and `True` as flip's


def test_plain_values_never_join_unrelated_executions(home):
    before = run(flip, home=home, progress=False)  # the same `n` and the same `True`, before...
    b = run(training, home=home, progress=False)
    after = run(flip, home=home, progress=False)  # ...and after the training run
    up = Ledger(home).upstream(b.outputs.digest)
    assert step_refs(up) == {f"{b.id}:flag", f"{b.id}:train_toy"}
    assert {n.ref for n in up.of_kind("execution")} <= {b.id}
    for other in (before.id, after.id):
        assert not mentions(up, other), f"upstream of B's model reaches the unrelated execution {other}"


# ------------------------------------------------------- 2. two floats that coincide at a gate

ACCURACY = 0.75  # the best score, the production score and the threshold: one digest


@task
def fit(seed: int) -> Model["toy"]:
    return save_model(f"seed {seed}")


@task
def score(model: Model["toy"]) -> float:
    return ACCURACY


@task
def pick_best(models: list[Model["toy"]], scores: list[float]) -> tuple[Model["toy"], float]:
    best = max(range(len(scores)), key=scores.__getitem__)
    return models[best], scores[best]


@task
def production_accuracy(name: str) -> float:
    return ACCURACY


@task
def gate(accuracy: float, threshold: float, production: float) -> bool:
    return accuracy >= threshold and accuracy >= production


@task
def promote(model: Model["toy"], accuracy: float, name: str) -> str:
    return f"promoted {name}"


@task
def reject(accuracy: float, threshold: float, production: float) -> str:
    return "rejected"


@workflow
def toy_digits(seeds: list[int] = [1, 2], threshold: float = ACCURACY, name: str = "toy") -> str:  # noqa: B006
    """The tail of examples/digits.py, with the same shapes."""
    models = map_task(fit, seed=seeds)
    scores = map_task(score, model=models)
    best, accuracy = pick_best(models=models, scores=scores)
    baseline = production_accuracy(name=name)
    return when(gate(accuracy=accuracy, threshold=threshold, production=baseline),
                then=lambda: promote(model=best, accuracy=accuracy, name=name),
                otherwise=lambda: reject(accuracy=accuracy, threshold=threshold, production=baseline))


def assert_gate_edges(home, execution_id, map_step):
    """The recorded graph and the dot drawing are the graph as built, whatever the values."""
    out = lineage(home, "graph", execution_id, "--format", "dot")
    assert out.exit_code == 0, out.output
    edges = dot_edges(out.output)
    assert label_names(edges[("pick_best", "gate")]) == {"accuracy"}
    assert label_names(edges[("production_accuracy", "gate")]) == {"production"}
    assert ("gate", "promote") in edges and ("gate", "reject") in edges
    ledger = Ledger(home)
    graph = ledger.graph(execution_id)
    assert ledger.execution(execution_id).graph == graph
    into = lambda target: {(e.source, e.slot, e.param) for e in graph.edges  # noqa: E731
                           if e.target == target and e.kind == "data"}
    assert into("gate") == {("pick_best", "return[1]", "accuracy"), ("@params", "threshold", "threshold"),
                            ("production_accuracy", "return", "production")}
    assert into("promote") == {("pick_best", "return[0]", "model"), ("pick_best", "return[1]", "accuracy"),
                               ("@params", "name", "name")}
    guards = {(e.target, e.param) for e in graph.edges if e.source == "gate" and e.kind == "guard"}
    assert guards == {("promote", "when=True"), ("reject", "when=False")}
    nodes = {n.step: n for n in graph.nodes}
    assert nodes[map_step].kind == "map"
    assert (nodes[f"{map_step}[0]"].kind, nodes[f"{map_step}[0]"].parent) == ("element", map_step)


def test_coinciding_floats_at_the_gate(home):
    ex = run(toy_digits, home=home, progress=False)
    assert ex.outputs == "promoted toy"
    assert_gate_edges(home, ex.id, "fit")


@pytest.fixture
def digits():
    pytest.importorskip("sklearn")
    pytest.importorskip("skops")
    spec = importlib.util.spec_from_file_location("digits", TESTS.parents[1] / "examples" / "digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["digits"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("digits", None)


@pytest.mark.slow
def test_digits_second_run_graph_is_the_built_graph(digits, tmp_path):
    """From the second run on, production's accuracy is the best accuracy: one digest."""
    home = tmp_path / "home"
    params = {"limit": 500, "threshold": 0.5, "gammas": [0.001]}
    run(digits.pipeline, params, home=home, progress=False)
    second = run(digits.pipeline, params, home=home, progress=False)
    steps = {s.step: s for s in Ledger(home).execution(second.id).steps}
    best = next(b for b in steps["pick_best"].outputs if b.name == "return[1]").artifact.digest
    assert steps["production_accuracy"].outputs[0].artifact.digest == best  # the coincidence is real
    assert_gate_edges(home, second.id, "train")


# ------------------------------------------------------- 3. a tuple passed whole


@workflow
def whole_tuple(x: int = 1) -> int:
    return two(a=use(p=pair(x=x)), b=total(xs=ones(x=x)))  # pair's (1, 1) and ones' [1, 1]: one digest


def test_a_tuple_passed_whole_keeps_its_edge(home, executor):
    ex = run(whole_tuple, home=home, executor=executor, progress=False)
    ledger = Ledger(home)
    assert step_refs(ledger.upstream(f"{ex.id}:use")) - {f"{ex.id}:use"} == {f"{ex.id}:pair"}
    assert f"{ex.id}:use" in step_refs(ledger.downstream(f"{ex.id}:pair"))
    edges = {(e.slot, e.param) for e in ledger.graph(ex.id).edges if (e.source, e.target) == ("pair", "use")}
    assert edges == {("return[0]", "p[0]"), ("return[1]", "p[1]")}
    drawn = dot_edges(lineage(home, "graph", ex.id, "--format", "dot").output)
    assert ("pair", "use") in drawn and ("ones", "use") not in drawn


# ------------------------------------------------------- 4. handles nested in values


@attrs.frozen
class Trained:
    model: Model["toy"]
    score: float


@dataclasses.dataclass(frozen=True)
class Report:
    file: File
    note: str


@task
def fit_record(seed: int) -> Trained:
    return Trained(model=save_model(f"record {seed}"), score=0.5)


@task
def write_report(seed: int) -> Report:
    return Report(file=save_file(f"report {seed}"), note="ok")


@task
def inspect_both(rec: Trained, rep: Report) -> list[str]:
    return [rec.model.digest, rep.file.digest]


@workflow
def nested(seed: int = 3) -> list[str]:
    return inspect_both(rec=fit_record(seed=seed), rep=write_report(seed=seed))


def test_handles_nested_in_values_are_artifacts(home, executor):
    ex = run(nested, home=home, executor=executor, progress=False)
    model_digest, file_digest = ex.outputs
    ledger = Ledger(home)
    for digest, producer, field in ((model_digest, "fit_record", "rec.model"),
                                    (file_digest, "write_report", "rep.file")):
        assert f"{ex.id}:{producer}" in step_refs(ledger.upstream(digest))  # no "no artifact" error
        assert f"{ex.id}:inspect_both" in step_refs(ledger.downstream(digest))
        consumed = ledger.sql("SELECT name, src_step, src_name, how FROM edges WHERE execution_id = ? AND "
                              "step = 'inspect_both' AND direction = 'consumed' AND digest = ?",
                              [ex.id, digest]).to_pylist()
        assert consumed == [{"name": field, "src_step": producer, "src_name": "return." + field.split(".")[1],
                             "how": "step"}]


# ------------------------------------------------------- 5. across executions, by reference


@attrs.define
class Point:
    x: int
    y: int


@task
def make_points(n: int) -> Dataset[Point]:
    return pa.table({"x": list(range(n)), "y": [0] * n})  # not cached: each run makes the same bytes anew


@task
def fit_points(data: Dataset[Point]) -> Model["toy"]:
    return save_model(f"fit on {data.to_arrow().num_rows} rows")


@workflow
def produce(n: int = 5) -> Dataset[Point]:
    return make_points(n=n)


@workflow
def produce_elsewhere(rows: int = 5) -> Dataset[Point]:
    return make_points(n=rows)


@workflow
def fit_on(data: Dataset[Point]) -> Model["toy"]:
    return fit_points(data=data)


@pytest.mark.slow
def test_a_handle_passed_by_reference_links_two_executions(home):
    c1 = run(produce_elsewhere, home=home, progress=False)  # the same bytes, from another workflow
    a = run(produce, home=home, progress=False)
    assert a.outputs.digest == c1.outputs.digest  # the coincidence is real
    b = run(fit_on, {"data": a.outputs}, home=home, progress=False)
    c2 = run(produce, home=home, progress=False)  # ...and from A's workflow again, independently
    ledger = Ledger(home)
    up = ledger.upstream(b.outputs.digest)
    assert step_refs(up) == {f"{b.id}:fit_points", f"{a.id}:make_points"}
    assert not mentions(up, c1.id) and not mentions(up, c2.id)
    assert "reference" in {e.how for e in up.edges}
    brought = ledger.sql("SELECT name, src_execution_id, src_step, src_name, how FROM edges WHERE execution_id = ? "
                         "AND step = '@params' AND direction = 'produced'", [b.id]).to_pylist()
    assert brought == [{"name": "data", "src_execution_id": a.id, "src_step": "make_points", "src_name": "return",
                        "how": "reference"}]
    # "Which models were trained on these bytes?" is a content question: B's step answers it.
    assert f"{b.id}:fit_points" in step_refs(ledger.downstream(a.outputs.digest))
    assert a.outputs.origin == f"{a.id}:make_points.return"  # what run() hands back says where it came from
    # Other producers of the same bytes are listed only when asked, apart, and never walked.
    other = ledger.upstream(b.outputs.digest, same_content=True)
    assert step_refs(other) == step_refs(up)
    assert {n.ref for n in other.same_content} == {f"{c1.id}:make_points", f"{c2.id}:make_points"}
    printed = lineage(home, "query", "upstream", b.outputs.digest, "--same-content")
    assert printed.exit_code == 0 and "NOT lineage" in printed.output and c2.id in printed.output


@pytest.mark.slow
def test_a_handle_parameter_by_reference_from_the_command_line(home, tmp_path, monkeypatch):
    """`-p data=EXEC:step.return` (or a digest some step produced) starts a run on a recorded
    handle, and the ledger records where it came from."""
    a = run(produce, home=home, progress=False)
    module = Path(__file__).resolve()
    monkeypatch.syspath_prepend(str(module.parent))
    target = f"{module.stem}:fit_on"
    for ref in (f"{a.id[:10]}:make_points.return", a.outputs.digest[:20]):
        out = lineage(home, "run", target, "-p", f"data={ref}", "--json")
        assert out.exit_code == 0, out.output
        b_id = json.loads(out.stdout)["id"]
        assert f"{a.id}:make_points" in step_refs(Ledger(home).upstream(f"{b_id}:fit_points"))
    bad = lineage(home, "run", target, "-p", "data=blake3:00ff")
    assert bad.exit_code == 2 and "data" in bad.output


# ------------------------------------------------------- 6. steps that never ran


@task
def boom(x: int) -> int:
    raise RuntimeError("boom")


@workflow
def breaks(x: int = 1) -> int:
    return two(a=one(x=boom(x=one(x=x))), b=x)  # one -> boom -> one_2 -> two


def test_steps_behind_a_failed_step_are_recorded_as_skipped(home):
    with pytest.raises(ExecutionFailed) as err:
        run(breaks, home=home, progress=False)
    ex_id = err.value.execution.id
    ledger = Ledger(home)
    steps = {s.step: s for s in ledger.execution(ex_id).steps}
    assert {"one_2", "two"} <= set(steps), "the steps behind the failure are missing"
    assert (steps["one"].status, steps["boom"].status) == ("succeeded", "failed")
    for name in ("one_2", "two"):
        assert (steps[name].status, steps[name].condition) == ("skipped", "upstream step 'boom' failed")
    rows = ledger.sql("SELECT step, status, blocked_by FROM steps WHERE execution_id = ? AND status = 'skipped' "
                      "ORDER BY step", [ex_id]).to_pylist()
    assert rows == [{"step": s, "status": "skipped", "blocked_by": "boom"} for s in ("one_2", "two")]
    shown = lineage(home, "show", ex_id).output
    assert "one_2" in shown and shown.count("upstream step 'boom' failed") == 2


# ------------------------------------------------------- 7. a cache hit keeps its metrics


@task(cache=True)
def measured(n: int) -> float:
    log_metric("quality", n / 4)
    return n / 4


@workflow
def metered(n: int = 3) -> float:
    return measured(n=n)


@pytest.mark.slow
def test_cached_steps_keep_their_metrics(home):
    first = run(metered, home=home, progress=False)
    second = run(metered, home=home, progress=False)
    assert second.steps["measured"].status == "cached"
    rows = json.loads(lineage(home, "metrics", second.id, "--json").output)["metrics"]
    assert [(r["step"], r["metric"], r["value"]) for r in rows] == [("measured", "quality", 0.75)]
    assert "quality" in lineage(home, "metrics", second.id).output
    both = json.loads(lineage(home, "compare", first.id, second.id, "--json").output)["metrics"]
    assert [(m["step"], m["metric"], m["values"]) for m in both] == \
        [("measured", "quality", {first.id: 0.75, second.id: 0.75})]
    line = next(ln for ln in lineage(home, "compare", first.id, second.id).output.splitlines()
                if "measured.quality" in ln)
    assert line.replace("│", " ").split()[1:] == ["0.75", "0.75"]  # not "-" for the cached step
    reused = Ledger(home).sql("SELECT reused_from FROM metrics WHERE execution_id = ?", [second.id]).to_pylist()
    assert reused == [{"reused_from": f"{first.id}:measured"}]
    # Upstream of the cache hit reaches the step that made its output, in the first run; both
    # runs ran the same code, which is one node.
    up = Ledger(home).upstream(f"{second.id}:measured")
    assert f"{first.id}:measured" in step_refs(up)
    assert ("cache" in {e.how for e in up.edges}) and len(up.of_kind("code")) == 1


# ------------------------------------------------------- 8. random workflows, colliding values


# Each shape adds values computed from earlier ones (a, b, c) to the workflow being built.
SHAPES = {
    "chain": lambda a, b, c: [one(x=a)],
    "join": lambda a, b, c: [two(a=a, b=b)],
    "split": lambda a, b, c: list(pair(x=a)),
    "whole": lambda a, b, c: [use(p=pair(x=a))],
    "map": lambda a, b, c: [total(xs=map_task(one, x=ones(x=a)))],
    "static_map": lambda a, b, c: [total(xs=map_task(one, x=[a, b]))],
    "gather": lambda a, b, c: [total(xs=[a, b, 1])],
    "branch_yes": lambda a, b, c: [when(flag(x=a, value=True), then=lambda: one(x=b),
                                        otherwise=lambda: two(a=c, b=c))],
    "branch_no": lambda a, b, c: [when(flag(x=a, value=False), then=lambda: one(x=b),
                                       otherwise=lambda: two(a=c, b=c))],
    "sub": lambda a, b, c: [sub(x=a)],
    "nested": lambda a, b, c: [unwrap(h=wrap(x=a))],
    "const": lambda a, b, c: [one(x=1)],  # a literal 1: the same bytes as every output, and no producer
}


def build(plan):
    """A workflow whose body is the plan: [(shape, (i, j, k)), ...], indexes into the values so far."""

    @workflow
    def random_flow(x: int = 1) -> int:
        vals = [x]
        for shape, picks in plan:
            vals += SHAPES[shape](*(vals[i % len(vals)] for i in picks))
        return vals[-1]

    return random_flow


plans = st.lists(st.tuples(st.sampled_from(sorted(SHAPES)), st.tuples(*[st.integers(0, 20)] * 3)),
                 min_size=1, max_size=6)


# A step in a `when` branch depends on the condition that let it run, as Node.depends_on
# says (the recorded graph's "guard" and "condition" edges); False would make upstream data-only.
CONTROL_IS_UPSTREAM = True


def expected_upstream(wf, ex) -> dict:
    """step -> the steps it depends on, transitively, from the graph as built (Node.inputs
    and guards) plus the map elements the run created. A `when` value depends on its
    condition and on the branch taken: the other branch was skipped and produced nothing."""

    def steps_of(src) -> set:
        if isinstance(src, FromStep):
            return {src.step}
        if isinstance(src, Gather):
            return set().union(*map(steps_of, src.items))
        if isinstance(src, Choice):
            taken = src.then if ex.steps[src.condition.step].outputs["return"] else src.otherwise
            return (steps_of(src.condition) if CONTROL_IS_UPSTREAM else set()) | steps_of(taken)
        return set()  # a parameter or a constant

    def deps_of(node, element=None) -> set:
        deps = set().union(*(steps_of(g.condition) for g in node.guards if CONTROL_IS_UPSTREAM))
        for name, src in node.inputs:
            if element is not None and name in node.mapped and isinstance(src, Gather):
                src = src.items[element]  # element i of a map over a list written in the body reads item i
            deps |= steps_of(src)
        return deps

    direct = {}
    for n in wf.graph.nodes:
        direct[n.name] = deps_of(n)
        if n.mapped:  # the map step gathers its elements' outputs
            for step in ex.steps:
                if m := re.fullmatch(re.escape(n.name) + r"\[(\d+)\]", step):
                    direct[step] = deps_of(n, int(m.group(1)))
                    direct[n.name].add(step)

    def closure(step, seen):
        for d in direct[step] - seen:
            seen.add(d)
            closure(d, seen)
        return seen

    return {s: closure(s, set()) for s in direct}


def check_provenance(home, wf, ex):
    ledger = Ledger(home)
    whole = ledger.upstream(ex.id)
    assert len({(n.kind, n.ref) for n in whole.nodes}) == len(whole.nodes)  # each node once
    # The upstream of every step that ran is exactly what it depends on, in this execution.
    others = {e.id for e in ledger.executions()} - {ex.id}
    expected = expected_upstream(wf, ex)
    for step, result in ex.steps.items():
        if result.status == "skipped":
            continue
        up = ledger.upstream(f"{ex.id}:{step}")
        refs = step_refs(up)
        assert all(r.startswith(f"{ex.id}:") for r in refs), refs
        assert {r.split(":", 1)[1] for r in refs} - {step} == expected[step], step
        assert not any(mentions(up, o) for o in others), step
    # The recorded graph is the built graph: the same steps, the same step-to-step edges.
    built = {n.name for n in wf.graph.nodes}
    graph = ledger.graph(ex.id)
    assert {n.step for n in graph.nodes if n.kind != "element"} == built
    assert {(e.source, e.target) for e in graph.edges if e.source in built and e.target in built} == \
        {(d, n.name) for n in wf.graph.nodes for d in n.depends_on}


# Every example runs in the same home, so each execution's values collide with the earlier ones'.
@settings(max_examples=15, deadline=None)
@given(plan=plans)
@pytest.mark.slow
def test_random_workflows_walk_by_provenance(home, plan):
    wf = build(plan)
    ex = run(wf, home=home, progress=False)
    check_provenance(home, wf, ex)


EVERY_SHAPE = [(shape, (n, n + 1, 0)) for n, shape in enumerate(SHAPES)]


@pytest.mark.slow
def test_every_shape_on_each_executor(home, executor):
    wf = build(EVERY_SHAPE)
    for _ in range(2):  # the second run's values collide with the first's
        ex = run(wf, home=home, executor=executor, progress=False)
        check_provenance(home, wf, ex)


@pytest.mark.slow
def test_a_sub_workflow_called_twice_has_distinct_steps(home):
    wf = build([("sub", (0, 0, 0)), ("sub", (1, 0, 0))])
    names = [n.name for n in wf.graph.nodes]
    assert len(names) == len(set(names)) == 6, names
    ex = run(wf, home=home, progress=False)
    assert len(ex.steps) == 6
    check_provenance(home, wf, ex)


# ------------------------------------------------------- 9. an execution killed mid-step


@task
def sleepy(marker: str) -> int:
    Path(marker).write_text("started")
    time.sleep(120)
    return 1


@workflow
def slow(marker: str = "") -> int:
    return sleepy(marker=marker)


@pytest.mark.slow
def test_a_killed_executions_running_step_is_recorded_interrupted(home, tmp_path):
    marker = tmp_path / "started"
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_provenance as t; "
            f"t.run(t.slow, {{'marker': {str(marker)!r}}}, home={str(home)!r}, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the slow step never started"
            time.sleep(0.05)
        time.sleep(1.5)  # the ledger flushes every 0.25 s: the step's `running` row is on disk
    finally:
        proc.kill()  # SIGKILL: nothing of the run gets to say it ended
        proc.wait()
    run(flip, home=home, progress=False)  # another run on the same home finds the dead one
    ledger = Ledger(home)
    [killed] = [e for e in ledger.executions() if e.workflow.endswith(":slow")]
    assert killed.status == "interrupted"
    rows = ledger.sql("SELECT step, status FROM steps WHERE execution_id = ?", [killed.id]).to_pylist()
    assert rows == [{"step": "sleepy", "status": "interrupted"}]
    assert ledger.verify(store=False).ok
