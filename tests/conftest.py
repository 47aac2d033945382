import pytest

from ledgerflow.store import active as active_store
from ledgerflow.store import Store

# Markers (see pyproject.toml), so that a contributor can run the fast core suite alone.
# A PostgreSQL server takes a second or two to start: its tests are also `slow`, so that the fast
# suite of the issue that asked for it (`-m "not ray and not s3 and not browser and not slow"`)
# leaves them out. Single tests over ~0.5 s on 2 cores carry `@pytest.mark.slow` where they are.
_MARKS_BY_FIXTURE = {"ray_runtime": ("ray",), "s3_server": ("s3",), "postgres": ("postgres", "slow"),
                     "team_ledger": ("postgres", "slow"), "chromium": ("browser",)}
_MARKS_BY_MODULE = {
    "test_ray_cluster": ("ray", "slow"), "test_ray_lifecycle": ("ray", "slow"), "test_multinode": ("ray", "s3", "slow"),
    "test_digits": ("ray", "slow"), "test_ui": ("browser",), "test_crash": ("slow",), "test_load": ("slow",),
    "test_ledger_processes": ("slow",), "test_live": ("slow",), "test_team_ledger": ("postgres", "slow"),
    "test_postgres_server": ("postgres", "slow"),
}


def pytest_collection_modifyitems(items):
    for item in items:
        marks = set(_MARKS_BY_MODULE.get(getattr(getattr(item, "module", None), "__name__", ""), ()))
        for fixture in getattr(item, "fixturenames", ()):
            marks.update(_MARKS_BY_FIXTURE.get(fixture, ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("executor") == "ray":
            marks.add("ray")
        if params.get("ledger") == "server":
            marks.update(("postgres", "slow"))
        for mark in sorted(marks):
            item.add_marker(mark)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Remote stores' read-through cache goes to a temp folder, never the user's ~/.cache."""
    import os

    os.environ["LEDGERFLOW_CACHE"] = str(tmp_path_factory.mktemp("ledgerflow-cache"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh LEDGERFLOW_HOME for the test, with its store in effect."""
    path = tmp_path / "home"
    monkeypatch.setenv("LEDGERFLOW_HOME", str(path))
    monkeypatch.delenv("LEDGERFLOW_STORE", raising=False)
    monkeypatch.delenv("LEDGERFLOW_LEDGER", raising=False)
    with active_store.using(Store.open(path / "store")):
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


class S3Server:
    """A running moto S3 server on 127.0.0.1 (see the `s3_server` fixture)."""

    def __init__(self, server, endpoint: str, bucket: str):
        self.server = server
        self.endpoint = endpoint
        self.bucket = bucket

    def client(self):
        """A boto3 client of this server, for looking at or damaging objects behind the store's back."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


def start_moto_server():
    """Start a moto S3 server in this process on a free port; return (server, endpoint)."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's server mode) on 127.0.0.1, with one bucket.

    For the whole session the standard AWS variables point at it: fake credentials,
    region us-east-1, and AWS_ENDPOINT_URL_S3, which botocore (and so s3fs and
    ledgerflow's store) reads natively. Tests use `s3_server.url(prefix)` with a
    prefix of their own, so they never see each other's objects.
    """
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    server, endpoint = start_moto_server()
    mp = pytest.MonkeyPatch()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": endpoint}.items():
        mp.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        mp.delenv(name, raising=False)
    s3 = S3Server(server, endpoint, "ledgerflow-test")
    try:
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        mp.undo()
        server.stop()


def wait_until(done, process, what: str, timeout: float = 120.0) -> None:
    """Poll `done()` until it is true, failing (with the process's output) if `process` ends or
    `timeout` seconds pass first: the waits of tests that drive a run in another process."""
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """One real PostgreSQL server for the session, on 127.0.0.1, in a temporary folder
    (Debian's initdb and pg_ctl; .ci/install-postgresql installs them)."""
    from postgres_server import find_binaries, start_postgres

    if find_binaries() is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (.ci/install-postgresql installs them)")
    with start_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


class TeamLedger:
    """A fresh database on the session's server holding a ledger made by `lineage ledger init`."""

    WRITER_PASSWORD, READER_PASSWORD = "writer-pw", "reader-pw"

    def __init__(self, server, name: str):
        from ledgerflow.lineage import server as servers

        self.server = server
        self.name = name
        self.admin_url = server.create_database(name)
        creds = servers.init(self.admin_url, writer_password=self.WRITER_PASSWORD,
                             reader_password=self.READER_PASSWORD)
        self.writer_url, self.reader_url = creds.writer_url, creds.reader_url

    def admin(self):
        import psycopg

        con = psycopg.connect(self.admin_url, autocommit=True)
        con.execute("SET search_path = ledgerflow")
        return con


_team_ledgers = iter(range(10**6))


@pytest.fixture
def team_ledger(postgres):
    """A team ledger of the test's own (a new database on the session's PostgreSQL server)."""
    return TeamLedger(postgres, f"team{next(_team_ledgers)}")
