"""Several workers behind the endpoint's proxy: spread, replaced, scaled, rolled out.

Real processes throughout: the tiny server of conftest.py as workers, the proxy as the
driver starts it. A client that keeps sending requests while workers come and go must
see every request answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import EndpointObservation
from tests.clusters.local.conftest import endpoint, eventually, get_json

MakeDriver = Callable[[], LocalClusterDriver]


def worker_pids(driver: LocalClusterDriver, name: str = "tiny") -> set[int]:
    prefix = f"{driver._marker(name)}::worker::"
    return {identity.pid for identity, _ in procs.marked_with_prefix(prefix)}


async def ready(driver: LocalClusterDriver, name: str = "tiny") -> EndpointObservation:
    async def check() -> EndpointObservation | None:
        seen = await driver.observe_endpoint(name)
        return seen if seen.ready else None

    found: EndpointObservation = await eventually(check, what=f"{name} ready")
    return found


class Client:
    """Sends requests one after another until stopped; keeps every answer."""

    def __init__(self, url: str, *, path: str = "/whoami") -> None:
        self.url = url + path
        self.answers: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Client:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                try:
                    async with session.get(self.url) as response:
                        if response.status != 200:
                            self.failures.append(f"{response.status}: {await response.text()}")
                        else:
                            self.answers.append(await response.json())
                except aiohttp.ClientError as exc:
                    self.failures.append(repr(exc))

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


async def test_workers_share_the_requests_and_a_killed_one_is_replaced(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, workers=3))
    seen = await ready(driver)
    assert (seen.workers_desired, seen.workers_ready) == (3, 3)
    first = worker_pids(driver)
    assert len(first) == 3
    helpers = {}
    for _ in range(9):
        who = await get_json(f"{seen.endpoint_url}/whoami")
        helpers[who["pid"]] = who["helper"]
    assert set(helpers) == first

    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        now = worker_pids(driver)
        return victim not in now and len(now) == 3 and (await driver.observe_endpoint("tiny")).ready

    await eventually(replaced, what="a new third worker")
    assert procs.start_ticks(helpers[victim]) is None, "the killed worker's child went with it"
    after = await driver.observe_endpoint("tiny")
    assert after.endpoint_url == seen.endpoint_url and "restarted 1 time(s)" in after.message
    answered = {(await get_json(f"{seen.endpoint_url}/whoami"))["pid"] for _ in range(9)}
    assert answered == worker_pids(driver)


async def test_scaling_down_lets_the_retired_workers_finish_their_requests(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, workers=3))
    seen = await ready(driver)
    url = str(seen.endpoint_url)
    async with aiohttp.ClientSession() as session:
        # one 1.5 s request on each worker (a worker takes one request at a time here)
        slow = [asyncio.create_task(session.get(f"{url}/sleep?seconds=1.5")) for _ in range(3)]

        async def all_busy() -> bool:
            stats = await _stats(seen)
            return stats["in_flight"] == 3

        await eventually(all_busy, what="three requests in flight")
        scaled = await driver.scale_endpoint("tiny", 1)
        assert scaled.workers_desired == 1
        responses = await asyncio.gather(*slow)
        assert [r.status for r in responses] == [200, 200, 200], "none was cut short"
        for response in responses:
            response.release()

    async def one_left() -> bool:
        return len(worker_pids(driver)) == 1 and (await driver.observe_endpoint("tiny")).ready

    await eventually(one_left, what="two workers stopped once drained")
    assert len({(await get_json(f"{url}/whoami"))["pid"] for _ in range(4)}) == 1


async def test_a_green_rollout_switches_workers_without_a_failed_request(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, workers=2, strategy="green"))
    seen = await ready(driver)
    old = worker_pids(driver)
    client = Client(str(seen.endpoint_url)).start()
    await eventually(lambda: _true(len(client.answers) >= 5), what="answers from the old revision")
    rolled = await driver.rollout(
        endpoint(server_script, workers=2, strategy="green", greeting="bonjour"), timeout_s=60
    )
    assert rolled.ready and rolled.endpoint_url == seen.endpoint_url
    count = len(client.answers)
    await eventually(lambda: _true(len(client.answers) >= count + 5), what="answers after it")
    await client.stop()
    assert client.failures == []
    greetings = [answer["greeting"] for answer in client.answers]
    switched = greetings.index("bonjour")
    assert set(greetings[:switched]) == {"hello"} and set(greetings[switched:]) == {"bonjour"}

    async def old_gone() -> bool:
        return not (worker_pids(driver) & old) and len(worker_pids(driver)) == 2

    await eventually(old_gone, what="the old workers stopped")


async def _stats(seen: EndpointObservation) -> dict[str, Any]:
    base = str(seen.endpoint_url).removesuffix("/v1")
    return await get_json(f"{base}/_reconciler/stats")


async def _true(value: bool) -> bool:
    return value
