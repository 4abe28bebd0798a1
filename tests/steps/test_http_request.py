"""http_request against a real server on loopback: outputs, status checks, failures."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from reconciler.core.step_types import CATALOGUE
from reconciler.drivers.http_client import HttpClient
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepServices
from reconciler.engine.step_runner import run_step
from reconciler.steps.http_request import http_request

ContextFactory = Callable[..., StepContext]


async def call(
    make_context: ContextFactory, services: StepServices | None = None, **inputs: object
) -> outcomes.Outcome:
    ctx = make_context("http_request", inputs, services=services)
    return await run_step(http_request, ctx, timeout_s=10)


async def test_json_response_gives_status_body_and_json(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(make_context, method="GET", url=f"{http_server}/json")
    assert isinstance(outcome, outcomes.Done)
    assert set(outcome.outputs) == CATALOGUE["http_request"].outputs
    assert outcome.outputs["status"] == 200
    assert outcome.outputs["json"] == {"ok": True, "items": [1, 2]}
    assert '"ok": true' in outcome.outputs["body"]


async def test_non_json_body_gives_json_none(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(make_context, method="get", url=f"{http_server}/text")
    assert outcome == outcomes.Done({"status": 200, "body": "plain words", "json": None})


@pytest.mark.parametrize("expect", [201, "201", [200, 201], ["2xx"], "2XX", None])
async def test_body_headers_and_accepted_statuses(
    make_context: ContextFactory, http_server: str, expect: object
) -> None:
    inputs: dict[str, object] = {"headers": {"X-Test": "yes"}, "body": {"a": 1}}
    if expect is not None:
        inputs["expect_status"] = expect
    outcome = await call(make_context, None, method="POST", url=f"{http_server}/echo", **inputs)
    assert isinstance(outcome, outcomes.Done)
    assert outcome.outputs["status"] == 201
    assert outcome.outputs["json"] == {
        "method": "POST",
        "content_type": "application/json",
        "header": "yes",
        "body": '{"a": 1}',
    }


async def test_client_error_fails_without_retry(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(make_context, method="GET", url=f"{http_server}/status/404")
    assert isinstance(outcome, outcomes.Failed)
    assert "answered 404, expected 2xx" in outcome.reason
    assert "status 404" in outcome.reason  # an excerpt of the body


async def test_unexpected_success_status_fails(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(
        make_context, method="GET", url=f"{http_server}/json", expect_status=[201, "3xx"]
    )
    assert isinstance(outcome, outcomes.Failed)
    assert "expected 201 or 3xx" in outcome.reason


async def test_server_error_is_retried_after_retry_after(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(make_context, method="GET", url=f"{http_server}/status/503")
    assert isinstance(outcome, outcomes.Retry)
    assert outcome.after_seconds == 2.0
    outcome = await call(make_context, method="GET", url=f"{http_server}/status/429")
    assert isinstance(outcome, outcomes.Retry) and outcome.after_seconds is None


async def test_unreachable_server_is_retried(make_context: ContextFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await call(make_context, method="GET", url=f"http://127.0.0.1:{port}/")
    assert isinstance(outcome, outcomes.Retry)
    assert "cannot connect" in outcome.reason


async def test_slow_server_times_out_retryably(
    make_context: ContextFactory, http_server: str
) -> None:
    outcome = await call(make_context, method="GET", url=f"{http_server}/slow", timeout="50ms")
    assert isinstance(outcome, outcomes.Retry)
    assert "no response within 0.05s" in outcome.reason


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"url": "not a url"}, "invalid request"),
        ({"url": "http://127.0.0.1:1/", "expect_status": "abc"}, "is not a status code"),
        ({"url": "http://127.0.0.1:1/", "timeout": "soon"}, "input 'timeout'"),
        ({"url": "http://127.0.0.1:1/", "headers": ["x"]}, "input 'headers' must be a mapping"),
    ],
)
async def test_malformed_requests_stall(
    make_context: ContextFactory, inputs: dict[str, object], message: str
) -> None:
    outcome = await call(make_context, None, method="GET", **inputs)
    assert isinstance(outcome, outcomes.Stalled)
    assert message in outcome.reason


async def test_oversized_body_fails_with_the_shared_client(
    make_context: ContextFactory, http_server: str
) -> None:
    async with HttpClient(max_body_bytes=1024) as client:
        outcome = await call(
            make_context, StepServices(http=client), method="GET", url=f"{http_server}/big"
        )
    assert isinstance(outcome, outcomes.Failed)
    assert "exceeds 1024 bytes" in outcome.reason
