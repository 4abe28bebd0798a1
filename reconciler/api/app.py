"""The aiohttp application: typed state, the error middleware, and start/stop.

The daemon owns the event loop and its signals, so the server runs as an
``AppRunner(handle_signals=False)`` with one ``TCPSite`` on that loop and is stopped
before the daemon closes its store. Every response body goes through the secret
redactor; every error leaves as one JSON problem document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from reconciler.api import metrics as api_metrics
from reconciler.api import native, openapi, shard_routes, webhooks, write_routes
from reconciler.api.auth import TokenBook
from reconciler.api.compat import (
    deployed_workflow,
    flow_framework,
    inference_tasks,
    wizard,
    workflow_dashboard,
)
from reconciler.api.problems import (
    PROBLEM_TYPE,
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    Unavailable,
    Unprocessable,
    problem_body,
)
from reconciler.api.redaction import BodyRedactor
from reconciler.api.state import (
    READ_CACHE,
    REDACTOR,
    TOKENS,
    VIEW,
    WRITES,
    ReadCache,
    json_response,
)
from reconciler.api.view import DaemonView, ViewError
from reconciler.api.webhooks import WebhookGuard
from reconciler.api.writes import SpecWrites
from reconciler.engine.store import UnknownExecutionError

log = logging.getLogger("reconciler.api")

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body any route reads (webhooks have their own, smaller cap)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_VIEW_ERRORS: Mapping[str, type[ApiError]] = {
    "not_found": NotFound,
    "conflict": Conflict,
    "invalid": Unprocessable,
    "unavailable": Unavailable,
}


def _problem(
    request: web.Request, status: int, body: dict[str, Any], **headers: str
) -> web.Response:
    response = json_response(request, body, status=status, headers=headers)
    response.content_type = PROBLEM_TYPE
    return response


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors, aiohttp's own HTTP errors and crashes, each as a JSON problem.

    Any request that may write (not GET or HEAD) empties the read cache, so a client
    reads its own writes.
    """
    if request.method not in ("GET", "HEAD"):
        request.app[READ_CACHE].clear()
    try:
        _refuse_unknown_query(request)
        return await handler(request)
    except ApiError as exc:
        return _problem(request, exc.status, exc.body(), **exc.headers)
    except ViewError as exc:
        error = _VIEW_ERRORS.get(exc.reason, Conflict)(str(exc))
        return _problem(request, error.status, error.body())
    except UnknownExecutionError as exc:
        return _problem(request, 404, problem_body(404, "Not Found", str(exc).strip("'\"")))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = {
            404: "no such route; GET /api/v1/openapi.json lists them",
            405: f"method {request.method} is not allowed here",
            413: f"the request body is larger than the limit of {MAX_BODY_BYTES} bytes",
        }.get(exc.status, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return _problem(
            request, exc.status, problem_body(exc.status, exc.reason, detail), **headers
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("API request failed", extra={"method": request.method, "path": request.path})
        body = problem_body(500, "Internal Server Error", "the request failed; see the daemon log")
        return _problem(request, 500, body)


_QUERY = openapi.query_parameters()


def _refuse_unknown_query(request: web.Request) -> None:
    """A query parameter the OpenAPI document does not give this route is an error, so
    a typo (``?knd=Model``) never reads as "no filter"."""
    resource = request.match_info.route.resource
    if resource is None or not request.query:
        return
    method = "GET" if request.method == "HEAD" else request.method
    found = _QUERY.get((method, resource.canonical))
    if found is None:
        return
    allowed, repeated = found
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r} (this route takes: {known})")
    for name in set(request.query) - repeated:
        if len(request.query.getall(name)) > 1:
            raise BadRequest(f"query parameter {name!r} is given more than once")


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    """What the app needs besides the daemon view."""

    tokens: TokenBook
    redactor: BodyRedactor
    webhooks: WebhookGuard
    metrics: api_metrics.ApiMetrics
    read_cache_ttl_s: float = 1.0
    """How long a GET body may be served again (0: never); see state.ReadCache."""
    writes: SpecWrites = dataclasses.field(
        default_factory=lambda: SpecWrites(mode="off", branch="", writer=None)
    )
    """Where writes go (api.write_mode); by default they are refused."""
    metrics_public: Callable[[], bool] = lambda: False
    """Whether /metrics answers without a token (api.metrics_public), asked per scrape."""
    shards: shard_routes.ShardInfo | None = None
    """A sharded daemon's shards: requests about other replicas' objects go there."""


def create_app(view: DaemonView, settings: ApiSettings) -> web.Application:
    """The whole API as one aiohttp application."""
    app = web.Application(
        middlewares=[problems_middleware, *shard_routes.MIDDLEWARES],
        client_max_size=MAX_BODY_BYTES,
    )
    app[VIEW] = view
    app[TOKENS] = settings.tokens
    app[REDACTOR] = settings.redactor
    app[READ_CACHE] = ReadCache(ttl_s=settings.read_cache_ttl_s)
    app[WRITES] = settings.writes
    native.add_routes(app)
    write_routes.add_routes(app)
    workflow_dashboard.add_routes(app)
    deployed_workflow.add_routes(app)
    inference_tasks.add_routes(app)
    wizard.add_routes(app)
    flow_framework.add_routes(app)
    webhooks.add_routes(app, guard=settings.webhooks, view=view, metrics=settings.metrics)
    api_metrics.add_routes(
        app, metrics=settings.metrics, view=view, public=settings.metrics_public
    )
    openapi.add_routes(app)
    shard_routes.install(app, settings.shards)
    return app


class ApiServer:
    """One running server on the current loop: ``await start()``, ``await stop()``."""

    def __init__(self, app: web.Application, *, host: str, port: int) -> None:
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=5.0
        )
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; returns the port (the one chosen when asked for port 0)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def app(self) -> web.Application:
        """The application served (tests reach its state, e.g. the wizard drafts' clock)."""
        return self._runner.app
