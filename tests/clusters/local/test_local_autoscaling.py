"""The local driver's own autoscaler, driven by real load through the endpoint's proxy.

A load generator keeps many requests open against the endpoint (a tiny server that
takes 0.2 s per request, two at a time per worker): the proxy's queue grows, the
autoscaler adds workers up to ``max_workers``; once the load stops it goes back to
``min_workers`` after the scale-down delay. Every change is a scale event, kept with the
endpoint and told to the scale listeners. Deadlines, no fixed sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import EndpointObservation, ScalingPolicy
from tests.clusters.local.conftest import endpoint, eventually

MakeDriver = Callable[[], LocalClusterDriver]
POLICY = ScalingPolicy(min_workers=1, max_workers=3, queue_depth=1, scale_down_delay_s=1.0)


class Load:
    """``clients`` loops, each sending one request after another."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.stop = asyncio.Event()
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]
        return self

    async def _client(self) -> None:
        while not self.stop.is_set():
            try:
                async with self._session.get(self.url) as response:
                    await response.read()
                    self.statuses.append(response.status)
            except aiohttp.ClientError as exc:
                self.errors.append(repr(exc))

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)
        await self._session.close()


def worker_count(driver: LocalClusterDriver) -> int:
    prefix = f"{driver._marker('tiny')}::worker::"
    return len(procs.marked_with_prefix(prefix))


async def test_load_drives_workers_up_to_max_and_back_down_to_min(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    told: list[EndpointObservation] = []
    driver.add_scale_listener(lambda name, seen: told.append(seen))
    spec = endpoint(
        server_script,
        env={"GREETING": "hi", "SLEEP_S": "0.2"},
        worker_concurrency=2,
        autoscaling=POLICY,
    )
    await driver.apply_endpoint(spec)

    async def ready() -> EndpointObservation | None:
        seen = await driver.observe_endpoint("tiny")
        return seen if seen.ready else None

    first = await eventually(ready, what="one worker serving")
    assert first.workers_desired == 1 and worker_count(driver) == 1
    assert first.autoscaler is not None and first.autoscaler["max_workers"] == 3

    async with Load(f"{first.endpoint_url}/whoami", clients=12) as load:

        async def at_max() -> EndpointObservation | None:
            seen = await driver.observe_endpoint("tiny")
            return seen if seen.ready and seen.workers_ready == 3 else None

        up = await eventually(at_max, what="three workers serving under load", timeout_s=60)
        assert up.workers_desired == 3 and worker_count(driver) == 3
        # never beyond the bound, however long the queue: 60 more answers at max
        answered = len(load.statuses)

        async def more() -> bool:
            assert (await driver.observe_endpoint("tiny")).workers_desired == 3
            return len(load.statuses) >= answered + 60

        await eventually(more, what="60 more answers at three workers", timeout_s=60)
    assert load.errors == [] and set(load.statuses) == {200}

    async def back_at_min() -> EndpointObservation | None:
        seen = await driver.observe_endpoint("tiny")
        return seen if seen.workers_desired == 1 and worker_count(driver) == 1 else None

    down = await eventually(back_at_min, what="one worker once the load stopped", timeout_s=60)
    events = down.scale_events
    assert events[0].from_workers == 1 and events[0].to_workers > 1
    assert "waiting" in events[0].why
    assert max(event.to_workers for event in events) == 3
    assert events[-1].to_workers == 1 and "for the last 1s" in events[-1].why
    assert [e.to_workers for e in told[-1].scale_events] == [e.to_workers for e in events]
