import pytest

from ledgerflow import store as cas
from ledgerflow.store import Store


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh LEDGERFLOW_HOME for the test, with its store in effect."""
    path = tmp_path / "home"
    monkeypatch.setenv("LEDGERFLOW_HOME", str(path))
    monkeypatch.delenv("LEDGERFLOW_STORE", raising=False)
    with cas.using(Store.open(path / "store")):
        yield path


# Hypothesis tests share the `home` fixture across examples on purpose: the store is
# content-addressed, so what one example writes cannot change another's result.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ledgerflow", suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
settings.load_profile("ledgerflow")
