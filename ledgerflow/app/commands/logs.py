"""What steps wrote: `lineage logs REF`, and `--follow` for a step that is still running."""

from __future__ import annotations

import time

import click

from ledgerflow.app.commands.group import EXIT_USAGE, cli, fail, guarded, open_ledger
from ledgerflow.app.commands.output import echo, page, print_json
from ledgerflow.printable import printable
from ledgerflow.engine.status import Status

FOLLOW_POLL_S = 0.5
_FINAL = tuple(s for s in Status if s.final and s not in (Status.FAILED, Status.TIMEOUT))  # those two may be retried


@cli.command("logs")
@click.argument("ref")
@click.option("--attempt", type=click.IntRange(min=1), help="Only this attempt (default: every attempt).")
@click.option("--stream", type=click.Choice(["stdout", "stderr"]), help="Only this stream (default: both).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what a running step writes, until it ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded logs as JSON (not with --follow).")
@click.pass_context
@guarded
def logs_cmd(ctx, ref, attempt, stream, follow, as_json):
    """What a step (EXECUTION_ID:step) or every step of an execution wrote to stdout and stderr.

    Python `logging` records are in stderr. Each attempt of a retried step is kept apart.
    """
    if follow and as_json:
        fail("--follow prints text as it comes: leave out --json", EXIT_USAGE)
    ledger = open_ledger(ctx)
    resolved = ledger.resolve(ref)
    if resolved.kind == "artifact":
        fail(f"{ref!r} names an artifact; logs belong to a step: give EXECUTION_ID:step or an execution id",
              EXIT_USAGE)
    if follow:
        _follow(ledger, resolved, attempt, stream)
        return
    logs = [g for g in ledger.logs(resolved.ref, attempt) if stream in (None, g.stream)]
    if as_json:
        print_json(logs)
        return
    if not logs:
        echo(f"{resolved.ref}: no output recorded"
             + (f" for attempt {attempt}" if attempt else "") + (f" on {stream}" if stream else ""), err=True)
        return
    several = len({(g.step, g.attempt, g.stream) for g in logs}) > 1
    parts = []
    for g in logs:
        if several:
            parts.append(f"==> {g.step} attempt {g.attempt} {g.stream} <==\n")
        parts.append(g.text if g.text is not None else f"(the store no longer holds {g.digest}: collected, or "
                     "recorded in another store)\n")
    page(printable("".join(parts)).removesuffix("\n"))


def _follow(ledger, resolved, attempt: int | None, stream: str | None) -> None:
    """Print what was recorded and what running attempts have spooled so far, as it grows, until
    the step (or the whole execution) has ended. Each (step, attempt, stream) is printed once,
    from where it left off."""
    eid, only_step = resolved.execution_id, resolved.step
    printed: dict[tuple, int] = {}
    last: list = [None]

    def show(key: tuple, text: str) -> None:
        start = printed.get(key, 0)
        if len(text) <= start:
            return
        new = text[start:]
        printed[key] = len(text)
        if only_step is None:  # a whole execution: every line says its step, as a live run shows it
            new = "".join(f"[{key[0]}] {line}" for line in new.splitlines(keepends=True))
        elif key != last[0]:
            echo(f"==> {key[0]} attempt {key[1]} {key[2]} <==")
        last[0] = key
        echo(new, nl=False)

    def wanted(step: str, n: int, s: str) -> bool:
        return (only_step in (None, step)) and attempt in (None, n) and stream in (None, s)

    while True:
        detail = ledger.execution(eid)
        for g in ledger.logs(resolved.ref, attempt, spooled=True):
            if wanted(g.step, g.attempt, g.stream) and g.text is not None:
                show((g.step, g.attempt, g.stream), g.text)
        steps = [st for st in detail.steps if only_step in (None, st.step)]
        # While the execution runs, a failed step may yet be retried: only these states are final.
        ended = detail.summary.status != Status.RUNNING or (only_step is not None and steps
                                                        and all(st.status in _FINAL for st in steps))
        if ended:
            for g in ledger.logs(resolved.ref, attempt):  # what was recorded as it ended
                if wanted(g.step, g.attempt, g.stream) and g.text is not None:
                    show((g.step, g.attempt, g.stream), g.text)
            return
        time.sleep(FOLLOW_POLL_S)
