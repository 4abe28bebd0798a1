"""Typed application state of the API and the two helpers every route uses.

Routes find the daemon view, the token book and the redactor under these keys; every
JSON body leaves through :func:`json_response`, so no route can forget redaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.api.auth import Caller, TokenBook
from reconciler.api.view import DaemonView
from reconciler.daemon.config import Role
from reconciler.daemon.logs import Redactor

VIEW = web.AppKey("view", DaemonView)
TOKENS = web.AppKey("tokens", TokenBook)
REDACTOR = web.AppKey("redactor", Redactor)


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
    body = dumps(request.app[REDACTOR].value(data))
    return web.Response(text=body, status=status, headers=headers, content_type=content_type)


def require(request: web.Request, role: Role) -> Caller:
    """The caller of ``request`` if its token allows ``role``; else 401 or 403."""
    return request.app[TOKENS].authorize(request.headers.get("Authorization"), role)
