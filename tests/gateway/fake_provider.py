"""A cloud provider on loopback that speaks the OpenAI wire format, for the gateway tests.

It answers ``POST /v1/chat/completions`` (JSON, or server-sent events when the body asks
``stream: true``) and ``POST /v1/embeddings`` for one API key, refuses any other key with
a 401 that quotes part of the key (as real providers do), and records every request it
got (path, the headers that carry keys, the JSON body). A chat body whose ``user`` is
``echo-key`` is refused with a 400 whose message holds the whole key, and one whose
``user`` is ``hold`` waits until :meth:`FakeProvider.release` is called, counting the
requests it holds at once, so a test can see how many the gateway lets through; a
streamed one whose ``user`` is ``cut`` drops the connection after its first chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


@dataclasses.dataclass
class Seen:
    path: str
    authorization: str | None
    api_key: str | None
    body: dict[str, Any]


class FakeProvider:
    def __init__(self, key: str, *, header: str = "Authorization") -> None:
        self.key = key
        self.header = header
        self.seen: list[Seen] = []
        self.holding = 0
        self.most_held = 0
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def release(self) -> None:
        self._release.set()

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get(self.header)
        expected = f"Bearer {self.key}" if self.header == "Authorization" else self.key
        return given == expected

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(
            Seen(
                request.path,
                request.headers.get("Authorization"),
                request.headers.get("api-key"),
                body,
            )
        )
        if not self._authorized(request):
            hint = f"{self.key[:3]}...{self.key[-4:]}"
            message = f"Incorrect API key provided: {hint}."
            return web.json_response({"error": {"message": message}}, status=401)
        if body.get("user") == "echo-key":
            message = f"request refused for key {self.key}"
            return web.json_response({"error": {"message": message}}, status=400)
        if body.get("user") == "hold":
            self.holding += 1
            self.most_held = max(self.most_held, self.holding)
            try:
                await self._release.wait()
            finally:
                self.holding -= 1
        if request.path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
            return web.json_response({"object": "list", "data": data, "model": body["model"]})
        if body.get("stream"):
            return await self._stream(request, body)
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello from the provider"},
                    "finish_reason": "stop",
                }
            ],
        }
        return web.json_response(answer, headers={"x-request-id": "req-fake-1"})

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("hello", " from", " the stream"):
            chunk = {"object": "chat.completion.chunk", "model": body.get("model"),
                     "choices": [{"index": 0, "delta": {"content": word}}]}  # fmt: skip
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if body.get("user") == "cut" and request.transport is not None:
                request.transport.close()  # the connection drops mid-answer
                return response
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()


async def running(key: str, *, header: str = "Authorization") -> AsyncIterator[FakeProvider]:
    """A started FakeProvider for a fixture; stopped afterwards."""
    provider = FakeProvider(key, header=header)
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()
