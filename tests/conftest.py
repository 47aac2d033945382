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


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray runtime for the whole test session, with a GPU declared.

    Declaring num_gpus=1 makes Ray schedule GPU steps and set CUDA_VISIBLE_DEVICES even on a
    machine without a GPU, which is how GPU scheduling is tested on CPU-only CI.
    """
    import os

    import ray

    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}})
    yield ray
    ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def executor(request):
    """Each test using it runs on both executors: they must agree."""
    if request.param == "ray":
        request.getfixturevalue("ray_runtime")
    return request.param
