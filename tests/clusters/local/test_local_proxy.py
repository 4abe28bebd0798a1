"""The local endpoint's proxy, run as its own process in front of real HTTP workers.

The workers are small aiohttp servers on loopback (in the test's loop) that answer a
chat-completions-shaped request, streamed (server-sent events) or not, after a delay the
request names; the proxy is started exactly as the driver starts it, with a
configuration file, and told of changes by SIGHUP. What is checked is what the
autoscaler and the rollout gate read: the queue, time to first token for both kinds of
answer, errors, and that a worker taken out drains before it is let go.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reconciler.drivers.clusters import local_pool
from reconciler.drivers.clusters import local_processes as procs
from tests.clusters.local.conftest import eventually


class Worker:
    """One worker: a real HTTP server on a loopback port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen = 0
        self.gate: asyncio.Event | None = None
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        self.runner = web.AppRunner(app)
        self.port = 0

    async def start(self, port: int = 0) -> Worker:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    def hold(self) -> asyncio.Event:
        """Requests wait until the returned event is set."""
        self.gate = asyncio.Event()
        return self.gate

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(float(body.get("delay", 0)))
        if body.get("fail"):
            return web.json_response({"error": "boom", "worker": self.name}, status=500)
        if not body.get("stream"):
            return web.json_response({"worker": self.name, "choices": [{"text": "hi"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for token in ("he", "ll", "o"):
            event = json.dumps({"worker": self.name, "token": token})
            await response.write(f"data: {event}\n\n".encode())
            await asyncio.sleep(0.05)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class ProxyProcess:
    """The proxy as the driver runs it: ``python -m ...local_proxy CONFIG``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "proxy.json"
        self.port = procs.allocate_port(avoid=set())
        self.generation = 0
        self.process: asyncio.subprocess.Process | None = None

    def write(self, pools: list[tuple[str, int, list[Worker]]], *, slots: int = 1) -> None:
        self.generation += 1
        config = local_pool.PoolConfig(
            port=self.port,
            slots_per_worker=slots,
            queue_timeout_s=30.0,
            pools=tuple(
                local_pool.PoolEntry(rev, weight, tuple((w.name, w.port) for w in workers))
                for rev, weight, workers in pools
            ),
        )
        local_pool.write_config(self.path, config, generation=self.generation)

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.drivers.clusters.local_proxy", str(self.path)
        )
        await eventually(self._answers, what="the proxy to listen")

    async def _answers(self) -> bool:
        async with aiohttp.ClientSession() as session:
            served = await local_pool.served_generation(session, self.port, timeout_s=1.0)
        return served == self.generation

    async def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        await eventually(self._answers, what=f"the proxy to serve generation {self.generation}")

    async def stats(self, window_s: float = 60.0) -> local_pool.ProxyStats:
        async with aiohttp.ClientSession() as session:
            found = await local_pool.fetch_stats(
                session, self.port, window_s=window_s, timeout_s=5.0
            )
        assert found is not None
        return found

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[ProxyProcess]:
    made = ProxyProcess(tmp_path)
    yield made
    if made.process is not None and made.process.returncode is None:
        made.process.terminate()
        await made.process.wait()


async def _post(session: aiohttp.ClientSession, url: str, **body: Any) -> tuple[int, str]:
    async with session.post(url, json=body) as response:
        return response.status, await response.text()


async def test_streamed_and_whole_answers_pass_through_with_their_time_to_first_token(
    proxy: ProxyProcess,
) -> None:
    worker = await Worker("w1").start()
    proxy.write([("rev-a", 100, [worker])], slots=4)
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        status, text = await _post(session, proxy.url(), stream=True, delay=0.3)
        assert status == 200
        events = [line for line in text.splitlines() if line.startswith("data: ")]
        assert [json.loads(e[6:])["token"] for e in events[:-1]] == ["he", "ll", "o"]
        assert events[-1] == "data: [DONE]"
        stats = await proxy.stats()
        streamed = stats.window("rev-a")
        # first byte after the 0.3 s delay, the whole answer 3 x 0.05 s later
        assert 300 <= streamed["ttft_p90_ms"] < 1000, streamed
        assert streamed["e2e_p90_s"] >= 0.44

        status, text = await _post(session, proxy.url(), stream=False, delay=0.5)
        assert (status, json.loads(text)["worker"]) == (200, "w1")
    stats = await proxy.stats()
    both = stats.window("rev-a")
    assert both["requests"] == 2 and both["errors"] == 0
    assert both["ttft_p90_ms"] >= 500, "a whole answer's first byte comes with all of it"
    async with aiohttp.ClientSession() as session, session.get(proxy.url("/v1/nothing")) as missing:
        assert missing.status == 404  # the worker's own answer, passed through
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.url("/_reconciler/metrics")) as metrics,
    ):
        text = await metrics.text()
    # the 404 is the worker's answer, not an error of it
    assert 'reconciler_proxy_requests_total{revision="rev-a",outcome="ok"} 3' in text
    assert "reconciler_proxy_requests_waiting 0" in text


async def test_requests_beyond_the_slots_wait_in_the_proxy_queue(proxy: ProxyProcess) -> None:
    worker = await Worker("w1").start()
    release = worker.hold()
    proxy.write([("rev-a", 100, [worker])], slots=2)
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        sent = [asyncio.create_task(_post(session, proxy.url(), delay=0)) for _ in range(5)]

        async def queued() -> local_pool.ProxyStats | None:
            stats = await proxy.stats()
            return stats if stats.waiting == 3 and stats.in_flight == 2 else None

        await eventually(queued, what="2 requests at the worker and 3 waiting")
        assert worker.seen == 2, "the worker got only its two slots' worth"
        release.set()
        answers = await asyncio.gather(*sent)
    assert [status for status, _ in answers] == [200] * 5
    assert (await proxy.stats()).waiting == 0


async def test_errors_are_counted_per_revision(proxy: ProxyProcess) -> None:
    worker = await Worker("w1").start()
    proxy.write([("rev-a", 100, [worker])], slots=4)
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        results = [await _post(session, proxy.url(), fail=(i % 4 == 0)) for i in range(8)]
    assert sorted(status for status, _ in results) == [200] * 6 + [500] * 2
    window = (await proxy.stats()).window("rev-a")
    assert (window["requests"], window["errors"], window["error_rate"]) == (8, 2, 0.25)


async def test_a_worker_taken_out_finishes_its_requests_before_it_is_let_go(
    proxy: ProxyProcess,
) -> None:
    first, second = await Worker("w1").start(), await Worker("w2").start()
    release = first.hold()
    proxy.write([("rev-a", 100, [first])], slots=1)
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(_post(session, proxy.url(), stream=True))
        await eventually(lambda: _true(first.seen == 1), what="the request at w1")
        proxy.write([("rev-a", 100, [second])], slots=1)
        await proxy.reload()
        stats = await proxy.stats()
        assert stats.holds("w1") and [b["draining"] for b in stats.backends if b["id"] == "w1"] == [
            True
        ]
        quick = await _post(session, proxy.url())
        assert json.loads(quick[1])["worker"] == "w2", "no new request goes to a draining worker"
        release.set()
        status, text = await slow
        assert status == 200 and text.endswith("data: [DONE]\n\n")
    await eventually(
        lambda: _awaiting(proxy, lambda stats: not stats.holds("w1")), what="w1 drained"
    )


async def test_a_worker_that_refuses_the_connection_is_skipped(proxy: ProxyProcess) -> None:
    alive = await Worker("w2").start()
    dead_port = procs.allocate_port(avoid={alive.port})  # nothing listens there
    proxy.write([("rev-a", 100, [alive])], slots=4)
    config = json.loads(proxy.path.read_text())
    config["pools"][0]["backends"].insert(0, {"id": "w1", "port": dead_port})
    proxy.path.write_text(json.dumps(config))
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        answers = [await _post(session, proxy.url()) for _ in range(6)]
    assert {(status, json.loads(text)["worker"]) for status, text in answers} == {(200, "w2")}
    assert (await proxy.stats()).window("rev-a")["errors"] == 0


class DroppingWorker:
    """A worker whose kept-alive connections break: it answers the first request of each
    connection, and closes the connection on the next one without a byte of answer (as
    a pooled connection to a worker that just restarted does)."""

    def __init__(self) -> None:
        self.answered = 0
        self.dropped = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> DroppingWorker:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode().split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            if not first:
                self.dropped += 1
                writer.close()
                return
            first = False
            self.answered += 1
            body = b'{"worker": "w1"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()


async def test_a_connection_that_breaks_before_any_answer_is_replaced(
    proxy: ProxyProcess,
) -> None:
    worker = await DroppingWorker().start()
    proxy.write([("rev-a", 100, [])], slots=1)
    config = json.loads(proxy.path.read_text())
    config["pools"][0]["backends"] = [{"id": "w1", "port": worker.port}]
    proxy.path.write_text(json.dumps(config))
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        answers = [await _post(session, proxy.url()) for _ in range(4)]
    assert [status for status, _ in answers] == [200] * 4
    assert worker.dropped == 2, "every other request met a broken connection"
    assert (await proxy.stats()).window("rev-a")["errors"] == 0


async def test_two_revisions_share_the_requests_by_weight(proxy: ProxyProcess) -> None:
    old, new = await Worker("w1").start(), await Worker("w2").start()
    proxy.write([("rev-a", 75, [old]), ("rev-b", 25, [new])], slots=4)
    await proxy.start()
    async with aiohttp.ClientSession() as session:
        answers = [await _post(session, proxy.url()) for _ in range(40)]
    workers = [json.loads(text)["worker"] for _, text in answers]
    assert (workers.count("w1"), workers.count("w2")) == (30, 10)
    stats = await proxy.stats()
    assert (stats.window("rev-a")["requests"], stats.window("rev-b")["requests"]) == (30, 10)


async def _true(value: bool) -> bool:
    return value


async def _awaiting(proxy: ProxyProcess, check: Callable[[local_pool.ProxyStats], bool]) -> bool:
    return check(await proxy.stats())
