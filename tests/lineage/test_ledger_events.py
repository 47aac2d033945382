"""The synthetic event streams (tests/ledger_events.py) look like what the runner emits."""

from ledger_events import pipeline_events
from ledgerflow.engine.events import FAILED, SUCCEEDED, ExecutionFinished, ExecutionStarted, StepFinished


def test_pipeline_events_shape():
    evs, arts = pipeline_events(train_failures=1)
    assert isinstance(evs[0], ExecutionStarted) and isinstance(evs[-1], ExecutionFinished)
    finished = [e for e in evs if isinstance(e, StepFinished)]
    assert [(f.step, f.status) for f in finished] == [
        ("ingest", SUCCEEDED), ("train", FAILED), ("train", SUCCEEDED), ("evaluate", SUCCEEDED)
    ]
    assert arts["lr"].value == "0.001"
