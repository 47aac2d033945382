"""Progress: a live line on a terminal, log lines elsewhere."""

import io
import logging

import pytest

from ledgerflow import MemoryRecorder, map_task, run, task, workflow
from ledgerflow.app.progress import Progress


@task
def double(x: int) -> int:
    return 2 * x


@task
def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@workflow
def fan(n: int = 4) -> list[int]:
    return map_task(double, x=list(range(4)))


@workflow
def partly_failing() -> list[int | None]:
    return map_task(fail_on_three, x=[1, 2, 3, 4], min_success=0.5)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_when_not_a_terminal(home, caplog):
    with caplog.at_level(logging.INFO, logger="ledgerflow"):
        run(fan, recorder=MemoryRecorder(), progress=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("execution ") and "of fan started" in lines[0]
    assert sum("step double[" in line and "succeeded" in line for line in lines) == 4
    assert "pending 0 | running 0 | cached 0 | done 5 | failed 0" in lines[-1]


def test_failures_are_warnings(home, caplog):
    with caplog.at_level(logging.INFO, logger="ledgerflow"):
        run(partly_failing, recorder=MemoryRecorder(), progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [w for w in warnings if "fail_on_three[2]" in w and "ValueError: three" in w] and warnings
    assert "failed 1" in caplog.records[-1].getMessage()


def test_live_display_on_a_terminal(home):
    screen = FakeTerminal()
    progress = Progress(len(fan.graph.nodes), stream=screen)
    assert progress.live
    run(fan, recorder=progress, progress=False)  # as the only recorder: drives the display itself
    progress.close()
    shown = screen.getvalue()
    assert "fan" in shown and "done 5" in shown and "failed 0" in shown


@pytest.mark.slow
def test_the_live_line_keeps_time_while_a_step_runs(home):
    import time

    @task
    def nap(s: float) -> float:
        time.sleep(s)
        return s

    @workflow
    def napping(s: float = 0.6) -> float:
        return nap(s=s)

    screen = FakeTerminal()
    progress = Progress(1, stream=screen)
    run(napping, recorder=progress, progress=False)
    progress.close()
    # redrawn several times during the one step, each time with a later elapsed time
    assert screen.getvalue().count("running 1") >= 2
    import re

    clocks = set(re.findall(r"(\d+\.\d)s \| pending 0 \| running 1", screen.getvalue()))
    assert len(clocks) >= 2, clocks  # the clock moved while no event arrived
