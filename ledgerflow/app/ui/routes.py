"""The routes of `lineage ui`: HTML pages, the JSON they draw from, and downloads. GET only.

    /                                   -> /executions
    /executions                         the list (filters, search; polls /api/executions)
    /executions/{ref}                   one execution: graph, timeline, step panel (#select=STEP)
    /artifacts/{digest}                 one artifact: facts, producers, consumers, preview
    /artifacts/{digest}/download        its bytes, streamed from the store
    /artifacts/{digest}/files/{path}    one file of a Directory or Model
    /lineage?ref=&direction=&depth=     an upstream/downstream walk
    /models                             the model registry
    /metrics?workflow=                  metrics across executions, as a chart
    /api/...                            the JSON of each page (see views.py)

Read-only: every route is a GET and reads through the Ledger's read API (or the store, for
bytes). Starlette answers any other method with 405. An unknown ref is a 404 naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ledgerflow.errors import LedgerflowError, RefError
from ledgerflow.app.ui import artifacts, pages, views
from ledgerflow.types.kinds import VALUE_KIND

STATIC = Path(__file__).parent / "static"

# Only this app's own files, and no framing: the page needs nothing else, so nothing else
# may load (an artifact value that looked like markup could not fetch anything either).
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Json(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(views.finite(content), ensure_ascii=False, allow_nan=False, default=str,
                          separators=(",", ":")).encode("utf-8")


class _SecurityHeaders:
    """Adds `_HEADERS` to every response (pages, JSON, static files, downloads)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in _HEADERS.items() if k.lower().encode() not in have]
            await send(message)

        await self.app(scope, receive, with_headers)


def _api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def make_app(home=None, *, ledger=None) -> Starlette:
    """The app over the ledger of `home` (a path, a Home, or None for `LEDGERFLOW_HOME`).

    `ledger` may be given instead (a `Ledger` this process already has). The app never
    records: its Ledger only reads.
    """
    if ledger is None:
        from ledgerflow.lineage.ledger import Ledger

        ledger = Ledger(home)

    def html(name: str, title: str, **data) -> HTMLResponse:
        return HTMLResponse(pages.page(name, title, data))

    # -- pages ---------------------------------------------------------------------

    def index(request):
        return RedirectResponse("/executions", status_code=307)

    def executions_page(request):
        return html("executions", "Executions", filter_status=request.query_params.get("status", ""),
                    filter_workflow=request.query_params.get("workflow", ""), q=request.query_params.get("q", ""))

    def execution_page(request):
        ref = request.path_params["ref"]
        resolved = views.resolve(ledger, ref)
        if resolved.kind == "artifact":
            return RedirectResponse(f"/artifacts/{resolved.digest}", status_code=307)
        if resolved.kind == "step":
            return RedirectResponse(f"/executions/{resolved.execution_id}#select={quote(resolved.step)}",
                                    status_code=307)
        if resolved.execution_id != ref:  # a prefix: the page of the whole id
            return RedirectResponse(f"/executions/{resolved.execution_id}", status_code=307)
        return html("execution", f"Execution {ref}", ref=ref)

    def artifact_page(request):
        digest = request.path_params["digest"]
        facts = artifacts.info_of(ledger, digest)
        full = facts["artifact"]["digest"]
        if full != digest:
            return RedirectResponse(f"/artifacts/{full}", status_code=307)
        return html("artifact", f"Artifact {full[:19]}", digest=full)

    def lineage_page(request):
        ref = request.query_params.get("ref", "").strip()
        direction = _direction(request)
        depth = _depth(request)
        if ref:
            views.resolve(ledger, ref)  # a 404 naming it, before the page draws anything
        return html("lineage", f"Lineage {ref}" if ref else "Lineage", ref=ref, direction=direction,
                    depth="" if depth is None else depth)

    def models_page(request):
        return html("models", "Models")

    def metrics_page(request):
        return html("metrics", "Metrics", workflow=request.query_params.get("workflow", ""))

    # -- JSON ----------------------------------------------------------------------

    def api_executions(request):
        p = request.query_params
        return _Json(views.executions(ledger, p.get("status", ""), p.get("workflow", ""), p.get("q", "")))

    def api_execution(request):
        return _Json(views.execution(ledger, request.path_params["ref"]))

    def api_step(request):
        ref = request.query_params.get("ref", "")
        resolved = views.resolve(ledger, ref)
        if resolved.kind != "step":
            raise RefError(f"{ref!r} names {resolved.kind} {resolved.ref}, not a step: give EXECUTION_ID:step")
        return _Json(views.step(ledger, resolved.ref))

    def api_artifact(request):
        facts = artifacts.info_of(ledger, request.path_params["digest"])
        facts["preview"] = artifacts.preview(artifacts.store_of(ledger), facts["artifact"])
        return _Json(facts)

    def api_lineage(request):
        ref = request.query_params.get("ref", "")
        views.resolve(ledger, ref)
        return _Json(views.lineage(ledger, ref, _direction(request), _depth(request)))

    def api_models(request):
        return _Json(views.models(ledger))

    def api_metrics(request):
        return _Json(views.metrics(ledger, request.query_params.get("workflow", "")))

    # -- bytes ---------------------------------------------------------------------

    def download(request):
        facts = artifacts.info_of(ledger, request.path_params["digest"])
        art = facts["artifact"]
        if art.get("kind") in (None, VALUE_KIND) and art.get("value") is not None:
            return Response(art["value"], media_type="application/json",
                            headers={"Content-Disposition": f'attachment; filename="{artifacts.download_name(art)}"'})
        store = artifacts.store_of(ledger)
        if not store.has(art["digest"]):
            raise RefError(f"artifact {art['digest']} is not in the store at {store.url}")
        listing = artifacts.preview(store, art)
        if listing["kind"] == "listing":  # a directory downloads file by file, from its page
            return RedirectResponse(f"/artifacts/{art['digest']}#files", status_code=307)
        return _bytes(store, art["digest"], artifacts.download_name(art))

    def download_file(request):
        digest, path = request.path_params["digest"], request.path_params["path"]
        facts = artifacts.info_of(ledger, digest)
        store = artifacts.store_of(ledger)
        entry = artifacts.manifest_file(store, facts["artifact"]["digest"], path)
        return _bytes(store, entry.digest, path.rsplit("/", 1)[-1])

    # -- errors --------------------------------------------------------------------

    def ref_error(request, exc):
        message = str(exc).splitlines()[0] if str(exc) else "not found"
        if _api(request):
            return _Json({"error": message}, status_code=404)
        return HTMLResponse(pages.not_found(message), status_code=404)

    def ledger_error(request, exc):
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _api(request):
            return _Json({"error": message}, status_code=500)
        return HTMLResponse(pages.error(message), status_code=500)

    def http_error(request, exc):
        if exc.status_code == 404:
            return ref_error(request, RefError(f"no page {request.url.path}"))
        if _api(request):
            return _Json({"error": exc.detail}, status_code=exc.status_code)
        return HTMLResponse(pages.error(str(exc.detail), title=f"{exc.status_code}"), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    routes = [
        Route("/", index),
        Route("/executions", executions_page),
        Route("/executions/{ref:path}", execution_page),
        Route("/artifacts/{digest}/download", download),
        Route("/artifacts/{digest}/files/{path:path}", download_file),
        Route("/artifacts/{digest}", artifact_page),
        Route("/lineage", lineage_page),
        Route("/models", models_page),
        Route("/metrics", metrics_page),
        Route("/api/executions", api_executions),
        Route("/api/executions/{ref:path}", api_execution),
        Route("/api/step", api_step),
        Route("/api/artifacts/{digest}", api_artifact),
        Route("/api/lineage", api_lineage),
        Route("/api/models", api_models),
        Route("/api/metrics", api_metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)],
                    exception_handlers={RefError: ref_error, LedgerflowError: ledger_error, HTTPException: http_error})
    app.state.ledger = ledger
    return app


def _direction(request: Request) -> str:
    direction = request.query_params.get("direction", "upstream")
    if direction not in views.DIRECTIONS:
        raise HTTPException(400, f"direction is upstream or downstream, not {direction!r}")
    return direction


def _depth(request: Request) -> int | None:
    text = request.query_params.get("depth", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise HTTPException(400, f"depth is a number of hops, not {text!r}")
    return int(text)


def _bytes(store, digest: str, filename: str) -> StreamingResponse:
    # Always an attachment of an opaque type: stored bytes are never rendered by the browser
    # as this app's own page (a stored .html file would otherwise run with the app's origin).
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "download"
    headers = {"Content-Disposition": f'attachment; filename="{safe}"', "Content-Length": str(store.size(digest))}
    return StreamingResponse(artifacts.stream(store, digest), media_type="application/octet-stream", headers=headers)
