"""The cloud gateway: an OpenAI-compatible endpoint that forwards to a cloud provider.

A Deployment of a cloud Model with ``spec.cluster`` runs this server on that cluster (the
built-in ``cloud-gateway`` template). Callers talk to it as to any served model; it
sends each inference request on to the provider's base URL with the provider key, which
it alone holds: the key comes in the environment variable :data:`KEY_ENV` (the daemon
puts it there from its secret store, never in Git, argv, status or logs) and is dropped
from the environment at start. Nothing of the key goes back to a caller: the caller's
own ``Authorization`` is never forwarded, a provider's refusal of the key (401, 403)
becomes a 502 in our words, and any other provider error body is passed on with the
key replaced should a provider echo it.

Only inference routes go through (``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``), so a caller can spend the key on requests but never manage the
account (files, fine-tuning, keys). Every request is sent with the Deployment's
provider model, whatever ``model`` the caller wrote, as local model servers answer any
name with their one model. Streaming answers are relayed as they arrive. At most
``--max-concurrent`` requests are in flight to the provider; more wait their turn. One
log line per request (method, path, status, time); never a header or a body.

It imports nothing of the daemon (the import contract checks it): the daemon runs it as
``python -m reconciler.gateway`` with its own interpreter, whose locked environment
already holds aiohttp.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web

KEY_ENV = "RECONCILER_GATEWAY_API_KEY"
FORWARDED_PATHS = ("chat/completions", "completions", "embeddings")
API_KEY_HEADER_PROVIDERS = frozenset({"azure_openai"})
"""Providers that take the key in an ``api-key`` header; the others take a bearer token."""
PASSED_BACK_HEADERS = ("Content-Type", "X-Request-Id", "Retry-After")
PASSED_BACK_PREFIXES = ("x-ratelimit-", "openai-")
MAX_BODY_BYTES = 32 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
REDACTED = "***"

log = logging.getLogger("reconciler.gateway")


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    """What one gateway serves and where it forwards to."""

    upstream: str
    """The provider's OpenAI-compatible base URL, ending in ``/v1`` or the like."""
    provider: str
    provider_model: str
    served_model_name: str
    api_key: str = dataclasses.field(repr=False)
    max_concurrent: int = 64
    timeout_s: float = 600.0

    def auth_headers(self) -> dict[str, str]:
        if self.provider in API_KEY_HEADER_PROVIDERS:
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}


class Slots:
    """At most ``size`` requests in flight to the provider; the others wait in turn.
    ``in_flight`` and ``waiting`` are what ``/healthz`` reports."""

    def __init__(self, size: int) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self.in_flight = 0
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._semaphore.release()


SETTINGS = web.AppKey("settings", GatewaySettings)
SESSION = web.AppKey("session", aiohttp.ClientSession)
SLOTS = web.AppKey("slots", Slots)


def _problem(status: int, message: str) -> web.Response:
    """An error in the OpenAI wire format, so clients show it as they show others."""
    kind = "invalid_request_error" if status < 500 else "gateway_error"
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)


def _redacted(text: str, key: str) -> str:
    return text.replace(key, REDACTED) if key else text


def _passed_back(headers: Mapping[str, str]) -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in (h.lower() for h in PASSED_BACK_HEADERS) or lower.startswith(
            PASSED_BACK_PREFIXES
        ):
            kept[name] = value
    return kept


async def healthz(request: web.Request) -> web.Response:
    slots = request.app[SLOTS]
    return web.json_response(
        {"status": "ok", "in_flight": slots.in_flight, "waiting": slots.waiting}
    )


async def models(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    entry = {"id": settings.served_model_name, "object": "model", "owned_by": settings.provider}
    return web.json_response({"object": "list", "data": [entry]})


async def forward(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    path = request.match_info["path"]
    if path not in FORWARDED_PATHS:
        routes = ", ".join(f"/v1/{p}" for p in FORWARDED_PATHS)
        return _problem(404, f"the gateway forwards {routes} only, not /v1/{path}")
    try:
        body = await request.json()
    except ValueError:
        return _problem(400, "the request body is not a JSON object")
    if not isinstance(body, dict):
        return _problem(400, "the request body is not a JSON object")
    body["model"] = settings.provider_model
    headers = {"Accept": request.headers.get("Accept", "application/json")}
    headers.update(settings.auth_headers())
    url = f"{settings.upstream.rstrip('/')}/{path}"
    async with request.app[SLOTS]:
        try:
            async with request.app[SESSION].post(url, json=body, headers=headers) as upstream:
                return await _relay(request, upstream, settings)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__
            return _problem(502, f"the provider could not be reached ({reason})")


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, settings: GatewaySettings
) -> web.StreamResponse:
    if upstream.status in (401, 403):
        return _problem(
            502,
            f"{settings.provider} refused the gateway's credential (HTTP {upstream.status}); "
            "the operator must check the Deployment's Credential and its secret",
        )
    if upstream.status >= 400:
        text = _redacted(await upstream.text(errors="replace"), settings.api_key)
        return web.Response(
            text=text, status=upstream.status, headers=_passed_back(upstream.headers)
        )
    response = web.StreamResponse(status=upstream.status, headers=_passed_back(upstream.headers))
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK_BYTES):
            await response.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The answer has begun: it can only end short (a stream without its [DONE]).
        log.warning("%s ended the answer early (%s)", settings.provider, type(exc).__name__)
        return response
    await response.write_eof()
    return response


@web.middleware
async def _access_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info("%s %s %d %.0fms", request.method, request.path, status, elapsed_ms)


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway as an aiohttp application (its client session opens on startup)."""
    app = web.Application(middlewares=[_access_log], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings

    async def session(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.timeout_s, sock_connect=10)
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": "reconciler-gateway"}
        ) as opened:
            app[SESSION] = opened
            app[SLOTS] = Slots(settings.max_concurrent)
            yield

    app.cleanup_ctx.append(session)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/{path:.+}", forward)
    return app


def key_from_environment(environ: dict[str, str] | None = None) -> str:
    """The provider key, taken out of the environment; ValueError when it is absent."""
    env = os.environ if environ is None else environ
    key = env.pop(KEY_ENV, "").strip()
    if not key:
        raise ValueError(f"{KEY_ENV} is empty or not set: the daemon passes the provider key")
    return key
