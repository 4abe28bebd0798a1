"""wait_ready waits on the daemon's readiness source: checks, then sleeps until told the
Deployment's status moved, never polling in between."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reconciler.core.step_types import CATALOGUE
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepServices
from reconciler.steps.wait_ready import wait_ready

ContextFactory = Callable[..., StepContext]


class Readiness:
    """A readiness source the test moves: ``become(url)`` makes the Deployment Ready and
    wakes whoever waits in ``changed``."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.asked: list[str] = []
        self._moved = asyncio.Event()
        self.waiting = asyncio.Event()

    def endpoint_url(self, deployment: str) -> str | None:
        self.asked.append(deployment)
        return self.url

    async def changed(self, deployment: str) -> None:
        self.waiting.set()
        await self._moved.wait()
        self._moved.clear()

    def move(self, url: str | None = None) -> None:
        self.url = url
        self._moved.set()


async def test_gives_the_endpoint_once_ready(make_context: ContextFactory) -> None:
    source = Readiness()
    services = StepServices(readiness=source)
    step = asyncio.create_task(
        wait_ready(make_context("wait_ready", {"deployment": "chat"}, services=services))
    )
    await asyncio.wait_for(source.waiting.wait(), 5)
    source.waiting.clear()
    source.move(None)  # a status move that is not Ready yet: checked once more
    await asyncio.wait_for(source.waiting.wait(), 5)
    source.move("http://10.0.0.7:8000/v1")
    outcome = await asyncio.wait_for(step, 5)
    assert outcome == outcomes.Done({"endpoint_url": "http://10.0.0.7:8000/v1"})
    assert set(outcome.outputs) == CATALOGUE["wait_ready"].outputs
    assert source.asked == ["chat"] * 3  # once at the start, once per move: no polling


async def test_fails_when_not_ready_in_time(make_context: ContextFactory) -> None:
    source = Readiness()
    services = StepServices(readiness=source)
    outcome = await wait_ready(
        make_context("wait_ready", {"deployment": "chat", "timeout": "30ms"}, services=services)
    )
    assert isinstance(outcome, outcomes.Failed)
    assert "Deployment/chat was not Ready within 0.03s" in outcome.reason
    assert source.asked == ["chat", "chat"]  # at the start, and when the time was up


async def test_says_once_what_it_waits_for(make_context: ContextFactory) -> None:
    source = Readiness()
    context = make_context(
        "wait_ready", {"deployment": "chat"}, services=StepServices(readiness=source)
    )
    step = asyncio.create_task(wait_ready(context))
    for _ in range(5):
        await asyncio.wait_for(source.waiting.wait(), 5)
        source.waiting.clear()
        source.move(None)
    await asyncio.wait_for(source.waiting.wait(), 5)
    source.move("http://10.0.0.7:8000/v1")
    await asyncio.wait_for(step, 5)
    waits = [line for line in context.log.lines if "waiting for Deployment/chat" in line]
    assert len(waits) == 1


async def test_fails_clearly_without_a_readiness_source(make_context: ContextFactory) -> None:
    outcome = await wait_ready(make_context("wait_ready", {"deployment": "chat"}))
    assert isinstance(outcome, outcomes.Failed)
    assert "readiness source" in outcome.reason
