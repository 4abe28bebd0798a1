"""Requests per second of ``GET /api/v1/objects/{kind}/{name}`` against a bare handler.

The API app (the same routes, middleware, auth and redaction the daemon serves) runs over
a real SQLite store holding one Workflow with its status document and five executions of
three steps each, plus 200 other objects; ``--cache-ttl 0`` turns its read cache off so
every GET reads the store. A bare aiohttp handler returning the very same
JSON bytes is the ceiling. A second process drives each server in turn with 64 concurrent
keep-alive clients for a fixed time and reports requests/s and latency percentiles.
Goal: API >= 0.6x the bare handler, p99 <= 20 ms. Usage::

    .venv/bin/python bench/bench_api.py [--clients 64] [--seconds 10] [--json OUT]
        [--client raw|aiohttp]

The default ``raw`` client speaks HTTP/1.1 over asyncio streams (one request in flight per
keep-alive connection, the status line checked and Content-Length bytes read), which
costs the driving process far less CPU than aiohttp's client: on a 2-core machine the
client and the server share the cores, so the client's own cost shows in every latency.
With C clients always waiting, the mean latency is C / throughput (Little's law); each
result prints that floor, so a p99 goal can be read against what the throughput allows.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiohttp import ClientSession, TCPConnector, web  # noqa: E402

from reconciler.api.app import ApiServer, ApiSettings, create_app  # noqa: E402
from reconciler.api.auth import TokenBook  # noqa: E402
from reconciler.api.metrics import ApiMetrics  # noqa: E402
from reconciler.api.redaction import BodyRedactor  # noqa: E402
from reconciler.api.view import PlannedRef, Readiness, SourceInfo  # noqa: E402
from reconciler.api.webhooks import WebhookGuard  # noqa: E402
from reconciler.core.chains import Chain, StepNode  # noqa: E402
from reconciler.core.diff import ObjectState, state_from_document  # noqa: E402
from reconciler.daemon.config import ApiToken  # noqa: E402
from reconciler.engine.records import ExecutionId  # noqa: E402
from reconciler.engine.store import Store  # noqa: E402

TOKEN = "bench-viewer-token"
PATH = "/api/v1/objects/Workflow/train"


class StoreView:
    """A DaemonView over a store and fixed desired states: the API's reads, no daemon."""

    def __init__(self, store: Store, desired: Mapping[str, ObjectState]) -> None:
        self._store = store
        self._desired = dict(desired)

    @property
    def store(self) -> Store:
        return self._store

    def readiness(self) -> Readiness:
        return Readiness(loaded=True, store_writable=True, detail="ready")

    def desired(self) -> Mapping[str, ObjectState]:
        return self._desired

    def source(self) -> SourceInfo:
        return SourceInfo("bench", "main", None, None, None)

    def implemented_step_types(self) -> frozenset[str]:
        return frozenset({"noop"})

    async def author_of(self, revision: str) -> str | None:
        return None

    def trigger(self, *, reason: str, resync: bool = False) -> None:
        raise NotImplementedError("the benchmark only reads")

    def start_workflow(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        requested_by: str,
        environment: str | None = None,
    ) -> ExecutionId:
        raise NotImplementedError("the benchmark only reads")

    def cancel(self, execution_id: str) -> bool:
        raise NotImplementedError("the benchmark only reads")

    async def plan_for(self, ref: str | None) -> PlannedRef:
        raise NotImplementedError("the benchmark only reads")


def _workflow(name: str) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "noop", "user_inputs": {"delay": "10ms"}} for i in range(3)]
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {"team": "bench"}, "annotations": {}},
        "spec": {"trigger": "manual", "user_params": {"epochs": 1},
                 "workflows": {"provision": {"nodes": nodes, "edges": []}}},
    }  # fmt: skip


def seed(store: Store) -> dict[str, ObjectState]:
    desired: dict[str, ObjectState] = {}
    for index in range(201):
        name = "train" if index == 0 else f"wf-{index:03d}"
        state = state_from_document(_workflow(name))
        desired[state.key] = state
        status = {
            "apiVersion": "reconciler/v1", "kind": "Workflow", "name": name,
            "phase": "Succeeded", "observed_revision": "a" * 40,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                            "message": "ok", "last_transition_time": "2026-01-01T00:00:00Z"}],
        }  # fmt: skip
        store.put_object(
            kind="Workflow", name=name, spec_hash=state.spec_hash, revision="a" * 40,
            phase="Succeeded", status={"applied": dict(state.document), "status": status},
        )  # fmt: skip
    train = desired["Workflow/train"]
    steps = tuple(StepNode(id=f"n{i}", type="noop", inputs={"delay": "10ms"}) for i in range(3))
    for _ in range(5):
        chain = Chain("Workflow", "train", "execute", "a" * 40, train.spec_hash, steps)
        execution = store.submit_execution(chain).execution
        store.mark_execution_running(execution.id)
        for step in steps:
            store.start_step(execution.id, step.id, attempt=1, inputs=step.inputs)
            store.finish_step(execution.id, step.id, status="done", log="waiting 0.01s\n")
        store.finish_execution(execution.id, "succeeded")
    return desired


async def _raw_worker(port: int, deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, _, fields = head.partition(b"\r\n")
            assert b" 200 " in status_line, status_line
            length = next(
                int(line.split(b":", 1)[1])
                for line in fields.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


def _drive_raw(port: int, clients: int, seconds: float, queue: Any) -> None:
    async def main() -> dict[str, float]:
        latencies: list[float] = []
        await _raw_worker(port, time.perf_counter() + 0.5, [])  # warm up
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(_raw_worker(port, deadline, latencies) for _ in range(clients)))
        return _summary(latencies, time.perf_counter() - began, clients)

    queue.put(asyncio.run(main()))


def _summary(latencies: list[float], elapsed: float, clients: int) -> dict[str, float]:
    ordered = sorted(latencies)
    rps = len(ordered) / elapsed
    return {
        "requests": len(ordered),
        "rps": rps,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "littles_law_mean_ms": 1000 * clients / rps,
    }


def _drive(port: int, clients: int, seconds: float, queue: Any) -> None:
    async def main() -> dict[str, float]:
        latencies: list[float] = []
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{port}{PATH}"
        async with ClientSession(connector=TCPConnector(limit=clients)) as session:
            for _ in range(50):  # warm up
                async with session.get(url, headers=headers) as response:
                    await response.read()
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, response.status
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            elapsed = time.perf_counter() - began
        return _summary(latencies, elapsed, clients)

    queue.put(asyncio.run(main()))


def measure(port: int, clients: int, seconds: float, client: str = "raw") -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    drive = _drive_raw if client == "raw" else _drive
    process = context.Process(target=drive, args=(port, clients, seconds, queue))
    process.start()
    result: dict[str, float] = queue.get(timeout=seconds + 120)
    process.join()
    return result


async def run(
    clients: int, seconds: float, cache_ttl_s: float, client: str = "raw"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "state.db")
        desired = seed(store)
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        settings = ApiSettings(
            tokens=TokenBook([ApiToken(name="bench", role="viewer", sha256=digest)]),
            redactor=BodyRedactor(lambda: ()),
            webhooks=WebhookGuard(secret=lambda: None),
            metrics=ApiMetrics(),
            read_cache_ttl_s=cache_ttl_s,
        )
        api = ApiServer(create_app(StoreView(store, desired), settings), host="127.0.0.1", port=0)
        api_port = await api.start()
        async with ClientSession() as session:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with session.get(f"http://127.0.0.1:{api_port}{PATH}", headers=headers) as r:
                same_json = await r.read()

        async def bare_handler(_request: web.Request) -> web.Response:
            return web.Response(body=same_json, content_type="application/json")

        bare_app = web.Application()
        bare_app.router.add_get(PATH, bare_handler)
        bare = ApiServer(bare_app, host="127.0.0.1", port=0)
        bare_port = await bare.start()
        loop = asyncio.get_running_loop()
        bare_result = await loop.run_in_executor(
            None, measure, bare_port, clients, seconds, client
        )
        api_result = await loop.run_in_executor(None, measure, api_port, clients, seconds, client)
        await api.stop()
        await bare.stop()
        store.close()
    return {
        "clients": clients,
        "client": client,
        "read_cache_ttl_s": cache_ttl_s,
        "seconds": seconds,
        "body_bytes": len(same_json),
        "bare": bare_result,
        "api": api_result,
        "ratio": api_result["rps"] / bare_result["rps"],
        "python": platform.python_version(),
        "cpus": multiprocessing.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--cache-ttl", type=float, default=1.0, help="the API's read cache (0: every GET reads)"
    )
    parser.add_argument(
        "--client", choices=("raw", "aiohttp"), default="raw", help="the load generator"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args.clients, args.seconds, args.cache_ttl, args.client))
    for name in ("bare", "api"):
        r = result[name]
        print(
            f"{name:5} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
            f"  (C/throughput {r['littles_law_mean_ms']:5.2f} ms)"
        )
    goal = result["ratio"] >= 0.6 and result["api"]["p99_ms"] <= 20.0
    print(
        f"ratio {result['ratio']:.2f}x (goal >= 0.6x, p99 <= 20 ms: {'met' if goal else 'NOT met'})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
