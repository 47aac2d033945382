"""A warm local Ray runtime for this home: `lineage ray up`, `status`, `down` (see executors/warm.py)."""

from __future__ import annotations

import click

from ledgerflow.app.commands.group import EXIT_PROBLEM, cli, fail, guarded
from ledgerflow.app.commands.output import echo, print_json


@cli.group("ray")
def ray_group():
    """Keep a local Ray runtime warm between runs, which runs join with RAY_ADDRESS."""


def _home(ctx):
    from ledgerflow.home import Home

    return Home.resolve(ctx.find_root().obj["home"])


@ray_group.command("up")
@click.option("--num-cpus", type=click.IntRange(min=1), help="CPUs the runtime offers (default: all).")
@click.option("--num-gpus", type=click.IntRange(min=0), help="GPUs the runtime offers (default: those found).")
@click.option("--json", "as_json", is_flag=True, help="Print the runtime's record as JSON.")
@click.pass_context
@guarded
def up_cmd(ctx, num_cpus, num_gpus, as_json):
    """Start the warm runtime (or find it running) and print how runs join it:
    `eval "$(lineage ray up)"` sets RAY_ADDRESS (and RAY_AUTH_MODE=token: it uses Ray's token
    authentication, and Ray makes the token in ~/.ray/auth_token)."""
    from ledgerflow.executors import warm

    found = warm.up(_home(ctx), num_cpus=num_cpus, num_gpus=num_gpus)
    if as_json:
        print_json(found)
        return
    # The runtime uses Ray's token authentication: a driver joining it says so (RAY_AUTH_MODE).
    echo(f"export RAY_ADDRESS={found['address']} RAY_AUTH_MODE=token")
    echo(f"# a warm Ray runtime (pid {found['pid']}, {found['num_cpus']:g} CPUs, {found['num_gpus']:g} GPUs); runs "
         "with RAY_ADDRESS set join it; `lineage ray down` stops it", err=True)


@ray_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the runtime's record as JSON (null when down).")
@click.pass_context
@guarded
def status_cmd(ctx, as_json):
    """Whether the warm runtime of this home is up, and its address."""
    from ledgerflow.executors import warm

    found = warm.status(_home(ctx))
    if as_json:
        print_json(found)
        return
    if found is None:
        fail("no warm Ray runtime for this home (`lineage ray up` starts one)", EXIT_PROBLEM)
    echo(f"up at {found['address']} (pid {found['pid']})")


@ray_group.command("down")
@click.pass_context
@guarded
def down_cmd(ctx):
    """Stop the warm runtime of this home (only it: by the pid `up` recorded)."""
    from ledgerflow.executors import warm

    found = warm.down(_home(ctx))
    echo("no warm Ray runtime was up" if found is None else f"stopped the warm Ray runtime at {found['address']}")
