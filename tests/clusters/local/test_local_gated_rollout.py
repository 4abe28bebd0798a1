"""Gated rollouts on the local driver: a new revision is measured on live traffic first.

A client keeps sending requests the whole time. A revision whose server sleeps a second
before answering takes its share of the requests for the gate's window, breaks the time
to first token SLO and is rolled back, with the measurements in the report; the client
saw no failed request, the old revision serves on, the same spec is not tried again. A
revision that meets the SLOs is promoted, its report saying so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import (
    EndpointObservation,
    EndpointSpec,
    RolloutFailedError,
    RolloutGate,
)
from tests.clusters.local.conftest import endpoint, eventually

MakeDriver = Callable[[], LocalClusterDriver]
GATE = RolloutGate(
    traffic_percent=30, window_s=2.0, max_error_rate=0.01, max_ttft_ms=400.0, min_requests=4
)


def spec(script: Path, *, greeting: str, sleep_s: float = 0.0) -> EndpointSpec:
    return endpoint(
        script,
        env={"GREETING": greeting, "SLEEP_S": str(sleep_s)},
        workers=2,
        strategy="green",
        worker_concurrency=4,
        gate=GATE,
    )


def worker_pids(driver: LocalClusterDriver) -> set[int]:
    prefix = f"{driver._marker('tiny')}::worker::"
    return {identity.pid for identity, _ in procs.marked_with_prefix(prefix)}


class Clients:
    """``count`` clients, each sending one request after another until stopped."""

    def __init__(self, url: str, count: int = 6) -> None:
        self.url = url
        self.count = count
        self.greetings: list[str] = []
        self.sent: list[tuple[float, str]] = []
        """(when the request was sent, the greeting it got)."""
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Clients:
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.count)]
        return self

    async def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                async with self._session.get(self.url) as response:
                    if response.status == 200:
                        answer: dict[str, Any] = await response.json()
                        self.greetings.append(str(answer["greeting"]))
                        self.sent.append((sent, str(answer["greeting"])))
                    else:
                        self.failures.append(f"{response.status} {await response.text()}")
            except aiohttp.ClientError as exc:
                self.failures.append(repr(exc))

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._session.close()


async def serving(driver: LocalClusterDriver) -> EndpointObservation:
    async def ready() -> EndpointObservation | None:
        seen = await driver.observe_endpoint("tiny")
        return seen if seen.ready else None

    found: EndpointObservation = await eventually(ready, what="the endpoint serving")
    return found


async def test_a_revision_that_breaks_its_ttft_slo_is_rolled_back_and_no_request_fails(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(spec(server_script, greeting="hello"))
    first = await serving(driver)
    old = worker_pids(driver)
    async with Clients(f"{first.endpoint_url}/whoami") as clients:
        await eventually(lambda: _true(len(clients.greetings) > 10), what="answers")
        with pytest.raises(RolloutFailedError) as failed:
            await driver.rollout(spec(server_script, greeting="slow", sleep_s=1.0), timeout_s=60)
        decided = time.monotonic()
        report = failed.value.report
        assert report is not None and report.verdict == "rolled_back"
        assert report.requests >= GATE.min_requests and report.errors == 0
        assert report.ttft_p90_ms is not None and report.ttft_p90_ms >= 1000
        assert any("time to first token" in reason for reason in report.reasons)
        assert report.slo == {"error_rate": 0.01, "ttft_p90_ms": 400.0}
        assert "was rolled back" in str(failed.value)
        after = len(clients.greetings)
        await eventually(lambda: _true(len(clients.greetings) > after + 10), what="answers")

        async def only_the_old_workers() -> bool:
            return worker_pids(driver) == old

        await eventually(only_the_old_workers, what="the new revision's worker stopped")
    assert clients.failures == []
    assert "slow" in clients.greetings, "the new revision took its share while measured"
    after_it = {greeting for sent, greeting in clients.sent if sent > decided}
    assert after_it == {"hello"}, "every request sent after the rollback: the old revision"
    seen = await driver.observe_endpoint("tiny")
    assert seen.ready and seen.rollout is not None and seen.rollout.verdict == "rolled_back"

    # the same spec again: refused at once, no new worker starts
    with pytest.raises(RolloutFailedError, match="was rolled back"):
        await driver.rollout(spec(server_script, greeting="slow", sleep_s=1.0), timeout_s=5)
    assert worker_pids(driver) == old


async def test_a_revision_that_meets_its_slos_is_promoted(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(spec(server_script, greeting="hello"))
    first = await serving(driver)
    old = worker_pids(driver)
    async with Clients(f"{first.endpoint_url}/whoami") as clients:
        await eventually(lambda: _true(len(clients.greetings) > 10), what="answers")
        promoted = await driver.rollout(spec(server_script, greeting="bonjour"), timeout_s=60)
        promoted_at = time.monotonic()
        assert promoted.ready and promoted.workers_ready == 2
        report = promoted.rollout
        assert report is not None and report.verdict == "promoted", report
        assert report.requests >= GATE.min_requests and report.ttft_p90_ms is not None
        after = len(clients.greetings)
        await eventually(lambda: _true(len(clients.greetings) > after + 10), what="answers")
    assert clients.failures == []
    assert {greeting for sent, greeting in clients.sent if sent > promoted_at} == {"bonjour"}
    assert not (worker_pids(driver) & old) or await _eventually_gone(driver, old)


async def _eventually_gone(driver: LocalClusterDriver, old: set[int]) -> bool:
    async def gone() -> bool:
        return not (worker_pids(driver) & old)

    await eventually(gone, what="the old workers stopped")
    return True


async def _true(value: bool) -> bool:
    return value
