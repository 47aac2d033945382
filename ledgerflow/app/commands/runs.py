"""Running and re-running: run, replay, diff, metrics, compare."""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import sys

import click

from ledgerflow.errors import DefinitionError, ExecutionFailed, ParameterError, WorkflowTypeError
from ledgerflow.home import Home
from ledgerflow.printable import printable
from ledgerflow.app.commands.group import EXIT_PROBLEM, EXIT_USAGE, cli, fail, guarded, open_ledger
from ledgerflow.app.commands.output import Table, echo, escape, new_console, print_json, short_digest, status_markup
from ledgerflow.types.kinds import VALUE_KIND

class _Executors(click.Choice):
    """The registered executors (`ledgerflow.executors.register`), read when the option is used."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self):
        from ledgerflow import executors

        return executors.names()

    @choices.setter
    def choices(self, _) -> None:
        pass


EXECUTORS = _Executors()


class _PrintableFormatter(logging.Formatter):
    """Log lines carry step errors and names: shown, never obeyed, by the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _log_to_stderr() -> None:
    """Progress lines go to stderr when it is not a terminal (a terminal gets the live display)."""
    if not sys.stderr.isatty():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PrintableFormatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger = logging.getLogger("ledgerflow")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _stdout_for_json_only(as_json: bool):
    """With --json, stdout carries the JSON and nothing else: what steps (and Ray) print while
    the run goes goes to stderr instead (and is kept in the ledger: `lineage logs`)."""
    return contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()


@cli.command("run")
@click.argument("target")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A workflow parameter, converted to its declared type (repeatable).")
@click.option("--executor", type=EXECUTORS, default="local", show_default=True, help="Where the steps run.")
@click.option("--no-cache", is_flag=True, help="Run every step, even those with a cached result.")
@click.option("--recompute", "recompute", multiple=True, metavar="STEP",
              help="Run this step even where a cached result exists (repeatable; a map step covers its elements).")
@click.option("--json", "as_json", is_flag=True, help="Print the execution id, status and outputs as JSON.")
@click.pass_context
@guarded
def run_cmd(ctx, target, params, executor, no_cache, recompute, as_json):
    """Run FILE.py:WORKFLOW or MODULE:WORKFLOW and record it; print its id and outputs."""
    from ledgerflow.engine.loading import LoadError, load_workflow, params_from_text
    from ledgerflow.app.running import run as run_workflow
    from ledgerflow.types.codec import encode

    try:
        wf = load_workflow(target)
        values = params_from_text(wf, params)
    except (LoadError, ParameterError, WorkflowTypeError, DefinitionError) as e:
        fail(str(e).splitlines()[0], EXIT_USAGE)
    _log_to_stderr()
    try:
        with _stdout_for_json_only(as_json):
            ex = run_workflow(wf, values, executor=executor, cache=not no_cache, home=ctx.obj["home"], ledger=ctx.obj.get("ledger"),
                              recompute=frozenset(recompute))
    except ParameterError as e:  # an unknown --recompute step
        fail(str(e).splitlines()[0], EXIT_USAGE)
    except KeyboardInterrupt:  # Ctrl-C here, or `lineage cancel` from elsewhere: the record says so
        fail("cancelled: the steps that were running are recorded cancelled, the rest not started",
              EXIT_PROBLEM)
    except ExecutionFailed as e:
        if as_json and e.execution is not None:
            print_json({"id": e.execution.id, "status": e.execution.status, "error": e.execution.error})
        fail(str(e).splitlines()[0], EXIT_PROBLEM)
    outputs = json.loads(encode(ex.outputs, wf.output))
    if as_json:
        print_json({"id": ex.id, "status": ex.status, "outputs": outputs})
        return
    echo(f"execution {ex.id}: {ex.status}")
    echo(f"outputs: {json.dumps(outputs)}")


@cli.command("replay")
@click.argument("execution")
@click.option("--executor", type=EXECUTORS, default="local", show_default=True, help="Where the steps run.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_context
@guarded
def replay_cmd(ctx, execution, executor, as_json):
    """Re-run a recorded execution from its code snapshot, without the cache, and compare bit for bit.

    Exit 0 when every step's outputs are identical, 1 otherwise.
    """
    from ledgerflow.app.replay import replay as replay_execution

    _log_to_stderr()
    with _stdout_for_json_only(as_json):
        r = replay_execution(execution, executor=executor, home=ctx.obj["home"], ledger=ctx.obj.get("ledger"))
    if as_json:
        print_json({"original": r.original, "replay": r.id, "verdict": r.verdict, "identical": r.identical,
                     "reason": r.reason, "steps": r.steps, "artifacts": r.artifacts,
                     "differences": [{"step": d.step, "output": d.output, "original": d.original,
                                      "replayed": d.replayed} for d in r.differences],
                     "environment_changes": list(r.environment_changes)})
    else:
        echo(r.summary())
        for d in r.differences[1:]:
            echo(f"  also differs: {d.step} {d.output}: {short_digest(d.original)} -> {short_digest(d.replayed)}")
        for change in r.environment_changes:
            echo(f"  environment: {change}")
    if not r.identical:
        sys.exit(EXIT_PROBLEM)


def _snapshot_files(store: Store, digest: str | None) -> dict[str, str]:
    if not digest or not store.has(digest):
        return {}
    root = store.checkout(digest)
    return {p.relative_to(root).as_posix(): p.read_text(errors="replace")
            for p in sorted(root.rglob("*")) if p.is_file()}


def _graph_changes(a, b) -> dict:
    """Steps and edges of the recorded graphs (inferred for a pre-schema-4 execution) that
    only one of two executions has: what changed in the workflow's shape, or in a map's size."""
    from ledgerflow.lineage.inference import inferred_graph

    ga = a.graph if a.graph is not None else inferred_graph(a)
    gb = b.graph if b.graph is not None else inferred_graph(b)
    steps_a, steps_b = [n.step for n in ga.nodes], [n.step for n in gb.nodes]
    edges_a, edges_b = list(dict.fromkeys(ga.edges)), list(dict.fromkeys(gb.edges))
    return {
        "inferred": [ga.inferred, gb.inferred],
        "steps_only_in_first": [n for n in dict.fromkeys(steps_a) if n not in set(steps_b)],
        "steps_only_in_second": [n for n in dict.fromkeys(steps_b) if n not in set(steps_a)],
        "edges_only_in_first": [e for e in edges_a if e not in set(edges_b)],
        "edges_only_in_second": [e for e in edges_b if e not in set(edges_a)],
    }


def _edge_text(e) -> str:
    kind = "" if e.kind == "data" else f" ({e.kind})"
    return f"{e.source}.{e.slot} -> {e.target}.{e.param}{kind}"


@cli.command("diff")
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_context
@guarded
def diff_cmd(ctx, first, second, as_json):
    """What differs between two executions: parameters, code, environment, graph, and step outputs.

    The graph part compares the graphs as recorded (steps, and edges from an output to a
    parameter); step outputs are compared step by step, by name.
    """
    from ledgerflow.engine import environment
    from ledgerflow.app.replay import compare as compare_steps
    from ledgerflow.store import Store

    ledger = open_ledger(ctx)
    a, b = ledger.execution(first), ledger.execution(second)
    params = {k: [a.params.get(k), b.params.get(k)] for k in sorted(set(a.params) | set(b.params))
              if a.params.get(k) != b.params.get(k)}
    store = Store.open(Home.resolve(ctx.obj["home"]).store_url)
    files_a, files_b = _snapshot_files(store, a.code_digest), _snapshot_files(store, b.code_digest)
    code = []
    for name in sorted(set(files_a) | set(files_b)):
        code.extend(difflib.unified_diff(files_a.get(name, "").splitlines(keepends=True),
                                         files_b.get(name, "").splitlines(keepends=True),
                                         f"{a.summary.id[:10]}/{name}", f"{b.summary.id[:10]}/{name}"))
    env = environment.differences(a.environment or {}, b.environment or {})
    steps, _, _ = compare_steps(a, b)
    graph = _graph_changes(a, b)
    if as_json:
        print_json({"first": a.summary.id, "second": b.summary.id, "parameters": params,
                     "code_digests": [a.code_digest, b.code_digest], "code": "".join(code), "environment": env,
                     "graph": graph,
                     "outputs": [{"step": d.step, "output": d.output, "first": d.original, "second": d.replayed}
                                 for d in steps]})
        return
    out = new_console()
    out.print(f"[bold]{a.summary.id}[/] ({escape(a.summary.workflow or '')}) vs [bold]{b.summary.id}[/] "
              f"({escape(b.summary.workflow or '')})")
    out.print("[bold]parameters[/]" + ("" if params else ": identical"))
    for k, (x, y) in params.items():
        out.print(f"  {escape(k)}: {escape(json.dumps(x))} -> {escape(json.dumps(y))}")
    out.print("[bold]code[/]" + (": identical" if a.code_digest == b.code_digest else ""))
    for line in code:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        out.print(f"[{style}]{escape(line.rstrip())}[/]")
    out.print("[bold]environment[/]" + ("" if env else ": identical"))
    for line in env:
        out.print(f"  {escape(line)}")
    changed = [k for k in graph if k.startswith(("steps_", "edges_")) and graph[k]]
    note = " (inferred: recorded before the ledger kept graphs)" if any(graph["inferred"]) else ""
    out.print("[bold]graph[/]" + ("" if changed else ": identical") + note)
    for key, sign, style in (("steps_only_in_first", "-", "red"), ("steps_only_in_second", "+", "green")):
        for step in graph[key]:
            out.print(f"  [{style}]{sign} step {escape(step)}[/]")
    for key, sign, style in (("edges_only_in_first", "-", "red"), ("edges_only_in_second", "+", "green")):
        for e in graph[key]:
            out.print(f"  [{style}]{sign} {escape(_edge_text(e))}[/]")
    out.print("[bold]step outputs[/]" + ("" if steps else ": identical"))
    values_a, values_b = _output_values(a), _output_values(b)
    for d in steps:
        before = _shown(values_a.get((d.step, d.output)), d.original)
        after = _shown(values_b.get((d.step, d.output)), d.replayed)
        out.print(f"  {escape(d.step)} {escape(d.output)}: {escape(before)} -> {escape(after)}")


_SHOWN_VALUE_CHARS = 60


def _output_values(detail) -> dict:
    """(step, output) -> the recorded plain value's JSON text, for the outputs that are values."""
    return {(st.step, b.name): b.artifact.value for st in detail.steps for b in st.outputs
            if b.artifact.kind == VALUE_KIND and b.artifact.value is not None}


def _shown(value: str | None, digest: str | None) -> str:
    """A short plain value as itself (`0.9911`); a long one or a handle by its short digest."""
    if value is not None and len(value) <= _SHOWN_VALUE_CHARS:
        return value
    return short_digest(digest)


def _metric_rows(detail) -> list[dict]:
    return [{"step": st.step, "metric": m.name, "index": m.index, "value": m.value}
            for st in detail.steps for m in st.metrics]


@cli.command("metrics")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of {step, metric, index, value}).")
@click.pass_context
@guarded
def metrics_cmd(ctx, execution, as_json):
    """The metrics an execution's steps logged; a cache hit's are those of the step it reused."""
    d = open_ledger(ctx).execution(execution)
    rows = _metric_rows(d)
    if as_json:
        print_json({"execution": d.summary.id, "metrics": rows})
        return
    reused = {(st.step, m.name, m.index): m.reused_from for st in d.steps for m in st.metrics if m.reused_from}
    columns = ("step", "metric", "index", "value") + (("reused from (cache hit)",) if reused else ())
    table = Table(*columns, title=f"{d.summary.id} {status_markup(d.summary.status)}")
    for r in rows:
        cells = [escape(r["step"]), escape(r["metric"]), "" if r["index"] is None else str(r["index"]),
                 f"{r['value']:.6g}"]
        if reused:
            cells.append(escape(reused.get((r["step"], r["metric"], r["index"])) or ""))
        table.add_row(*cells)
    new_console().print(table)


@cli.command("compare")
@click.argument("executions", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def compare_cmd(ctx, executions, as_json):
    """Parameters and metrics of several executions, side by side (a metric's last value per step)."""
    ledger = open_ledger(ctx)
    details = [ledger.execution(e) for e in executions]
    ids = [d.summary.id for d in details]
    params = sorted({k for d in details for k in d.params})
    metrics: dict[tuple[str, str], dict[str, float]] = {}
    for d in details:
        for r in _metric_rows(d):
            metrics.setdefault((r["step"], r["metric"]), {})[d.summary.id] = r["value"]
    if as_json:
        print_json({"executions": ids,
                     "parameters": {k: {d.summary.id: d.params.get(k) for d in details} for k in params},
                     "metrics": [{"step": s, "metric": m, "values": v} for (s, m), v in sorted(metrics.items())]})
        return
    table = Table("", *[i[:14] for i in ids])
    for k in params:
        table.add_row(f"param {escape(k)}", *[escape(json.dumps(d.params.get(k))) for d in details])
    for (step, name), values in sorted(metrics.items()):
        table.add_row(f"{escape(step)}.{escape(name)}",
                      *[f"{values[i]:.6g}" if i in values else "-" for i in ids])
    new_console().print(table)
