"""Audit commands: list, show, query (upstream, downstream, sql), verify."""

from __future__ import annotations

import re
import sys
from datetime import datetime

import click

from ledgerflow.engine.status import EXECUTION_STATES, Status
from ledgerflow.app.display import format_size
from ledgerflow.app.commands.group import EXIT_PROBLEM, cli, guarded, open_ledger
from ledgerflow.app.commands.output import STATUS_COLORS, Table, echo, escape, format_duration, new_console, page, print_json, print_paged, short_digest, status_markup, timestamp
from ledgerflow.types.kinds import VALUE_KIND


LIST_LIMIT = 20
STATUSES = tuple(s.value for s in EXECUTION_STATES)


def _since(ctx, param, value):
    """An ISO date or time (UTC if it names no zone), or an age: 30m, 12h, 7d, 2w."""
    if value is None:
        return None
    from datetime import timedelta, timezone

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: float(m.group(1))})
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an age (30m, 12h, 7d, 2w) nor an ISO date or time "
                                 "(2026-11-30, 2026-11-30T14:00)") from None


@cli.command("list")
@click.option("--limit", type=click.IntRange(min=0), default=LIST_LIMIT, show_default=True,
              help="Show at most N executions (0: all).")
@click.option("--status", type=click.Choice(STATUSES), help="Only executions with this status.")
@click.option("--workflow", metavar="TEXT", help="Only workflows whose module:function contains TEXT.")
@click.option("--since", callback=_since, metavar="WHEN", help="Only those started since WHEN: an age (30m, 12h, "
              "7d, 2w) or an ISO date or time (UTC unless it says otherwise).")
@click.option("--tag", help="Only executions carrying this tag.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def list_cmd(ctx, limit, status, workflow, since, tag, as_json):
    """Executions, newest first: id, workflow, status, start, duration."""
    rows = open_ledger(ctx).executions(limit=limit + 1 if limit else None, status=status, workflow=workflow,
                                   since=since, tag=tag)
    more = bool(limit) and len(rows) > limit
    rows = rows[:limit] if limit else rows
    if more:  # on stderr, so that a script counting JSON rows is told too
        echo(f"(the {limit} newest shown: --limit N for more, --limit 0 for all)", err=True)
    if as_json:
        print_json(rows)
        return
    filtered = any(x is not None for x in (status, workflow, since, tag))
    if not rows:
        echo("no executions match" if filtered else "no executions recorded")
        return
    from ledgerflow.app.commands.columns import render

    page(render(("id", "workflow", "status", "started (UTC)", "duration"),
                [(r.id, r.workflow or "", r.status or "-", timestamp(r.started_at), format_duration(r.duration_s))
                 for r in rows],
                styles={2: STATUS_COLORS}, color=sys.stdout.isatty()))


def _python_rows(table) -> list:
    """A query's rows as dicts; a value Python can't hold (DuckDB's `infinity` timestamps, dates
    before year 1 or after 9999) is given as text instead of stopping the whole answer."""
    try:
        return table.to_pylist()
    except (OverflowError, ValueError):
        pass
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        values = []
        for scalar in column:
            try:
                values.append(scalar.as_py())
            except (OverflowError, ValueError):
                values.append(_out_of_range(scalar))
        columns[name] = values
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def _out_of_range(scalar) -> str:
    raw = getattr(scalar, "value", None)  # the stored integer of a date or timestamp
    if isinstance(raw, int) and abs(raw) in (2**31 - 1, 2**63 - 1):  # DuckDB's infinities, as Arrow carries them
        return "infinity" if raw > 0 else "-infinity"
    return f"{scalar.type} {raw} (outside what Python can represent)"


def _came_from(bound, execution_id: str, outputs: bool = False) -> str:
    """`  <- split.return[0]`: where an input came from, as recorded. For an output, only a
    cache hit's (the occurrence it reuses): a step's own output came from the step."""
    from ledgerflow.app.render import source_text

    if outputs and bound.how != "cache":
        return ""
    text = source_text(bound.source, bound.how, execution_id)
    return f"  <- {escape(text)}" if text else ""


def _metric_line(m, execution_id: str) -> str:
    from ledgerflow.app.render import source_text

    line = f"metric {escape(m.name)} = {m.value:g}" + (f" @ {m.index}" if m.index is not None else "")
    if m.reused_from:
        line += f" [dim](reused from {escape(source_text(m.reused_from, None, execution_id))})[/]"
    return line


def execution_tree(ledger, d):
    """One execution as a rich Tree: what `show` prints and `watch` redraws."""
    from rich.tree import Tree

    from ledgerflow.lineage.why import reasons_of

    why = reasons_of(ledger, d)
    s = d.summary
    where = (d.environment or {}).get("executor_where")
    root = Tree(
        f"[bold]{s.id}[/]  {escape(s.workflow or '')}  {status_markup(s.status)}  "
        f"started {timestamp(s.started_at)}  {format_duration(s.duration_s)}  executor={s.executor}"
        + (f" ({escape(where)})" if where and where != "this process" else "")
    )
    if s.error:
        root.add(f"[red]error: {escape(s.error)}[/]")
    if d.graph is None:
        root.add("[yellow]no graph recorded (written before the ledger kept graphs): sources may be missing[/]")
    if d.inputs:
        params = root.add("parameters")
        for b in d.inputs:
            params.add(f"{escape(b.name)} = {escape(b.artifact.value or short_digest(b.artifact.digest))}"
                       f"{_came_from(b, s.id)}")
    for st in d.steps:
        bits = [f"[bold]{escape(st.step)}[/]", escape(st.task or ""), status_markup(st.status), format_duration(st.duration_s)]
        if len(st.attempts) > 1:
            bits.append(f"attempts={len(st.attempts)}")
        if st.cache_hit:
            bits.append(f"[cyan]cache hit from {escape(st.cached_from or '?')}[/]")
        if st.blocked_by:
            bits.append(f"[red]blocked by {escape(st.blocked_by)}[/]")
        if why.get(st.step):
            bits.append(f"[yellow]{escape(why[st.step])}[/]")
        node = root.add("  ".join(bits))
        for b in st.inputs:
            node.add(f"in  {escape(b.name)}: {short_digest(b.artifact.digest)} {escape(b.artifact.type or '')}"
                     f"{_came_from(b, s.id)}")
        for b in st.outputs:
            node.add(f"out {escape(b.name)}: {short_digest(b.artifact.digest)} {escape(b.artifact.type or '')}"
                     f"{_came_from(b, s.id, outputs=True)}")
        for m in st.metrics:
            node.add(_metric_line(m, s.id))
        if st.condition:
            node.add(f"[dim]{escape(st.condition)}[/]")
        if len(st.attempts) > 1 or st.status not in (Status.SUCCEEDED, Status.CACHED, Status.SKIPPED):
            for a in st.attempts:
                line = f"attempt {a.attempt}: {status_markup(a.status)} {format_duration(a.duration_s)}"
                if a.error:
                    line += f"  [red]{escape(a.error)}[/]"
                attempt = node.add(line)
                if a.traceback:  # the whole of it: where it failed is what the reader came for
                    attempt.add(f"[dim]{escape(a.traceback.rstrip())}[/]")
    if d.outputs:
        outs = root.add("outputs")
        for b in d.outputs:
            outs.add(f"{escape(b.name)}: {short_digest(b.artifact.digest)} {escape(b.artifact.type or '')}"
                     f"{_came_from(b, s.id)}")
    return root


@cli.command()
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def show(ctx, execution, as_json):
    """One execution's steps as a tree: status, duration, attempts, cache, inputs and outputs.

    Each input says where it came from (`<- split.return[0]`; from another execution, its
    id's prefix first), as the ledger recorded it.
    """
    ledger = open_ledger(ctx)
    d = ledger.execution(execution)
    if as_json:
        print_json(d)
        return
    print_paged(execution_tree(ledger, d))


@cli.command("why")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def why_cmd(ctx, ref, as_json):
    """Why a step ran (what in its cache key changed since the last run of its task) or which
    earlier step it reused.

    REF: EXECUTION_ID:step, latest:step, or a step name (of the latest execution that has it).
    A changed function is shown as a diff of its source between the two runs' code snapshots.
    """
    w = open_ledger(ctx).why(ref)
    if as_json:
        print_json(w)
        return
    out = new_console()
    out.print(f"[bold]{escape(w.ref)}[/]  {escape(w.task or '')}  {status_markup(w.status)}")
    out.print(escape(w.reason))
    if w.previous and w.changes:
        out.print(f"compared with {escape(w.previous)} ({timestamp(w.previous_at)} UTC):")
    for c in w.changes:
        out.print(f"  {escape(c.text())}")
        if c.part == "input" and (c.before_value is None or c.after_value is None):
            out.print(f"    [dim]{escape(c.before or '(none)')} -> {escape(c.after or '(none)')}[/]")
        if c.note:
            out.print(f"    [dim]{escape(c.note)}[/]")
        for line in (c.diff or "").splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            out.print(f"    [{style}]{escape(line)}[/]")


@cli.group()
def query():
    """Lineage queries (upstream, downstream) and read-only SQL."""


def _artifact_text(label: str, artifact) -> str:
    """A plain value as `type = value` (cut short); a handle as its type and size."""
    if artifact.kind in (None, VALUE_KIND) and artifact.value is not None:
        value = artifact.value if len(artifact.value) <= 60 else artifact.value[:57] + "..."
        return f"{label} = {value}"
    return f"{label} ({format_size(artifact.size)})"


def _walk_cmd(direction: str):
    @click.argument("ref")
    @click.option("--depth", type=click.IntRange(min=0), default=None, help="Stop N hops from REF.")
    @click.option("--same-content", is_flag=True,
                  help="Also list, apart, other steps anywhere that produced the same bytes as a handle "
                       "found (no recorded link: not lineage, and not walked).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @guarded
    def cmd(ctx, ref, depth, same_content, as_json):
        ledger = open_ledger(ctx)
        walk = ledger.upstream if direction == "upstream" else ledger.downstream
        result = walk(ref, depth, same_content=same_content)
        if as_json:
            print_json(result)
            return
        table = Table("depth", "kind", "ref", "what", "status", box=None)
        for n in result.nodes:
            what = n.label
            if n.artifact is not None:
                what = _artifact_text(n.label, n.artifact)
            ref_text = short_digest(n.ref) if n.kind in ("artifact", "code") else n.ref
            table.add_row(str(n.depth), n.kind, ref_text, escape(what or ""), status_markup(n.status) if n.status else "")
        new_console().print(table)
        if same_content:
            if not result.same_content:
                new_console().print("same content: no other step produced the bytes of a handle above")
                return
            other = Table("step", "task", "status", box=None,
                          title="same content, NOT lineage: other steps that produced identical bytes "
                                "(no record links them to this walk)", title_justify="left")
            for n in result.same_content:
                other.add_row(n.ref, escape(n.label or ""), status_markup(n.status) if n.status else "")
            new_console().print(other)

    cmd.__doc__ = (
        "Everything REF came from, down to raw parameters, by recorded provenance."
        if direction == "upstream"
        else "Everything made from REF, by recorded provenance; from a digest, every step that consumed those bytes."
    ) + ("\n\nREF: a digest or unique prefix, an execution id, or EXECUTION_ID:step. Steps that merely "
         "produced equal bytes are never joined (see --same-content).")
    return cmd


query.command("upstream")(_walk_cmd("upstream"))
query.command("downstream")(_walk_cmd("downstream"))


def _memory_size(ctx, param, value):
    from ledgerflow.errors import LedgerError
    from ledgerflow.lineage import readonly_sql

    try:
        readonly_sql.config(value)
    except LedgerError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@query.command("sql")
@click.argument("statement")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of row objects).")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="Stop the query after this long (0: no limit).")
@click.option("--memory", default="1GB", show_default=True, metavar="SIZE", callback=_memory_size,
              help="Stop the query if it needs more memory than this (e.g. 512MB, 4GB); it never spills to disk.")
@click.pass_context
@guarded
def sql_cmd(ctx, statement, as_json, timeout, memory):
    """Run a read-only SQL query (tables and views: docs/ledger.md).

    Bounded, so that one query cannot exhaust the machine or keep writers waiting for the
    ledger: --timeout and --memory.
    """
    result = open_ledger(ctx).sql(statement, timeout=timeout or None, memory=memory)
    rows = _python_rows(result)
    if as_json:
        print_json(rows)
        return
    from ledgerflow.lineage.values import jsonable

    # Every column at its own width: a wide result scrolls sideways in the pager (less -S)
    # rather than squeezing 19 columns to a few characters each.
    from rich.table import Column

    table = Table(*[Column(escape(c), no_wrap=True) for c in result.column_names], box=None)
    for row in rows:
        table.add_row(*[escape("NULL" if v is None else str(jsonable(v))) for v in row.values()])
    print_paged(table, wide=True)


@cli.command()
@click.option("--no-store", is_flag=True, help="Check only the ledger's hash chain, not the store's objects.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def verify(ctx, no_store, as_json):
    """Re-walk the hash chain and re-hash every stored object. Exit 1 naming the first problem."""
    report = open_ledger(ctx).verify(store=not no_store)
    if as_json:
        print_json(report)
    else:
        out = new_console()
        out.print(f"chain: {report.rows} rows, head seq {report.head_seq} {report.head_hash[:16]}")
        if report.store:
            out.print(f"store: {report.objects_checked} objects checked at {escape(report.store)}")
        elif report.store_note:
            out.print(f"store: {escape(report.store_note)}")
        for p in report.problems[:20]:
            out.print(f"[red]{escape(str(p))}[/]")
        for p in report.schema_problems[:20]:
            out.print(f"[red]{escape(str(p))}[/]")
        for p in report.object_problems[:20]:
            out.print(f"[red]{escape(str(p))}[/]")
        if report.ok:
            out.print("[green]ok[/]")
    if not report.ok:
        echo(f"lineage: verify failed: {report.first_problem}", err=True)
        sys.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("execution")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "html"]), default="mermaid",
              show_default=True, help="mermaid or dot text, or one self-contained HTML page.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
@click.pass_context
@guarded
def graph(ctx, execution, fmt, output):
    """An execution's step DAG: status, durations, cache hits, and each step's artifacts (html)."""
    from ledgerflow.app.render import render

    text = render(open_ledger(ctx).execution(execution), fmt)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        echo(f"wrote {output}", err=True)
    else:
        echo(text)
