"""The reverse proxy in front of a local endpoint's workers: one process per endpoint.

Run as ``python -m reconciler.drivers.clusters.local_proxy CONFIG``. It listens on the
endpoint's stable port and hands each request to a worker (a model server on a port of
its own) that has a free slot: a worker takes ``slots_per_worker`` requests at once (its
server's parallel slots), the rest wait here, in arrival order, and the wait is the queue
depth the autoscaler reads. Workers are grouped by revision; while a new revision is
measured, a smooth weighted round-robin gives it its share of the requests.

It is a process of its own, not a part of the daemon, because local endpoints outlive a
daemon restart (their URL must keep answering while the daemon is away), and the driver
supervises it like the workers: restarted with backoff, adopted by a restarted daemon.

The driver owns its configuration, a JSON file (``CONFIG``): the listen port, the slots
and the workers by revision with their weights, and a ``generation``. The driver rewrites
it and sends SIGHUP; the proxy reads it again, and ``/_reconciler/stats`` says which
generation it serves, so the driver knows when a change is in effect. A worker left out
of the new file gets no new request and is listed as draining until its last request is
answered; only then does the driver stop it, so no request is cut by a scale-down or a
rollout. A worker that refuses the connection (it just died) is skipped and the request
goes to another; a pooled connection that breaks before any answer (its worker
restarted) is replaced by a new one. Either way no answer had begun, so nothing is lost.

Measured per revision, for the autoscaler and for the rollout gate: requests, errors
(a 5xx answer, or no answer), time to first token (from the request's arrival, queueing
included, to the first byte of the answer's body: the first streamed event of a
streaming answer, the whole answer of a non-streaming one) and end-to-end latency.
``/_reconciler/stats?window_s=S`` gives them as JSON over the last S seconds,
``/_reconciler/metrics`` in the Prometheus text format, ``/_reconciler/health`` answers
200. Every other path is proxied.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ADMIN_PREFIX = "/_reconciler/"
LOOPBACK = "127.0.0.1"
MAX_SAMPLES = 20_000
MAX_ATTEMPTS = 3
MAX_BODY = 64 * 1024 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_log = logging.getLogger("reconciler.local_proxy")


class ConfigError(Exception):
    """The configuration file cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class Pool:
    """The workers of one revision and its share of the requests (a weight)."""

    revision: str
    weight: int
    backends: tuple[tuple[str, int], ...]
    """(worker id, port) of each worker that takes requests."""


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    generation: int
    port: int
    slots_per_worker: int
    queue_timeout_s: float
    pools: tuple[Pool, ...]


def read_config(path: Path) -> ProxyConfig:
    """The configuration in ``path``; ConfigError saying what is wrong."""
    try:
        raw = json.loads(path.read_text())
        pools = tuple(
            Pool(
                revision=str(pool["revision"]),
                weight=int(pool["weight"]),
                backends=tuple((str(b["id"]), int(b["port"])) for b in pool["backends"]),
            )
            for pool in raw["pools"]
        )
        return ProxyConfig(
            generation=int(raw["generation"]),
            port=int(raw["port"]),
            slots_per_worker=max(int(raw["slots_per_worker"]), 1),
            queue_timeout_s=float(raw["queue_timeout_s"]),
            pools=pools,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unusable proxy configuration: {exc!r}") from exc


@dataclasses.dataclass
class Backend:
    id: str
    port: int
    revision: str
    in_flight: int = 0
    draining: bool = False
    last_used: int = 0


@dataclasses.dataclass(frozen=True)
class Sample:
    at: float
    ttft_s: float | None
    e2e_s: float
    error: bool


@dataclasses.dataclass
class RevisionStats:
    requests: int = 0
    errors: int = 0
    samples: collections.deque[Sample] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=MAX_SAMPLES)
    )

    def record(self, sample: Sample) -> None:
        self.requests += 1
        self.errors += int(sample.error)
        self.samples.append(sample)

    def window(self, seconds: float, now: float) -> dict[str, Any]:
        recent = [s for s in self.samples if s.at >= now - seconds]
        ttfts = [s.ttft_s for s in recent if s.ttft_s is not None and not s.error]
        errors = sum(1 for s in recent if s.error)
        return {
            "seconds": seconds,
            "requests": len(recent),
            "errors": errors,
            "error_rate": errors / len(recent) if recent else None,
            "ttft_p50_ms": _ms(percentile(ttfts, 0.5)),
            "ttft_p90_ms": _ms(percentile(ttfts, 0.9)),
            "e2e_p90_s": percentile([s.e2e_s for s in recent if not s.error], 0.9),
        }


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


class NoWorker(Exception):
    """No worker freed a slot within the queue timeout."""


class Proxy:
    """The proxy's state: workers, weights, queue and measurements."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = read_config(config_path)
        self.backends: dict[str, Backend] = {}
        self.weights: dict[str, int] = {}
        self.current: dict[str, float] = {}
        self.stats: dict[str, RevisionStats] = {}
        self.waiting = 0
        self.handed = 0
        self.changed = asyncio.Condition()
        self.session: aiohttp.ClientSession | None = None
        self.fresh_session: aiohttp.ClientSession | None = None
        """A new connection per request: for one sent again after a stale one broke."""
        self._apply(self.config)

    # --- configuration ---------------------------------------------------------------

    def _apply(self, config: ProxyConfig) -> None:
        """Take ``config``: a worker no longer in it drains (no new request) until its
        last request is answered; a new one takes requests at once."""
        wanted = {
            f"{bid}:{port}": (bid, port, pool.revision)
            for pool in config.pools
            for bid, port in pool.backends
        }
        for key, backend in list(self.backends.items()):
            if key in wanted and wanted[key][2] == backend.revision:
                backend.draining = False
            elif backend.in_flight:
                backend.draining = True
            else:
                del self.backends[key]
        for key, (bid, port, revision) in wanted.items():
            if key not in self.backends or self.backends[key].revision != revision:
                self.backends[key] = Backend(bid, port, revision)
        self.weights = {pool.revision: max(pool.weight, 0) for pool in config.pools}
        self.current = {rev: self.current.get(rev, 0.0) for rev in self.weights}
        for revision in self.weights:
            self.stats.setdefault(revision, RevisionStats())
        self.config = config

    async def reload(self) -> None:
        try:
            config = read_config(self.config_path)
        except ConfigError as exc:
            _log.error("%s; keeping generation %d", exc, self.config.generation)
            return
        async with self.changed:
            self._apply(config)
            self.changed.notify_all()
        pools = ", ".join(f"{p.revision}:{p.weight}x{len(p.backends)}" for p in config.pools)
        _log.info("generation %d: %s", config.generation, pools or "no workers")

    # --- choosing a worker -----------------------------------------------------------

    def _serving(self, revision: str, exclude: set[str]) -> list[Backend]:
        return [
            b
            for b in self.backends.values()
            if b.revision == revision and not b.draining and b.id not in exclude
        ]

    def _choose_revision(self, exclude: set[str]) -> str | None:
        """Smooth weighted round-robin over the revisions that have a worker."""
        candidates = [
            rev
            for rev, weight in self.weights.items()
            if weight > 0 and self._serving(rev, exclude)
        ]
        if not candidates:
            return None
        total = sum(self.weights[rev] for rev in candidates)
        for rev in candidates:
            self.current[rev] = self.current.get(rev, 0.0) + self.weights[rev]
        chosen = max(candidates, key=lambda rev: (self.current[rev], rev))
        self.current[chosen] -= total
        return chosen

    async def acquire(self, exclude: set[str]) -> Backend:
        """A worker with a free slot (its slot taken); waits in the queue for one.
        Workers in ``exclude`` (they refused this request) are skipped until the
        configuration changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.queue_timeout_s
        self.waiting += 1
        generation = self.config.generation
        try:
            async with self.changed:
                revision = self._choose_revision(exclude)
                while True:
                    if self.config.generation != generation:
                        exclude.clear()  # a worker that refused may be back
                        generation = self.config.generation
                    if revision is not None and not self._serving(revision, exclude):
                        revision = None
                    if revision is None:
                        revision = self._choose_revision(exclude)
                    if revision is not None:
                        free = [
                            b
                            for b in self._serving(revision, exclude)
                            if b.in_flight < self.config.slots_per_worker
                        ]
                        if free:
                            # the least busy; among those, the one unused the longest
                            backend = min(free, key=lambda b: (b.in_flight, b.last_used))
                            backend.in_flight += 1
                            self.handed += 1
                            backend.last_used = self.handed
                            return backend
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise NoWorker
                    try:
                        async with asyncio.timeout(remaining):
                            await self.changed.wait()
                    except TimeoutError:
                        raise NoWorker from None
        finally:
            self.waiting -= 1

    async def release(self, backend: Backend) -> None:
        async with self.changed:
            backend.in_flight -= 1
            key = f"{backend.id}:{backend.port}"
            if backend.draining and backend.in_flight <= 0 and self.backends.get(key) is backend:
                del self.backends[key]
            self.changed.notify_all()

    # --- serving ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        arrived = time.monotonic()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        tried: set[str] = set()
        revision = ""
        fresh = False
        for _attempt in range(MAX_ATTEMPTS):
            try:
                backend = await self.acquire(tried)
            except NoWorker:
                break
            revision = backend.revision
            try:
                return await self._forward(request, backend, headers, body, arrived, fresh=fresh)
            except _NotReached as missed:
                if missed.refused:
                    tried.add(backend.id)  # nothing listens there: another worker
                fresh = True  # a pooled connection went stale: a new one next time
            finally:
                await self.release(backend)
        self._record(revision, arrived, ttft=None, error=True)
        return web.json_response(
            {"error": {"message": "no worker of this endpoint could take the request"}},
            status=503 if not tried else 502,
        )

    async def _forward(
        self,
        request: web.Request,
        backend: Backend,
        headers: Mapping[str, str],
        body: bytes,
        arrived: float,
        *,
        fresh: bool = False,
    ) -> web.StreamResponse:
        session = self.fresh_session if fresh else self.session
        assert session is not None
        url = f"http://{LOOPBACK}:{backend.port}{request.rel_url}"
        try:
            upstream_cm = session.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            )
            upstream = await upstream_cm.__aenter__()
        except aiohttp.ClientConnectorError as exc:
            _log.warning("worker %s (port %d) not reached: %s", backend.id, backend.port, exc)
            raise _NotReached(refused=True) from exc
        except aiohttp.ClientConnectionError as exc:
            # the connection broke before any answer (a worker that restarted leaves its
            # pooled connections dead): nothing of the answer was sent, so send it again
            _log.warning(
                "worker %s (port %d) dropped the connection: %r", backend.id, backend.port, exc
            )
            raise _NotReached(refused=False) from exc
        except aiohttp.ClientError as exc:
            self._record(backend.revision, arrived, ttft=None, error=True)
            _log.warning("worker %s failed: %r", backend.id, exc)
            return web.json_response({"error": {"message": "the worker failed"}}, status=502)
        ttft: float | None = None
        error = upstream.status >= 500
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        try:
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                if ttft is None:
                    ttft = time.monotonic() - arrived
                await response.write(chunk)
            if ttft is None:
                ttft = time.monotonic() - arrived
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away: its choice, not an error of the worker
        except aiohttp.ClientError as exc:
            error = True
            _log.warning("worker %s broke off an answer: %r", backend.id, exc)
        finally:
            await upstream_cm.__aexit__(None, None, None)
        self._record(backend.revision, arrived, ttft=ttft, error=error)
        return response

    def _record(self, revision: str, arrived: float, *, ttft: float | None, error: bool) -> None:
        stats = self.stats.setdefault(revision, RevisionStats())
        stats.record(Sample(time.time(), ttft, time.monotonic() - arrived, error))

    # --- admin -----------------------------------------------------------------------

    def _admin(self, request: web.Request) -> web.StreamResponse:
        what = request.path.removeprefix(ADMIN_PREFIX)
        if what == "health":
            return web.json_response({"generation": self.config.generation})
        if what == "stats":
            try:
                window = float(request.query.get("window_s", "60"))
            except ValueError:
                return web.json_response({"error": "window_s must be a number"}, status=400)
            return web.json_response(self.snapshot(window))
        if what == "metrics":
            return web.Response(text=self.metrics(), content_type="text/plain")
        return web.json_response({"error": f"unknown admin path {request.path}"}, status=404)

    def snapshot(self, window_s: float) -> dict[str, Any]:
        now = time.time()
        return {
            "generation": self.config.generation,
            "pid": os.getpid(),
            "waiting": self.waiting,
            "in_flight": sum(b.in_flight for b in self.backends.values()),
            "slots_per_worker": self.config.slots_per_worker,
            "backends": [
                {
                    "id": b.id,
                    "port": b.port,
                    "revision": b.revision,
                    "in_flight": b.in_flight,
                    "draining": b.draining,
                }
                for b in self.backends.values()
            ],
            "revisions": {
                revision: {
                    "weight": self.weights.get(revision, 0),
                    "requests": stats.requests,
                    "errors": stats.errors,
                    "window": stats.window(window_s, now),
                }
                for revision, stats in self.stats.items()
            },
        }

    def metrics(self) -> str:
        in_flight = sum(b.in_flight for b in self.backends.values())
        lines = [
            "# HELP reconciler_proxy_requests_waiting Requests waiting for a worker's slot.",
            "# TYPE reconciler_proxy_requests_waiting gauge",
            f"reconciler_proxy_requests_waiting {self.waiting}",
            "# HELP reconciler_proxy_requests_in_flight Requests a worker is answering.",
            "# TYPE reconciler_proxy_requests_in_flight gauge",
            f"reconciler_proxy_requests_in_flight {in_flight}",
            "# HELP reconciler_proxy_workers Workers taking requests, by revision.",
            "# TYPE reconciler_proxy_workers gauge",
        ]
        for revision in self.weights:
            count = len(self._serving(revision, set()))
            lines.append(f'reconciler_proxy_workers{{revision="{revision}"}} {count}')
        lines += [
            "# HELP reconciler_proxy_requests_total Requests answered, by revision and outcome.",
            "# TYPE reconciler_proxy_requests_total counter",
        ]
        for revision, stats in self.stats.items():
            ok = stats.requests - stats.errors
            lines.append(
                f'reconciler_proxy_requests_total{{revision="{revision}",outcome="ok"}} {ok}'
            )
            lines.append(
                f'reconciler_proxy_requests_total{{revision="{revision}",outcome="error"}} '
                f"{stats.errors}"
            )
        lines += [
            "# HELP reconciler_proxy_time_to_first_token_seconds p90 over the last minute.",
            "# TYPE reconciler_proxy_time_to_first_token_seconds gauge",
        ]
        now = time.time()
        for revision, stats in self.stats.items():
            p90 = stats.window(60.0, now)["ttft_p90_ms"]
            if p90 is not None:
                lines.append(
                    f'reconciler_proxy_time_to_first_token_seconds{{revision="{revision}",'
                    f'quantile="0.9"}} {p90 / 1000.0}'
                )
        return "\n".join(lines) + "\n"


class _NotReached(Exception):
    """The request got no answer from the worker and may be sent again: ``refused``
    (nothing listens on its port) or a connection that broke before any answer."""

    def __init__(self, *, refused: bool) -> None:
        super().__init__("refused" if refused else "dropped")
        self.refused = refused


async def serve(config_path: Path) -> None:
    proxy = Proxy(config_path)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(proxy.reload()))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0)
    proxy.session = aiohttp.ClientSession(
        auto_decompress=False, timeout=timeout, connector=aiohttp.TCPConnector(limit=0)
    )
    proxy.fresh_session = aiohttp.ClientSession(
        auto_decompress=False,
        timeout=timeout,
        connector=aiohttp.TCPConnector(limit=0, force_close=True),
    )
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, proxy.config.port, reuse_address=True)
    await site.start()
    _log.info(
        "listening on %s:%d, generation %d", LOOPBACK, proxy.config.port, proxy.config.generation
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await proxy.session.close()
        await proxy.fresh_session.close()


def main(argv: list[str]) -> int:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s proxy %(levelname)s %(message)s"
    )
    if len(argv) != 1:
        print("usage: python -m reconciler.drivers.clusters.local_proxy CONFIG", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(Path(argv[0])))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
