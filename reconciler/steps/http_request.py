"""The ``http_request`` step: call an HTTP endpoint and check the status it answers.

The I/O goes through reconciler.drivers.http_client (the daemon's shared client when it
lends one). Unreachable servers, timeouts, 5xx, 408, 425 and 429 are retried (honouring a
numeric Retry-After); any other unexpected status fails the step; a malformed request
(bad URL, bad ``expect_status``) stalls it, as only a change to the spec can fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.drivers import http_client
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.outcomes import StalledStepError
from reconciler.steps import input_values

DEFAULT_TIMEOUT_S = 30.0
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_CLASS_PATTERN = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_BODY_EXCERPT_CHARS = 300


def _one_status(value: Any) -> tuple[Callable[[int], bool], str]:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return (lambda status: status == value), str(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _one_status(int(text))
        match = _CLASS_PATTERN.match(text)
        if match is not None:
            first = int(match.group(1))
            return (lambda status: status // 100 == first), f"{first}xx"
    raise StalledStepError(
        f"input 'expect_status': {value!r} is not a status code (e.g. 200) or class (e.g. '2xx')"
    )


def status_matcher(value: Any) -> tuple[Callable[[int], bool], str]:
    """A test for accepted statuses and its description, from ``expect_status``."""
    if value is None:
        return _one_status("2xx")
    if isinstance(value, list | tuple):
        if not value:
            raise StalledStepError("input 'expect_status' must not be an empty list")
        parts = [_one_status(item) for item in value]
        return (
            lambda status: any(test(status) for test, _ in parts),
            " or ".join(label for _, label in parts),
        )
    return _one_status(value)


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode()
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(body).encode()


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StalledStepError(f"input 'headers' must be a mapping, got {type(value).__name__}")
    return {str(name): str(item) for name, item in value.items()}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "").strip()
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


async def _send(
    client: http_client.HttpClient | None,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    timeout_s: float,
) -> http_client.HttpResponse:
    if client is not None:
        return await client.request(method, url, headers=headers, body=body, timeout_s=timeout_s)
    async with http_client.HttpClient() as own:
        return await own.request(method, url, headers=headers, body=body, timeout_s=timeout_s)


async def http_request(ctx: StepContext) -> outcomes.Outcome:
    method = input_values.text(ctx.inputs, "method").upper()
    url = input_values.text(ctx.inputs, "url")
    headers = _headers(ctx.inputs.get("headers"))
    accepts, expected = status_matcher(ctx.inputs.get("expect_status"))
    timeout_s = input_values.duration(ctx.inputs, "timeout", default=DEFAULT_TIMEOUT_S)
    body = _encode_body(ctx.inputs.get("body"), headers)
    ctx.log.info(f"{method} {url}")
    try:
        response = await _send(
            ctx.services.http,
            method,
            url,
            headers=headers,
            body=body,
            timeout_s=timeout_s or DEFAULT_TIMEOUT_S,
        )
    except http_client.HttpInvalidRequestError as e:
        return outcomes.Stalled(str(e))
    except http_client.HttpResponseTooLargeError as e:
        return outcomes.Failed(str(e))
    except http_client.HttpError as e:
        return outcomes.Retry(str(e))
    text = response.text()
    ctx.log.info(f"answered {response.status} ({len(response.body)} bytes)")
    if not accepts(response.status):
        reason = (
            f"{method} {url} answered {response.status}, expected {expected}; "
            f"body: {text[:_BODY_EXCERPT_CHARS]!r}"
        )
        if response.status >= 500 or response.status in _RETRYABLE_STATUSES:
            return outcomes.Retry(reason, after_seconds=_retry_after(response.headers))
        return outcomes.Failed(reason)
    return outcomes.Done({"status": response.status, "body": text, "json": _parse_json(text)})
