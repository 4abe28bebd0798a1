"""The API of a sharded daemon: the shard map, and requests forwarded to the owner.

Every replica answers every request. ``GET /api/v1/shards`` (viewer) shows who holds which
shard. A request about one object is answered by the replica working on that object's
shard, since only it has the object's executions and can act on it: on any other replica
this middleware forwards it there (to the URL the owner's member Lease advertises), with
the caller's own Authorization, and relays the answer (header ``X-Reconciler-Replica``
names who answered):

- writes and triggers: ``PUT``/``DELETE /api/v1/objects/{kind}/{name}``, ``POST
  /api/v1/sync`` naming an object, ``POST /api/v1/workflows/{name}/executions`` and
  ``.../deprovision``; and the read of one object, ``GET /api/v1/objects/{kind}/{name}``;
- what is known by an id only (``/api/v1/tasks/{id}``, ``/api/v1/executions/{id}`` and its
  ``/cancel``): answered here when this replica has it, else asked of each other replica;
- a webhook or a whole-repo sync accepted here is passed on to every other replica once,
  so each fetches the source once for it (the source is never fetched N times per
  replica, and no replica waits for its next poll).

A forwarded request is never forwarded again. A shard nobody holds (between a crash and
the takeover) answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from reconciler.api.problems import problem_body
from reconciler.api.shapes import native as native_shapes
from reconciler.api.shapes.registry import Answer, RouteTable
from reconciler.api.state import answer, require

log = logging.getLogger("reconciler.api")

FORWARDED = "X-Reconciler-Forwarded-By"
REPLICA = "X-Reconciler-Replica"
FORWARD_TIMEOUT_S = 60.0
_PASSED_HEADERS = ("Authorization", "Content-Type", "Accept")
_WEBHOOK_HEADERS = (
    "X-Hub-Signature-256",
    "X-Gitlab-Token",
    "X-Gitea-Signature",
    "X-GitHub-Delivery",
    "X-Gitea-Delivery",
    "X-Gitlab-Event-UUID",
    "X-GitHub-Event",
    "X-Gitea-Event",
    "X-Gitlab-Event",
)


class ShardInfo(Protocol):
    """What the API needs of the sharding (reconciler.daemon.shard_coordinator)."""

    @property
    def identity(self) -> str: ...

    def shard_map(self) -> dict[str, Any]: ...

    def owner_url(self, key: str) -> tuple[str | None, str | None]:
        """(holder, its API URL) of ``key``'s shard; (None, None): nobody holds it."""
        ...

    def peer_urls(self) -> list[str]:
        """The API URLs of the other live replicas."""
        ...

    def retry_after_s(self) -> int: ...


SHARDS = web.AppKey("shards", ShardInfo)
_SESSION = web.AppKey("shard_session", aiohttp.ClientSession)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BY_OBJECT: dict[tuple[str, str], Callable[[web.Request], str]] = {
    ("GET", "/api/v1/objects/{kind}/{name}"): lambda r: _key(r, r.match_info["kind"]),
    ("PUT", "/api/v1/objects/{kind}/{name}"): lambda r: _key(r, r.match_info["kind"]),
    ("DELETE", "/api/v1/objects/{kind}/{name}"): lambda r: _key(r, r.match_info["kind"]),
    ("POST", "/api/v1/workflows/{name}/executions"): lambda r: _key(r, "Workflow"),
    ("POST", "/api/v1/workflows/{name}/deprovision"): lambda r: _key(r, "Workflow"),
}
_BY_ID = frozenset(
    {
        ("GET", "/api/v1/tasks/{id}"),
        ("GET", "/api/v1/executions/{id}"),
        ("POST", "/api/v1/executions/{id}/cancel"),
    }
)
_SYNC = ("POST", "/api/v1/sync")
_WEBHOOK = ("POST", "/api/v1/webhooks/git")


def _key(request: web.Request, kind: str) -> str:
    return f"{kind}/{request.match_info['name']}"


routes = RouteTable()


@routes.get(
    "/api/v1/shards",
    "Which replica holds which shard (a sharded daemon)",
    role="viewer",
    answers={200: Answer("the shard map", native_shapes.ShardMap)},
    errors=(401, 403),
)
async def shards(request: web.Request) -> web.Response:
    """``GET /api/v1/shards``: the shard map (one shard, held here, when not sharded)."""
    require(request, "viewer")
    info = request.app.get(SHARDS)
    if info is None:
        unsharded = native_shapes.ShardMap(
            enabled=False, identity=None, shards=1, held_here=[0], members=[], items=[]
        )
        return answer(request, unsharded)
    return answer(request, native_shapes.ShardMap.model_validate(info.shard_map()))


@web.middleware
async def forwarding(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Send a request about another replica's object there; see the module docstring."""
    info = request.app.get(SHARDS)
    resource = request.match_info.route.resource
    if info is None or resource is None or FORWARDED in request.headers:
        return await handler(request)
    route = (request.method, resource.canonical)
    find = _BY_OBJECT.get(route)
    key = find(request) if find is not None else None
    if route == _SYNC:
        key = await _sync_target(request)
    if key is not None:
        holder, url = info.owner_url(key)
        if holder != info.identity:
            return await _to_owner(request, info, key, holder, url)
    try:
        response = await handler(request)
    except Exception as exc:  # a 404 raised (UnknownExecutionError, NotFound, ...)
        if route in _BY_ID and _not_found(exc):
            found = await _ask_peers(request, info)
            if found is not None:
                return found
        raise
    if route in _BY_ID and response.status == 404:
        return await _ask_peers(request, info) or response
    if (route == _WEBHOOK or (route == _SYNC and key is None)) and response.status == 202:
        _pass_on(request, info)
    return response


async def _sync_target(request: web.Request) -> str | None:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        return None  # the route itself refuses it
    if isinstance(body, dict) and isinstance(body.get("kind"), str):
        name = body.get("name")
        return f"{body['kind']}/{name}" if isinstance(name, str) else None
    return None


async def _to_owner(
    request: web.Request, info: ShardInfo, key: str, holder: str | None, url: str | None
) -> web.StreamResponse:
    if holder is None:
        detail = f"{key}: its shard has no holder right now (a replica is taking it over)"
        return _problem(
            503, "Service Unavailable", detail, {"Retry-After": str(info.retry_after_s())}
        )
    if url is None:
        detail = (
            f"{key} is on replica {holder}, which advertises no API address "
            "(sharding.advertise_url, or $POD_IP with an api: section)"
        )
        return _problem(503, "Service Unavailable", detail, {"Retry-After": "5"})
    answer = await _send(request, info, url)
    if answer is None:
        detail = f"{key} is on replica {holder} at {url}, which did not answer"
        return _problem(502, "Bad Gateway", detail, {})
    return answer


async def _ask_peers(request: web.Request, info: ShardInfo) -> web.Response | None:
    """The first answer other than 404 of another replica, or None."""
    for url in info.peer_urls():
        answer = await _send(request, info, url)
        if answer is not None and answer.status != 404:
            return answer
    return None


def _not_found(exc: Exception) -> bool:
    return isinstance(exc, KeyError) or getattr(exc, "status", None) == 404


def _pass_on(request: web.Request, info: ShardInfo) -> None:
    async def each() -> None:
        await asyncio.gather(
            *(_send(request, info, url, headers=_WEBHOOK_HEADERS) for url in info.peer_urls()),
            return_exceptions=True,
        )

    task = asyncio.get_running_loop().create_task(each())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _send(
    request: web.Request,
    info: ShardInfo,
    base: str,
    *,
    headers: tuple[str, ...] = (),
) -> web.Response | None:
    """``request`` sent to the replica at ``base``; None when it did not answer."""
    session = request.app.get(_SESSION)
    if session is None or session.closed:
        return None
    sent = {
        name: request.headers[name]
        for name in (*_PASSED_HEADERS, *headers)
        if name in request.headers
    }
    sent[FORWARDED] = info.identity
    body = await request.read()
    try:
        async with session.request(
            request.method,
            base.rstrip("/") + request.path_qs,
            data=body or None,
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            allow_redirects=False,
        ) as answer:
            data = await answer.read()
            relayed = {REPLICA: answer.headers.get(REPLICA, "")}
            for name in ("Location", "Retry-After"):
                if name in answer.headers:
                    relayed[name] = answer.headers[name]
            return web.Response(
                body=data,
                status=answer.status,
                headers=relayed,
                content_type=answer.content_type,
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning(
            "forwarding to another replica failed",
            extra={"url": base, "path": request.path, "error": type(exc).__name__},
        )
        return None


def _problem(status: int, title: str, detail: str, headers: dict[str, str]) -> web.Response:
    return web.Response(
        text=json.dumps(problem_body(status, title, detail)),
        status=status,
        headers=headers,
        content_type="application/problem+json",
    )


@web.middleware
async def replica_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer names the replica that gave it (``X-Reconciler-Replica``)."""
    response = await handler(request)
    info = request.app.get(SHARDS)
    if info is not None and REPLICA not in response.headers:
        with contextlib.suppress(RuntimeError):  # a streamed answer already sent
            response.headers[REPLICA] = info.identity
    return response


def install(app: web.Application, info: ShardInfo | None) -> None:
    """The shard route, and with ``info`` (a sharded daemon) the forwarding."""
    routes.add_to(app)
    if info is None:
        return
    app[SHARDS] = info

    async def session(app: web.Application) -> Any:
        app[_SESSION] = aiohttp.ClientSession()
        yield
        await app[_SESSION].close()

    app.cleanup_ctx.append(session)


MIDDLEWARES = (replica_header, forwarding)
