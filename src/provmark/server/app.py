"""The FastAPI app: ``create_app(pm, settings=...)``.

Routes: ``routes_records`` (ingest, read, list, proof, bundle), ``routes_log``
(verify, checkpoints, keys), ``routes_admin`` (tokens, webhooks, audit log), and here
``/healthz``, ``/readyz``, ``/metrics`` and a placeholder page at ``/``. The paths
``/`` and ``/ui/*`` belong to the web UI, which mounts there later.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..client import Provmark
from .apidocs import SecurityHeaders, install_api_docs
from .auth import AuditLog, TokenStore
from .context import ServerContext
from .delivery import WebhookService
from .metrics import Metrics
from .problems import install_handlers, problem_response
from .settings import Settings
from .state import StateDB
from .webhooks import WebhookStore, master_key_for

log = logging.getLogger("provmark.server")

WRITER_STUCK_SECONDS = 5.0
"""/readyz answers 503 while the writer has failed to store its records for this long."""

DESCRIPTION = """Signed, tamper-evident provenance records for AI outputs, in a Merkle log.

Authenticate with `Authorization: Bearer <token>` (`provmark tokens create --role ...`).
Roles: `ingest` (POST records only), `developer` (sanitized reads, verify), `auditor`
(full reads, each one audit-logged), `admin` (tokens, webhooks, audit log).
Errors are RFC 9457 `application/problem+json` naming the `field` and the `reason`.
"""

_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provmark</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>provmark</h1>
<p>Provenance server {version}. The web UI is not installed on this server.</p>
<ul><li><a href="/docs">API reference (OpenAPI)</a></li>
<li><a href="/.well-known/provmark/keys">public keys</a></li>
<li><a href="/healthz">health</a></li></ul>
</body></html>
"""


class _Instrument:
    """Pure ASGI middleware: request metrics per route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(scope.get("method", ""), path, str(status[0])).inc()
            self.metrics.request_duration.labels(path).observe(time.perf_counter() - started)


def _snapshot(ctx: ServerContext) -> dict[str, Any]:
    s = ctx.pm.stats()
    lag = getattr(
        ctx.queue, "pending", None
    )  # provmark.queue.Queue.pending(): messages not yet consumed
    if callable(lag):
        with contextlib.suppress(Exception):
            s["queue_lag"] = lag()
    try:
        counts = ctx.hooks.counts()
        s["webhook_pending"], s["webhook_dead"] = counts["pending"], counts["dead"]
    except Exception as exc:
        log.warning("metrics: webhook counts unavailable: %s", exc)
    return s


def create_app(
    pm: Provmark,
    *,
    settings: Settings,
    on_shutdown: Callable[[], None] | None = None,
    mounts: Sequence[Callable[[FastAPI], None]] = (),
) -> FastAPI:
    """The HTTP API over one ``Provmark`` object; each of ``mounts`` then adds its part
    (``provmark serve`` mounts the web UI, ``provmark.web.mount``: the API knows nothing
    of it).

    The caller keeps ownership of ``pm`` (and of ``settings.queue``); ``on_shutdown``
    runs after the app stops, for callers that want the app to close them.
    """
    state = StateDB(settings.state)
    hooks = WebhookStore(state, master_key_for(pm))  # secrets sealed at rest
    holder: dict[str, ServerContext] = {}
    metrics = Metrics(lambda: _snapshot(holder["ctx"]))
    ctx = ServerContext(
        pm=pm,
        settings=settings,
        state=state,
        tokens=TokenStore(state),
        audit=AuditLog(state),
        hooks=hooks,
        metrics=metrics,
        queue=settings.queue,
    )
    holder["ctx"] = ctx
    if settings.webhooks.enabled:
        ctx.service = WebhookService(
            pm.store,
            hooks,
            settings.webhooks,
            on_result=lambda r: metrics.webhook_deliveries.labels(r).inc(),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx.service is not None:
            ctx.service.start()
        try:
            yield
        finally:
            if ctx.service is not None:
                await run_in_threadpool(ctx.service.stop)
            state.close()
            if on_shutdown is not None:
                await run_in_threadpool(on_shutdown)

    app = FastAPI(
        title=settings.title,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs is served from this package (apidocs), never from a CDN
        redoc_url=None,
        openapi_tags=[
            {"name": "records", "description": "Ingest and read provenance records"},
            {
                "name": "verification and log",
                "description": "Verify content; proofs, checkpoints, keys",
            },
            {"name": "admin", "description": "Tokens, webhooks and the audit log (admin role)"},
            {"name": "operations", "description": "Health, readiness and Prometheus metrics"},
        ],
    )
    app.state.provmark = ctx
    install_handlers(app)
    app.add_middleware(_Instrument, metrics=metrics)
    app.add_middleware(SecurityHeaders)

    from . import routes_admin, routes_disclosure, routes_log, routes_records

    app.include_router(routes_records.router)
    app.include_router(routes_log.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_disclosure.router)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The store, state database, writer and queue answer (degraded: dead letters)",
    )
    def readyz(request: Request) -> Response:
        problems = []
        try:
            pm.store.tree_size()
        except Exception as exc:
            log.error("readyz: store: %s", exc)
            problems.append("store: unavailable")
        try:
            state.ping()
        except Exception as exc:
            log.error("readyz: state: %s", exc)
            problems.append("state: unavailable")
        stuck = pm.writer_stuck_for()
        if stuck > WRITER_STUCK_SECONDS:
            problems.append(f"writer: records not stored for {stuck:.0f}s (store failing)")
        ready = getattr(ctx.queue, "ready", None)
        if callable(ready):
            try:
                if not ready():
                    problems.append("queue: not connected")
            except Exception as exc:
                log.error("readyz: queue: %s", exc)
                problems.append("queue: unavailable")
        if problems:
            return problem_response(
                request, 503, "not-ready", "; ".join(problems), headers={"Retry-After": "2"}
            )
        try:
            dead = pm.dead_letter_count()
        except Exception as exc:
            log.error("readyz: dead letters: %s", exc)
            dead = 0
        if dead:  # still serving: one refused record must not take the server out of service
            return JSONResponse(
                {
                    "status": "degraded",
                    "dead_letters": dead,
                    "detail": f"{dead} record(s) refused by the store are in the dead-letter "
                    "list (GET /v1/dead-letters); the writer goes on",
                }
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    install_api_docs(app)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_PLACEHOLDER.format(version=__version__))

    for add in mounts:
        add(app)
    return app
