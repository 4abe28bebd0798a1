"""Typed application state of the API and the two helpers every route uses.

Routes find the daemon view, the token book and the redactor under these keys; every
JSON body leaves through :func:`json_response`, so no route can forget redaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from reconciler.api.auth import Caller, TokenBook
from reconciler.api.problems import BadRequest, Unprocessable
from reconciler.api.redaction import BodyRedactor
from reconciler.api.shapes.common import Shape
from reconciler.api.view import DaemonView
from reconciler.api.writes import SpecWrites
from reconciler.daemon.config import Role

VIEW = web.AppKey("view", DaemonView)
TOKENS = web.AppKey("tokens", TokenBook)
REDACTOR = web.AppKey("redactor", BodyRedactor)
WRITES = web.AppKey("writes", SpecWrites)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_response(
    request: web.Request,
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """``data`` as JSON, with every known secret value and URL credential redacted."""
    body = request.app[REDACTOR].text(dumps(data))
    return web.Response(text=body, status=status, headers=headers, content_type=content_type)


def answer(
    request: web.Request,
    shape: Shape,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``shape`` as the JSON answer (through :func:`json_response`)."""
    return json_response(request, shape.as_json(), status=status, headers=headers)


def require(request: web.Request, role: Role) -> Caller:
    """The caller of ``request`` if its token allows ``role``; else 401 or 403."""
    return request.app[TOKENS].authorize(request.headers.get("Authorization"), role)


class ReadCache:
    """Encoded GET bodies kept for ``ttl_s``; any write through the API clears it.

    The daemon changes the store on its own too, so a read may lag it by ``ttl_s`` at
    most; ``ttl_s`` 0 turns the cache off. Bodies are stored after redaction, and the
    caller is authorized on every request before the cache is consulted.
    """

    def __init__(
        self, *, ttl_s: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes]] = {}

    def get(self, key: str) -> bytes | None:
        if self.ttl_s <= 0:
            return None
        found = self._entries.get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def put(self, key: str, body: bytes) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._clock() + self.ttl_s, body)

    def clear(self) -> None:
        self._entries.clear()


READ_CACHE = web.AppKey("read_cache", ReadCache)


async def cached_json(
    request: web.Request, build: Callable[[], Awaitable[Any]], *, status: int = 200
) -> web.Response:
    """The JSON of ``build()`` for this GET, from the read cache while it is fresh."""
    cache = request.app[READ_CACHE]
    key = request.path_qs
    body = cache.get(key)
    if body is None:
        body = request.app[REDACTOR].text(dumps(await build())).encode("utf-8")
        cache.put(key, body)
    # Encoded once, when cached: a hit sends the same bytes again.
    return web.Response(
        body=body, status=status, content_type="application/json", charset="utf-8"
    )


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when there is none); 400 or 422 otherwise."""
    if not request.can_read_body:
        return {}
    try:
        value = await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Unprocessable("the request body must be a JSON object")
    return value
