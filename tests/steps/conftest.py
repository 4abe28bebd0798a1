"""Shared parts for step tests: contexts to call steps with, and a loopback HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from reconciler.engine.context import StepContext, StepLog, StepServices


def _context(
    step_type: str,
    inputs: dict[str, Any],
    *,
    attempt: int = 1,
    services: StepServices | None = None,
) -> StepContext:
    return StepContext(
        execution_id="test-execution",
        node_id="node",
        step_type=step_type,
        inputs=inputs,
        attempt=attempt,
        params={},
        object_key="Workflow/test",
        revision="r1",
        cluster=None,
        log=StepLog(prefix=f"test {step_type}"),
        services=services or StepServices(),
    )


@pytest.fixture
def make_context() -> Callable[..., StepContext]:
    return _context


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    headers = {"Retry-After": "2"} if code == 503 else {}
    return web.Response(status=code, text=f"status {code}", headers=headers)


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "content_type": request.content_type,
            "header": request.headers.get("X-Test"),
            "body": await request.text(),
        },
        status=201,
    )


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "items": [1, 2]})


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="plain words")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * 4096)


RELEASE = web.AppKey("release", asyncio.Event)


async def _slow(request: web.Request) -> web.Response:
    """Answers only when the test ends (the client has given up long before)."""
    await request.app[RELEASE].wait()
    return web.Response(text="late")


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    """Base URL of a real aiohttp server on an ephemeral loopback port."""
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/json", _json)
    app.router.add_get("/text", _text)
    app.router.add_get("/big", _big)
    app.router.add_get("/status/{code}", _status)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    app[RELEASE].set()
    await runner.cleanup()
