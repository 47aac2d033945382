"""The `lineage` command: list, show, query and verify what the ledger recorded.

Exit codes, for scripts:
  0  done; for `verify`, the ledger and the store are intact
  1  a problem was found (`verify`), or the ledger could not be read (locked, damaged)
  2  bad input: an unknown id or ref, an ambiguous prefix, bad or writing SQL, bad options

Errors are one line on stderr, never a traceback. `--json` prints stable, machine-readable
JSON on stdout (the shape of each value's `to_json()`, documented in docs/ledger.md).
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import datetime

import click
import duckdb
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ledgerflow.errors import LedgerflowError, RefError
from ledgerflow.lineage.ledger import Ledger
from ledgerflow.lineage.values import jsonable

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

_STATUS_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "failed": "red",
    "timeout": "red",
    "interrupted": "yellow",
    "running": "blue",
    "cancelled": "magenta",
    "skipped": "dim",
}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ledgerflow")
    except Exception:
        import ledgerflow

        return getattr(ledgerflow, "__version__", "unknown")


def _console() -> Console:
    # Wide when piped, so tables aren't cut to 80 columns in logs.
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _fail(message: str, code: int) -> None:
    click.echo(f"lineage: error: {message}", err=True)
    sys.exit(code)


def _guarded(fn):
    """Turn Ledgerflow and DuckDB errors into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RefError as exc:
            _fail(str(exc), EXIT_USAGE)
        except LedgerflowError as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            bad_input = text.startswith(("query sql is read-only", "bad SQL", "SQL error"))
            _fail(text, EXIT_USAGE if bad_input else EXIT_PROBLEM)
        except duckdb.Error as exc:
            _fail(f"ledger error: {str(exc).splitlines()[0]}", EXIT_PROBLEM)

    return wrapper


def _print_json(data) -> None:
    click.echo(json.dumps(jsonable(data), indent=2, sort_keys=False, default=str))


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _status(status: str | None) -> str:
    status = status or "-"
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="lineage")
@click.option(
    "--home",
    envvar="LEDGERFLOW_HOME",
    type=click.Path(file_okay=False),
    help="Ledgerflow home holding ledger.duckdb (default: $LEDGERFLOW_HOME or ./.ledgerflow).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Audit what Ledgerflow ran: executions, lineage, SQL, and tamper checks."""
    ctx.obj = {"home": home}


def _ledger(ctx: click.Context) -> Ledger:
    return Ledger(ctx.obj["home"])


# ---- `lineage run` goes here (added with the engine wiring; see issue 3 scope item 5). ----


@cli.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N executions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def list_cmd(ctx, limit, as_json):
    """Executions, newest first: id, workflow, status, start, duration."""
    rows = _ledger(ctx).executions(limit=limit)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "workflow", "status", "started (UTC)", "duration", box=None)
    for r in rows:
        table.add_row(r.id, escape(r.workflow or ""), _status(r.status), _when(r.started_at), _dur(r.duration_s))
    _console().print(table if rows else "no executions recorded")


@cli.command()
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def show(ctx, execution, as_json):
    """One execution's steps as a tree: status, duration, attempts, cache, inputs and outputs."""
    d = _ledger(ctx).execution(execution)
    if as_json:
        _print_json(d)
        return
    s = d.summary
    root = Tree(
        f"[bold]{s.id}[/]  {escape(s.workflow or '')}  {_status(s.status)}  "
        f"started {_when(s.started_at)}  {_dur(s.duration_s)}  executor={s.executor}"
    )
    if s.error:
        root.add(f"[red]error: {escape(s.error)}[/]")
    if d.inputs:
        params = root.add("parameters")
        for b in d.inputs:
            params.add(f"{escape(b.name)} = {escape(b.artifact.value or _short(b.artifact.digest))}")
    for st in d.steps:
        bits = [f"[bold]{escape(st.step)}[/]", escape(st.task or ""), _status(st.status), _dur(st.duration_s)]
        if len(st.attempts) > 1:
            bits.append(f"attempts={len(st.attempts)}")
        if st.cache_hit:
            bits.append(f"[cyan]cache hit from {escape(st.cached_from or '?')}[/]")
        node = root.add("  ".join(bits))
        for b in st.inputs:
            node.add(f"in  {escape(b.name)}: {_short(b.artifact.digest)} {escape(b.artifact.type or '')}")
        for b in st.outputs:
            node.add(f"out {escape(b.name)}: {_short(b.artifact.digest)} {escape(b.artifact.type or '')}")
        for m in st.metrics:
            node.add(f"metric {escape(m.name)} = {m.value:g}" + (f" @ {m.index}" if m.index is not None else ""))
        if len(st.attempts) > 1 or st.status not in ("succeeded", "cached"):
            for a in st.attempts:
                line = f"attempt {a.attempt}: {_status(a.status)} {_dur(a.duration_s)}"
                if a.error:
                    line += f"  [red]{escape(a.error)}[/]"
                node.add(line)
    if d.outputs:
        outs = root.add("outputs")
        for b in d.outputs:
            outs.add(f"{escape(b.name)}: {_short(b.artifact.digest)} {escape(b.artifact.type or '')}")
    _console().print(root)


@cli.group()
def query():
    """Lineage queries (upstream, downstream) and read-only SQL."""


def _walk_cmd(direction: str):
    @click.argument("ref")
    @click.option("--depth", type=click.IntRange(min=0), default=None, help="Stop N hops from REF.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_guarded
    def cmd(ctx, ref, depth, as_json):
        ledger = _ledger(ctx)
        result = ledger.upstream(ref, depth) if direction == "upstream" else ledger.downstream(ref, depth)
        if as_json:
            _print_json(result)
            return
        table = Table("depth", "kind", "ref", "what", "status", box=None)
        for n in result.nodes:
            what = n.label
            if n.artifact is not None and n.artifact.value is not None:
                what = f"{n.label} = {n.artifact.value}"
            ref_text = _short(n.ref) if n.kind == "artifact" else n.ref
            table.add_row(str(n.depth), n.kind, ref_text, escape(what or ""), _status(n.status) if n.status else "")
        _console().print(table)

    cmd.__doc__ = (
        "Everything REF came from, down to raw parameters."
        if direction == "upstream"
        else "Everything made from REF, across executions."
    ) + "\n\nREF: a digest or unique prefix, an execution id, or EXECUTION_ID:step."
    return cmd


query.command("upstream")(_walk_cmd("upstream"))
query.command("downstream")(_walk_cmd("downstream"))


@query.command("sql")
@click.argument("statement")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of row objects).")
@click.pass_context
@_guarded
def sql_cmd(ctx, statement, as_json):
    """Run a read-only SQL query (tables and views: docs/ledger.md)."""
    result = _ledger(ctx).sql(statement)
    rows = result.to_pylist()
    if as_json:
        _print_json(rows)
        return
    table = Table(*[escape(c) for c in result.column_names], box=None)
    for row in rows:
        table.add_row(*[escape("NULL" if v is None else str(jsonable(v))) for v in row.values()])
    _console().print(table)


@cli.command()
@click.option("--no-store", is_flag=True, help="Check only the ledger's hash chain, not the store's objects.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def verify(ctx, no_store, as_json):
    """Re-walk the hash chain and re-hash every stored object. Exit 1 naming the first problem."""
    report = _ledger(ctx).verify(store=not no_store)
    if as_json:
        _print_json(report)
    else:
        out = _console()
        out.print(f"chain: {report.rows} rows, head seq {report.head_seq} {report.head_hash[:16]}")
        if report.store:
            out.print(f"store: {report.objects_checked} objects checked at {escape(report.store)}")
        elif report.store_note:
            out.print(f"store: {escape(report.store_note)}")
        for p in report.problems[:20]:
            out.print(f"[red]{escape(str(p))}[/]")
        for p in report.object_problems[:20]:
            out.print(f"[red]{escape(str(p))}[/]")
        if report.ok:
            out.print("[green]ok[/]")
    if not report.ok:
        click.echo(f"lineage: verify failed: {report.first_problem}", err=True)
        sys.exit(EXIT_PROBLEM)


def main(argv: list | None = None) -> None:
    """Console-script entry point (`lineage`)."""
    cli.main(args=argv, prog_name="lineage")


if __name__ == "__main__":
    main()
