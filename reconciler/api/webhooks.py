"""``POST /api/v1/webhooks/git``: a push anywhere means "fetch now", nothing more.

GitHub signs the body with HMAC-SHA256 (``X-Hub-Signature-256: sha256=<hex>``), Gitea
likewise (``X-Gitea-Signature: <hex>``), GitLab sends the shared secret itself
(``X-Gitlab-Token``). The payload is never trusted for content: a valid delivery only
triggers a fetch of the configured branch, which the daemon then reads from Git itself.
Bodies are capped, requests rate-limited before any hashing, and a delivery id seen
before is refused, so a captured request cannot be replayed.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from reconciler.api.metrics import ApiMetrics
from reconciler.api.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from reconciler.api.shapes.native import WebhookAccepted
from reconciler.api.shapes.registry import JSON, Answer, Body, RouteTable
from reconciler.api.state import answer
from reconciler.api.view import DaemonView

MAX_WEBHOOK_BYTES = 256 * 1024
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID")
REMEMBERED_DELIVERIES = 4096

routes = RouteTable()
RECEIVE = routes.declare(
    "POST",
    "/api/v1/webhooks/git",
    "A Git push: fetch now (GitHub, GitLab, Gitea signatures)",
    role=None,
    body=Body({JSON: Any}, required=False),
    answers={202: Answer("a fetch is due", WebhookAccepted)},
    errors=(400, 401, 403, 409, 413, 429, 503),
)


@dataclasses.dataclass
class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_second``."""

    burst: int = 30
    per_second: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _tokens: float = dataclasses.field(init=False)
    _at: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._at = self.clock()

    def take(self) -> float:
        """0 if a request may go now, else the seconds until one may."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.per_second


class WebhookGuard:
    """Verifies deliveries: size, rate, signature, and that the id is new."""

    def __init__(
        self,
        *,
        secret: Callable[[], str | None],
        rate: RateLimit | None = None,
        max_bytes: int = MAX_WEBHOOK_BYTES,
    ) -> None:
        self._secret = secret
        self.rate = rate or RateLimit()
        self.max_bytes = max_bytes
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def secret(self) -> str:
        try:
            value = self._secret()
        except Exception as exc:  # the secret store's own message names the places
            raise Unavailable(f"the webhook secret cannot be read: {exc}") from exc
        if not value:
            raise Forbidden("webhooks are off: set api.webhook_secret to a secret name")
        return value

    def check_rate(self) -> None:
        wait = self.rate.take()
        if wait > 0:
            raise TooManyRequests(
                "too many webhook deliveries; the daemon fetches at most "
                f"{self.rate.per_second:g} per second",
                retry_after_s=int(wait + 0.999),
            )

    @staticmethod
    def provider(request: web.Request) -> str:
        headers = request.headers
        if "X-Gitea-Signature" in headers:
            return "gitea"
        if "X-Hub-Signature-256" in headers:
            return "github"
        if "X-Gitlab-Token" in headers:
            return "gitlab"
        raise Unauthorized(
            "no webhook signature: send X-Hub-Signature-256 (GitHub), X-Gitlab-Token "
            "(GitLab) or X-Gitea-Signature (Gitea)"
        )

    @staticmethod
    def verify(provider: str, request: web.Request, body: bytes, secret: str) -> None:
        headers = request.headers
        if provider == "gitlab":
            good = hmac.compare_digest(
                headers["X-Gitlab-Token"].encode("utf-8"), secret.encode("utf-8")
            )
        else:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            given = (
                headers["X-Gitea-Signature"]
                if provider == "gitea"
                else headers["X-Hub-Signature-256"].removeprefix("sha256=")
            )
            good = hmac.compare_digest(given.strip().lower().encode(), expected.encode())
        if not good:
            raise Unauthorized(f"the {provider} webhook signature does not match")

    @staticmethod
    def delivery_id(request: web.Request) -> str:
        for name in DELIVERY_HEADERS:
            value = request.headers.get(name, "").strip()
            if value:
                if len(value) > 200:
                    raise BadRequest(f"{name} is longer than 200 characters")
                return value
        raise BadRequest(f"no delivery id: send one of {', '.join(DELIVERY_HEADERS)}")

    def remember(self, delivery: str) -> None:
        if delivery in self._seen:
            raise Conflict(f"delivery {delivery!r} was already received; replays are refused")
        self._seen[delivery] = None
        while len(self._seen) > REMEMBERED_DELIVERIES:
            self._seen.popitem(last=False)

    async def read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_bytes:
            raise PayloadTooLarge(f"webhook bodies are limited to {self.max_bytes} bytes")
        body = await request.read()  # kept on the request: a sharded replica passes it on
        if len(body) > self.max_bytes:
            raise PayloadTooLarge(f"webhook bodies are limited to {self.max_bytes} bytes")
        return body


def add_routes(
    app: web.Application, *, guard: WebhookGuard, view: DaemonView, metrics: ApiMetrics
) -> None:
    async def receive(request: web.Request) -> web.Response:
        provider = "unknown"
        try:
            guard.check_rate()
            provider = guard.provider(request)
            body = await guard.read_body(request)
            guard.verify(provider, request, body, guard.secret())
            delivery = guard.delivery_id(request)
            guard.remember(delivery)
        except Exception as exc:
            outcome = str(getattr(exc, "status", 500))
            metrics.webhooks.labels(provider=provider, outcome=outcome).inc()
            raise
        view.trigger(reason=f"webhook:{provider}")
        metrics.webhooks.labels(provider=provider, outcome="accepted").inc()
        accepted = WebhookAccepted(accepted=True, provider=provider, delivery=delivery)
        return answer(request, accepted, status=202)

    routes.add_to(app, {RECEIVE: receive})
