"""`lineage ui`: the routes (Starlette's TestClient) and the pages in a real headless Chromium.

One recorded home for the module (the digits job, small; a step that prints and fails; a
workflow of File, Directory and Dataset outputs), one server and one browser for the module.
The browser tests use Debian's Chromium (.ci/install-chromium) through Playwright, and skip,
saying why, where it is not installed. Nothing is timed: Playwright waits, generously.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import attrs
import pyarrow as pa
import pytest

pytest.importorskip("starlette")
pytest.importorskip("sklearn")
pytest.importorskip("skops")

from click.testing import CliRunner  # noqa: E402

from ledgerflow import Dataset, Directory, ExecutionFailed, File, Ledger, log_metric, run, task, workflow  # noqa: E402
from ledgerflow.store import active as active_store  # noqa: E402
from ledgerflow.app.cli import cli  # noqa: E402
from ledgerflow.store import Store  # noqa: E402

EXAMPLE = Path(__file__).parents[2] / "examples" / "digits.py"
SMALL = {"limit": 300, "threshold": 0.5, "gammas": [0.01, 0.001]}
WAIT_MS = 60_000  # Playwright's waits: generous, for a busy machine


# --------------------------------------------------------------------------- workflows


@attrs.define
class Point:
    x: int
    name: str


@task
def noisy(n: int) -> int:
    print(f"hello from noisy, n={n}")
    print("something went wrong", file=sys.stderr)
    raise ValueError(f"boom at n={n}")


@workflow
def fails(n: int = 3) -> int:
    return noisy(n=n)


@task
def points(n: int) -> Dataset[Point]:
    return pa.table({"x": list(range(n)), "name": [f"point-{i}" for i in range(n)]})


@task
def notes(n: int) -> File:
    path = Path(tempfile.mkdtemp(prefix="ui-notes-")) / "notes.txt"
    path.write_text("".join(f"line {i} of the notes\n" for i in range(n)))
    return File.from_path(path)


@task
def folder(n: int) -> Directory:
    root = Path(tempfile.mkdtemp(prefix="ui-folder-"))
    (root / "sub").mkdir()
    (root / "a.txt").write_text("first file\n")
    (root / "sub" / "b.txt").write_text("second file, n=%d\n" % n)
    return Directory.from_path(root)


@task
def count(data: Dataset[Point], text: File, files: Directory) -> int:
    log_metric("rows", data.to_arrow().num_rows)
    return data.to_arrow().num_rows + len(text.path.read_text().splitlines())


@workflow
def handles(n: int = 7) -> int:
    return count(data=points(n=n), text=notes(n=n), files=folder(n=n))


@task
def slow_step(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@workflow
def slow(seconds: float = 0.5) -> float:
    return slow_step(seconds=seconds)


# --------------------------------------------------------------------------- fixtures


@attrs.frozen
class Recorded:
    home: Path
    digits: str  # execution ids
    failed: str
    handles: str
    model: str  # the registered model's digest
    raw: str  # ingest's Dataset: the raw data
    dataset: str  # points' Dataset
    text: str  # notes' File
    directory: str  # folder's Directory


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("LEDGERFLOW_HOME", str(home))
    mp.delenv("LEDGERFLOW_STORE", raising=False)
    spec = importlib.util.spec_from_file_location("digits", EXAMPLE)
    digits = importlib.util.module_from_spec(spec)
    sys.modules["digits"] = digits
    try:
        with active_store.using(Store.open(home / "store")):
            spec.loader.exec_module(digits)
            good = run(digits.pipeline, SMALL, home=home)
            run(digits.pipeline, {**SMALL, "gammas": [0.01, 0.002]}, home=home)  # a second point on the chart
            with pytest.raises(ExecutionFailed) as failure:
                run(fails, {"n": 3}, home=home)
            made = run(handles, {"n": 7}, home=home)
            ledger = Ledger(home)
            detail = ledger.execution(good.id)
            raw = next(b.artifact.digest for s in detail.steps if s.step == "ingest" for b in s.outputs)
            outs = {s.step: s.outputs[0].artifact.digest for s in ledger.execution(made.id).steps if s.outputs}
            yield Recorded(home, good.id, failure.value.execution.id, made.id,
                           ledger.model("digits", alias="production").digest, raw,
                           outs["points"], outs["notes"], outs["folder"])
    finally:
        sys.modules.pop("digits", None)
        mp.undo()


@pytest.fixture(scope="module")
def client(recorded):
    from starlette.testclient import TestClient

    from ledgerflow.app.ui import make_app

    with TestClient(make_app(recorded.home)) as c:
        yield c


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- routes


def test_every_page_answers_on_a_recorded_run(client, recorded):
    for url in ("/executions", f"/executions/{recorded.digits}", f"/executions/{recorded.failed}",
                f"/artifacts/{recorded.model}", f"/artifacts/{recorded.raw}", f"/lineage?ref={recorded.model}",
                f"/lineage?ref={recorded.digits}:train[0]&direction=downstream&depth=2", "/lineage", "/models",
                "/metrics", "/metrics?workflow=digits:pipeline", "/static/ui.css", "/static/execution.js"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert "Content-Security-Policy" in r.headers
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/executions"


def test_nothing_is_loaded_from_outside_the_app(client, recorded):
    page = client.get(f"/executions/{recorded.digits}").text
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("://", "")
    for name in ("common.js", "execution.js", "executions.js", "artifact.js", "lineage.js", "models.js", "metrics.js",
                 "ui.css"):
        text = client.get(f"/static/{name}").text
        assert "https://" not in text and "@import" not in text and "fonts.g" not in text, name
    assert "default-src 'self'" in client.get("/executions").headers["Content-Security-Policy"]


def test_unknown_refs_are_404_pages_naming_them(client):
    r = client.get("/executions/01NOSUCHEXECUTION")
    assert r.status_code == 404 and "01NOSUCHEXECUTION" in r.text and "Not found" in r.text
    r = client.get("/artifacts/blake3:" + "ab" * 32)
    assert r.status_code == 404 and "blake3:" + "ab" * 32 in r.text
    r = client.get("/lineage?ref=zzzz-nothing")
    assert r.status_code == 404 and "zzzz-nothing" in r.text
    r = client.get("/api/executions/01NOSUCHEXECUTION")
    assert r.status_code == 404 and "01NOSUCHEXECUTION" in r.json()["error"]
    assert client.get("/no/such/page").status_code == 404


def test_no_endpoint_writes(client, recorded):
    for url in ("/executions", f"/api/executions/{recorded.digits}", "/api/models"):
        for method in ("post", "put", "delete", "patch"):
            assert getattr(client, method)(url).status_code == 405, (method, url)


def test_json_endpoints(client, recorded):
    listing = client.get("/api/executions").json()
    ids = [x["id"] for x in listing["executions"]]
    assert {recorded.digits, recorded.failed, recorded.handles} <= set(ids)
    assert "digits:pipeline" in listing["workflows"]
    only_failed = client.get("/api/executions?status=failed").json()["executions"]
    assert [x["id"] for x in only_failed] == [recorded.failed]
    assert [x["id"] for x in client.get("/api/executions", params={"q": recorded.handles[-8:].lower()}).json()[
        "executions"]] == [recorded.handles]

    d = client.get(f"/api/executions/{recorded.digits}").json()
    steps = {n["step"]: n for n in d["nodes"] if n["kind"] == "step"}
    assert {"ingest", "train[0]", "train[1]", "evaluate[0]", "gate", "promote"} <= set(steps)
    assert steps["reject"]["status"] == "skipped"
    bars = d["timeline"]["bars"]
    assert {b["step"] for b in bars} >= {"ingest", "train[0]"} and all(b["end"] >= b["start"] >= 0 for b in bars)

    failed = client.get(f"/api/executions/{recorded.failed}").json()
    noisy_node = next(n for n in failed["nodes"] if n["step"] == "noisy")
    assert noisy_node["status"] == "failed" and "boom at n=3" in noisy_node["attempts"][-1]["traceback"]

    step = client.get("/api/step", params={"ref": f"{recorded.digits}:train[0]"}).json()
    assert step["why"]["verdict"] in ("first-run", "changed", "cache-hit", "same-key") and "logs" in step
    logged = client.get("/api/step", params={"ref": f"{recorded.failed}:noisy"}).json()["logs"]
    assert {(x["attempt"], x["stream"]) for x in logged} == {(1, "stdout"), (1, "stderr")}
    assert "hello from noisy, n=3" in next(x["text"] for x in logged if x["stream"] == "stdout")
    assert client.get("/api/step", params={"ref": recorded.digits}).status_code == 404  # not a step

    walk = client.get("/api/lineage", params={"ref": recorded.model}).json()
    assert recorded.raw in {n["ref"] for n in walk["nodes"]}
    models = client.get("/api/models").json()["models"]
    assert models[0]["name"] == "digits" and "production" in models[0]["aliases"]
    metrics = client.get("/api/metrics", params={"workflow": "digits:pipeline"}).json()
    names = {s["name"] for s in metrics["series"]}
    assert {"evaluate[0].accuracy", "gate.gate_passed"} <= names and metrics["executions"][0]["id"] == recorded.digits
    assert len(metrics["executions"]) == 2 and all(len(s["values"]) == 2 for s in metrics["series"])


def test_artifact_previews_and_downloads(client, recorded):
    table = client.get(f"/api/artifacts/{recorded.dataset}").json()
    assert table["preview"]["kind"] == "table" and table["preview"]["num_rows"] == 7
    assert [c["name"] for c in table["preview"]["columns"]] == ["x", "name"]
    assert table["preview"]["rows"][2] == [2, "point-2"]
    assert [p["ref"] for p in table["producers"]] == [f"{recorded.handles}:points"]
    assert [p["ref"] for p in table["consumers"]] == [f"{recorded.handles}:count"]

    text = client.get(f"/api/artifacts/{recorded.text}").json()["preview"]
    assert text["kind"] == "text" and text["text"].startswith("line 0 of the notes\n")
    listing = client.get(f"/api/artifacts/{recorded.directory}").json()["preview"]
    assert listing["kind"] == "listing" and [f["path"] for f in listing["files"]] == ["a.txt", "sub/b.txt"]
    one = client.get(f"/artifacts/{recorded.directory}/files/sub/b.txt")
    assert one.status_code == 200 and one.content == b"second file, n=7\n"
    assert "attachment" in one.headers["content-disposition"]
    assert client.get(f"/artifacts/{recorded.directory}/files/nope.txt").status_code == 404

    whole = client.get(f"/artifacts/{recorded.text}/download")
    assert whole.status_code == 200 and whole.content.decode().count("\n") == 7
    assert whole.headers["content-type"] == "application/octet-stream"

    model = client.get(f"/api/artifacts/{recorded.model}").json()
    assert model["preview"]["kind"] == "listing" and [f["path"] for f in model["preview"]["files"]] == ["model.skops"]
    assert model["registry"][0]["name"] == "digits" and "production" in model["registry"][0]["aliases"]
    # A prefix of 12 hex characters (what the pages show) leads to the whole digest.
    short = client.get(f"/artifacts/{recorded.model[:19]}", follow_redirects=False)
    assert short.status_code == 307 and short.headers["location"] == f"/artifacts/{recorded.model}"


# --------------------------------------------------------------------------- the command


def test_ui_command_refuses_a_missing_ledger_saying_where_it_looked(tmp_path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "nothing"), "ui"])
    assert result.exit_code == 2  # as every command that reads the ledger and finds none
    assert f"no ledger found: looked for {tmp_path / 'nothing'}" in result.output


def test_only_loopback_goes_without_a_warning():
    from ledgerflow.app.ui.serving import host_warning

    assert host_warning("127.0.0.1") is None and host_warning("::1") is None and host_warning("localhost") is None
    warning = host_warning("0.0.0.0")
    assert "0.0.0.0" in warning and "anyone" in warning and "\n" not in warning


def test_ui_command_serves_prints_its_url_and_stops_on_ctrl_c(recorded):
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "ledgerflow.app.cli", "--home", str(recorded.home), "ui",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        assert httpx.get(url + "executions", timeout=60).status_code == 200
        assert httpx.get(url + f"api/executions/{recorded.digits}", timeout=60).json()["execution"]["id"] == recorded.digits
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- the browser


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed (run .ci/install-chromium): the pages can't be opened in a browser")
    return path


class _Server:
    """uvicorn in a thread of this process, on a free 127.0.0.1 port; stopped by `stop()`."""

    def __init__(self, app):
        from ledgerflow.app.ui import serving

        self.sock = serving.bind("127.0.0.1", 0)
        self.url = serving.url_of(self.sock).rstrip("/")
        self.server = serving.server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> "_Server":
        import time

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture(scope="module")
def server(recorded):
    from ledgerflow.app.ui import make_app

    srv = _Server(make_app(recorded.home)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    errors: list = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def _shot(page, tmp_path, name: str) -> None:
    """A screenshot as a test artifact: under tmp_path and, when LEDGERFLOW_TEST_ARTIFACTS is
    set, copied there."""
    path = tmp_path / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("LEDGERFLOW_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _ready(page) -> None:
    page.wait_for_selector("html[data-ready='1']", state="attached")


def test_a_run_recorded_while_the_list_is_open_appears_without_a_reload(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + "/executions")
    _ready(page)
    expect(page.locator(f"tr[data-id='{recorded.digits}']")).to_be_visible()
    before = page.evaluate("performance.getEntriesByType('navigation').length")
    page.evaluate("window.__same_document = true")
    ex = run(slow, {"seconds": 0.3}, home=recorded.home)
    row = page.locator(f"tr[data-id='{ex.id}']")
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "succeeded")
    assert page.evaluate("window.__same_document") is True  # the page was not reloaded
    assert page.evaluate("performance.getEntriesByType('navigation').length") == before
    _shot(page, tmp_path, "executions")
    page.select_option("#filter-status", "failed")
    expect(page.locator("#executions tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-id='{recorded.failed}']")).to_be_visible()


def test_clicking_a_failed_step_shows_its_traceback_and_logs(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + f"/executions/{recorded.failed}")
    _ready(page)
    page.locator(".node[data-step='noisy']").click()
    expect(page.locator("#panel")).to_have_attribute("data-selected", "noisy")
    expect(page.locator("#attempts pre.traceback").first).to_contain_text("ValueError: boom at n=3")
    expect(page.locator("#why")).to_be_visible()
    logs = page.locator("#logs")
    expect(logs).to_be_visible()
    expect(logs.locator("pre[data-stream='stdout']")).to_contain_text("hello from noisy, n=3")
    expect(logs.locator("pre[data-stream='stderr']")).to_contain_text("something went wrong")
    expect(page.locator("#timeline svg g.bar[data-step='noisy']")).to_have_count(1)
    _shot(page, tmp_path, "execution-failed")


def test_the_execution_page_draws_the_graph_and_timeline(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + f"/executions/{recorded.digits}#select=train%5B1%5D")
    _ready(page)
    expect(page.locator("#panel")).to_have_attribute("data-selected", "train[1]")
    expect(page.locator(".node[data-step='reject']")).to_have_attribute("data-status", "skipped")
    expect(page.locator(".node[data-step='promote']")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#timeline svg g.bar[data-step='train[0]']")).to_have_count(1)
    expect(page.locator("#panel")).to_contain_text("train_accuracy")
    digest = page.locator("#panel a.digest").first
    assert len(digest.inner_text().split(":", 1)[1]) == 12 and digest.get_attribute("title").startswith("blake3:")
    _shot(page, tmp_path, "execution")


def test_the_artifact_page_previews_a_datasets_rows(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + f"/artifacts/{recorded.dataset}")
    _ready(page)
    expect(page.locator("#preview[data-kind='table']")).to_be_visible()
    expect(page.locator("#preview-table tbody tr")).to_have_count(7)
    expect(page.locator("#preview-table tbody tr").nth(3)).to_contain_text("point-3")
    expect(page.locator("#download")).to_have_attribute("href", f"/artifacts/{recorded.dataset}/download")
    _shot(page, tmp_path, "artifact-dataset")
    page.goto(server.url + f"/artifacts/{recorded.raw}")
    _ready(page)
    expect(page.locator("#preview-table thead")).to_contain_text("label")
    page.goto(server.url + f"/artifacts/{recorded.model}")
    _ready(page)
    expect(page.locator("#registry")).to_contain_text("production")
    expect(page.locator("#files")).to_contain_text("model.skops")
    _shot(page, tmp_path, "artifact-model")


def test_the_lineage_of_the_digits_model_reaches_the_raw_data(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + f"/lineage?ref={recorded.model}")
    _ready(page)
    expect(page.locator(f".lnode.root[data-ref='{recorded.model}']")).to_be_visible()
    expect(page.locator(f".lnode[data-ref='{recorded.raw}']")).to_be_visible()
    expect(page.locator(f".lnode[data-ref='{recorded.digits}:ingest']")).to_be_visible()
    _shot(page, tmp_path, "lineage")


def test_models_and_metrics_pages(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url + "/models")
    _ready(page)
    expect(page.locator("[data-model='digits']")).to_contain_text("production")
    _shot(page, tmp_path, "models")
    page.goto(server.url + "/metrics?workflow=digits:pipeline")
    _ready(page)
    expect(page.locator("#chart path[data-series='evaluate[1].accuracy']")).to_be_attached()
    expect(page.locator("#metrics-table")).to_contain_text("evaluate[0].accuracy")
    _shot(page, tmp_path, "metrics")


def test_browsing_every_page_leaves_the_ledger_file_unchanged(server, page, recorded, tmp_path):
    ledger_file = recorded.home / "ledger.duckdb"
    Ledger(recorded.home).executions()  # anything a run left in its journal is moved in first
    before = _sha256(ledger_file)
    for url in ("/executions", f"/executions/{recorded.digits}#select=train%5B0%5D", f"/executions/{recorded.failed}",
                f"/artifacts/{recorded.dataset}", f"/artifacts/{recorded.model}", f"/artifacts/{recorded.text}",
                f"/artifacts/{recorded.directory}", f"/lineage?ref={recorded.model}",
                f"/lineage?ref={recorded.raw}&direction=downstream", "/models", "/metrics"):
        page.goto(server.url + url)
        _ready(page)
    page.goto(server.url + f"/executions/{recorded.failed}#select=noisy")
    _ready(page)
    page.wait_for_selector("#logs")
    assert _sha256(ledger_file) == before


def test_the_execution_page_follows_a_running_execution(server, page, recorded, tmp_path):
    from playwright.sync_api import expect

    done: dict = {}
    worker = threading.Thread(target=lambda: done.setdefault("ex", run(slow, {"seconds": 2.5}, home=recorded.home,
                                                                      cache=False)))
    ledger = Ledger(recorded.home)
    known = {s.id for s in ledger.executions()}
    worker.start()
    try:
        page.goto(server.url + "/executions")
        _ready(page)
        running = page.locator("#executions tr[data-status='running']")
        expect(running).to_have_count(1)
        eid = running.get_attribute("data-id")
        assert eid not in known
        page.goto(server.url + f"/executions/{eid}")
        _ready(page)
        page.evaluate("window.__same_document = true")
        expect(page.locator("#main")).to_have_attribute("data-status", "succeeded")
        expect(page.locator(".node[data-step='slow_step']")).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#timeline svg g.bar[data-step='slow_step']")).to_have_count(1)
        assert page.evaluate("window.__same_document") is True
    finally:
        worker.join(timeout=120)
    assert done["ex"].id == eid


def test_lineage_help_does_not_load_the_web_stack(tmp_path):
    code = ("import sys\nfrom ledgerflow.app.cli import main\ntry:\n    main(['ui', '--help'])\n"
            "except SystemExit as e:\n    assert e.code in (0, None)\n"
            "print(sorted(m for m in ('starlette', 'uvicorn', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, "LEDGERFLOW_HOME": str(tmp_path / "home")})
    assert out.returncode == 0, out.stderr
    assert "--host" in out.stdout and out.stdout.strip().splitlines()[-1] == "[]"
