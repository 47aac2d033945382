"""Model registry commands: models, promote, rollback."""

from __future__ import annotations


import click

from ledgerflow.app.commands.group import cli, guarded, open_ledger
from ledgerflow.app.commands.output import Table, echo, escape, new_console, print_json, short_digest, timestamp


def _metrics(metrics: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in sorted(metrics.items()))


def _aliases(aliases) -> str:
    return ", ".join(aliases) or "-"


def _source(v) -> str:
    if v.execution_id:
        return f"{v.execution_id}:{v.step}" if v.step else v.execution_id
    return "(outside a run)"


@cli.command("models")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@guarded
def models_cmd(ctx, name, as_json):
    """Registered models: versions, aliases, metrics, the execution that made each.

    With NAME: that model's versions and the history of its aliases (who moved them, when, why).
    """
    ledger = open_ledger(ctx)
    if name is None:
        found = ledger.models()
        if as_json:
            print_json(found)
            return
        table = Table("name", "version", "aliases", "metrics", "execution", "registered (UTC)", box=None)
        for m in found:
            for v in reversed(m.versions):
                table.add_row(escape(m.name), str(v.version), escape(_aliases(v.aliases)),
                              escape(_metrics(v.metrics)), escape(_source(v)), timestamp(v.registered_at))
        new_console().print(table if found else "no models registered")
        return
    m = ledger.registered(name)
    if as_json:
        print_json(m)
        return
    out = new_console()
    versions = Table("version", "aliases", "digest", "flavor", "metrics", "execution", "registered (UTC)", "by",
                     "why", box=None, title=f"{escape(m.name)}: versions", title_justify="left")
    for v in reversed(m.versions):
        versions.add_row(str(v.version), escape(_aliases(v.aliases)), short_digest(v.digest), escape(v.flavor or "-"),
                         escape(_metrics(v.metrics)), escape(_source(v)), timestamp(v.registered_at),
                         escape(v.who or "-"), escape(v.why or ""))
    out.print(versions)
    history = Table("when (UTC)", "alias", "move", "action", "by", "why", box=None,
                    title=f"{escape(m.name)}: alias history", title_justify="left")
    for mv in reversed(m.history):
        move = f"v{mv.previous_version} -> v{mv.version}" if mv.previous_version else f"-> v{mv.version}"
        history.add_row(timestamp(mv.at), escape(mv.alias), move, mv.action, escape(mv.who or "-"), escape(mv.why or ""))
    out.print(history if m.history else "no aliases")


def _moved(as_json, before, after, alias, verb) -> None:
    if as_json:
        print_json(after)
        return
    if before == after.version:
        echo(f"{after.name}: {alias} already points at v{after.version}; nothing recorded")
        return
    was = f" (was v{before})" if before is not None else ""
    metrics = f"  {_metrics(after.metrics)}" if after.metrics else ""
    echo(f"{after.name}: {alias} {verb} v{after.version}{was}  {short_digest(after.digest)}{metrics}")


@cli.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--alias", default="production", show_default=True, help="The alias to move.")
@click.option("--why", default=None, help="Why, for the record.")
@click.option("--json", "as_json", is_flag=True, help="Print the version the alias now points at, as JSON.")
@click.pass_context
@guarded
def promote(ctx, name, version, alias, why, as_json):
    """Point ALIAS of model NAME at VERSION (recorded with who, when and why)."""
    ledger = open_ledger(ctx)
    before = ledger.registered(name).aliases.get(alias)
    after = ledger.promote(name, version, alias, why=why)
    _moved(as_json, before, after, alias, "promoted")


@cli.command()
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--why", default=None, help="Why, for the record.")
@click.option("--json", "as_json", is_flag=True, help="Print the version the alias now points at, as JSON.")
@click.pass_context
@guarded
def rollback(ctx, name, alias, why, as_json):
    """Return ALIAS of model NAME to the version it pointed at before; again to go further back."""
    ledger = open_ledger(ctx)
    before = ledger.registered(name).aliases.get(alias)
    after = ledger.rollback(name, alias, why=why)
    _moved(as_json, before, after, alias, "rolled back to")

