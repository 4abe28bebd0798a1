"""wait_ready polls the daemon's readiness source until a Deployment is Ready."""

from __future__ import annotations

from collections.abc import Callable

from reconciler.core.step_types import CATALOGUE
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepServices
from reconciler.steps.wait_ready import wait_ready

ContextFactory = Callable[..., StepContext]


class ReadyAfter:
    """A readiness source that reports a Deployment Ready after some polls."""

    def __init__(self, polls: int, url: str = "http://10.0.0.7:8000/v1") -> None:
        self.polls = polls
        self.url = url
        self.asked: list[str] = []

    def endpoint_url(self, deployment: str) -> str | None:
        self.asked.append(deployment)
        return self.url if len(self.asked) > self.polls else None


async def test_gives_the_endpoint_once_ready(make_context: ContextFactory) -> None:
    source = ReadyAfter(polls=3)
    services = StepServices(readiness=source, readiness_poll_interval_s=0.001)
    outcome = await wait_ready(
        make_context("wait_ready", {"deployment": "chat"}, services=services)
    )
    assert outcome == outcomes.Done({"endpoint_url": "http://10.0.0.7:8000/v1"})
    assert set(outcome.outputs) == CATALOGUE["wait_ready"].outputs
    assert source.asked == ["chat"] * 4


async def test_fails_when_not_ready_in_time(make_context: ContextFactory) -> None:
    services = StepServices(readiness=ReadyAfter(polls=10**9), readiness_poll_interval_s=0.005)
    outcome = await wait_ready(
        make_context("wait_ready", {"deployment": "chat", "timeout": "30ms"}, services=services)
    )
    assert isinstance(outcome, outcomes.Failed)
    assert "Deployment/chat was not Ready within 0.03s" in outcome.reason


async def test_fails_clearly_without_a_readiness_source(make_context: ContextFactory) -> None:
    outcome = await wait_ready(make_context("wait_ready", {"deployment": "chat"}))
    assert isinstance(outcome, outcomes.Failed)
    assert "readiness source" in outcome.reason
