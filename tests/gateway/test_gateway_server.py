"""The cloud gateway in front of a loopback provider, over real HTTP on both sides.

The gateway runs in this test's loop (its own aiohttp app on an ephemeral port); the
provider double speaks the OpenAI wire format. The key reaches the provider and never
comes back: not in answers, not in refusals, not in headers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reconciler.core.render import cloud_gateway as gateway_render
from reconciler.gateway import server
from tests.gateway.fake_provider import FakeProvider, running

KEY = "sk-gateway-test-4f1d9a77c0e2"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async for started in running(KEY):
        yield started


class Gateway:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.url = f"http://127.0.0.1:{port}"


async def _gateway(upstream: str, **changes: Any) -> Gateway:
    fields: dict[str, Any] = {
        "upstream": upstream,
        "provider": "openai",
        "provider_model": "gpt-4o-mini",
        "served_model_name": "chat",
        "api_key": KEY,
        "max_concurrent": 8,
        "timeout_s": 30.0,
    }
    fields.update(changes)
    runner = web.AppRunner(server.create_app(server.GatewaySettings(**fields)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return Gateway(runner, int(runner.addresses[0][1]))


@pytest.fixture
async def gateway(provider: FakeProvider) -> AsyncIterator[Gateway]:
    started = await _gateway(provider.base_url)
    yield started
    await started.runner.cleanup()


async def _post(url: str, body: Any, **headers: str) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as reply,
    ):
        answered = {name.lower(): value for name, value in reply.headers.items()}
        return reply.status, answered, await reply.text()


def _clean(status: int, headers: dict[str, str], text: str) -> None:
    assert KEY not in text and KEY not in json.dumps(headers), (status, text)
    assert KEY[-4:] not in text


CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


async def test_forwards_with_the_key_and_the_provider_model(
    gateway: Gateway, provider: FakeProvider
) -> None:
    status, headers, text = await _post(
        f"{gateway.url}/v1/chat/completions", CHAT, Authorization="Bearer callers-own-token"
    )
    assert status == 200, text
    _clean(status, headers, text)
    assert json.loads(text)["choices"][0]["message"]["content"] == "hello from the provider"
    assert headers["x-request-id"] == "req-fake-1"
    (seen,) = provider.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.body["model"] == "gpt-4o-mini" and seen.body["messages"] == CHAT["messages"]

    status, headers, text = await _post(f"{gateway.url}/v1/embeddings", {"input": "x"})
    assert status == 200 and json.loads(text)["model"] == "gpt-4o-mini"


async def test_streams_are_relayed_as_they_come(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}) as reply,
    ):
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        events = [line async for line in reply.content if line.startswith(b"data: ")]
    words = [
        json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events if b"[DONE]" not in e
    ]
    assert "".join(words) == "hello from the stream" and events[-1].strip() == b"data: [DONE]"


async def test_a_stream_the_provider_cuts_ends_short_and_the_gateway_goes_on(
    gateway: Gateway,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True, "user": "cut"}
        ) as reply,
    ):
        assert reply.status == 200
        received = await reply.content.read()
    assert b'"hello"' in received and b"[DONE]" not in received
    status, _, text = await _post(f"{gateway.url}/v1/chat/completions", CHAT)
    assert status == 200, text


async def test_the_key_never_comes_back(gateway: Gateway, provider: FakeProvider) -> None:
    status, headers, text = await _post(
        f"{gateway.url}/v1/chat/completions", {**CHAT, "user": "echo-key"}
    )
    assert status == 400 and server.REDACTED in text
    _clean(status, headers, text)

    wrong = await _gateway(provider.base_url, api_key="sk-wrong-key-0000")
    try:
        status, headers, text = await _post(f"{wrong.url}/v1/chat/completions", CHAT)
    finally:
        await wrong.runner.cleanup()
    assert status == 502 and "refused the gateway's credential (HTTP 401)" in text
    assert "0000" not in text and "Incorrect API key" not in text


async def test_only_inference_routes_go_through(gateway: Gateway, provider: FakeProvider) -> None:
    status, _, text = await _post(f"{gateway.url}/v1/files", {"purpose": "fine-tune"})
    assert status == 404 and "/v1/chat/completions" in text
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/v1/models") as reply:
        listed = await reply.json()
    assert listed["data"] == [{"id": "chat", "object": "model", "owned_by": "openai"}]
    assert provider.seen == []


async def test_api_key_providers_get_an_api_key_header() -> None:
    async for azure in running(KEY, header="api-key"):
        started = await _gateway(azure.base_url, provider="azure_openai")
        try:
            status, _, text = await _post(f"{started.url}/v1/chat/completions", CHAT)
        finally:
            await started.runner.cleanup()
        assert status == 200, text
        assert azure.seen[0].api_key == KEY and azure.seen[0].authorization is None


async def test_an_unreachable_provider_is_a_502() -> None:
    started = await _gateway("http://127.0.0.1:9/v1")
    try:
        status, headers, text = await _post(f"{started.url}/v1/chat/completions", CHAT)
    finally:
        await started.runner.cleanup()
    assert status == 502 and "could not be reached" in text
    _clean(status, headers, text)


async def _health(gateway: Gateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/healthz") as reply:
        found: dict[str, Any] = await reply.json()
        return found


async def test_at_most_max_concurrent_requests_reach_the_provider(
    provider: FakeProvider,
) -> None:
    started = await _gateway(provider.base_url, max_concurrent=2)
    try:
        url = f"{started.url}/v1/chat/completions"
        calls = [asyncio.create_task(_post(url, {**CHAT, "user": "hold"})) for _ in range(5)]
        deadline = time.monotonic() + 20
        while not (provider.holding == 2 and (await _health(started))["waiting"] == 3):
            assert time.monotonic() < deadline, (provider.holding, await _health(started))
            await asyncio.sleep(0.02)
        assert (await _health(started))["in_flight"] == 2
        provider.release()
        answers = await asyncio.gather(*calls)
    finally:
        await started.runner.cleanup()
    assert [status for status, _, _ in answers] == [200] * 5
    assert provider.most_held == 2 and len(provider.seen) == 5


def test_the_key_variable_is_the_one_the_daemon_sets() -> None:
    assert server.KEY_ENV == gateway_render.KEY_ENV
    environ = {server.KEY_ENV: f" {KEY}\n", "OTHER": "x"}
    assert server.key_from_environment(environ) == KEY
    assert server.KEY_ENV not in environ  # taken out, so no child process inherits it
    with pytest.raises(ValueError, match="not set"):
        server.key_from_environment({})
