"""Webhook POSTs for workflow notifications: one request, its signature, its verdict.

The outbox (reconciler.engine.notify_outbox) decides what to send and when; this module
sends one body to one URL and says whether it was delivered, is worth retrying (5xx,
408, 425, 429, a connection error or timeout) or was refused for good (any other 4xx,
a malformed URL). The secret signs the body and is never put in an error or a log.
"""

from __future__ import annotations

import hashlib
import hmac

from reconciler.drivers import http_client

SIGNATURE_HEADER = "X-Reconciler-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_S = 10.0
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WebhookError(Exception):
    """A notification that was not delivered."""


class WebhookRetryableError(WebhookError):
    """Not delivered this time; the same request may succeed later."""


class WebhookRejectedError(WebhookError):
    """Refused by the receiver, or not sendable: retrying the same request cannot help."""


def signature(body: bytes, secret: str) -> str:
    """The ``X-Reconciler-Signature`` value: ``sha256=`` and the HMAC-SHA256 of the body."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_matches(body: bytes, secret: str, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time; for receivers)."""
    return hmac.compare_digest(signature(body, secret), header)


class WebhookSender:
    """Sends notification bodies over the daemon's shared HTTP client (or its own)."""

    def __init__(
        self,
        *,
        client: http_client.HttpClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._own_client = client is None
        self._client = client or http_client.HttpClient(user_agent="reconciler-notify")
        self._timeout_s = timeout_s

    async def post(
        self, url: str, body: bytes, *, idempotency_key: str, secret: str | None = None
    ) -> int:
        """POST ``body`` (JSON) to ``url``; the 2xx status, or a WebhookError."""
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key}
        if secret is not None:
            headers[SIGNATURE_HEADER] = signature(body, secret)
        try:
            response = await self._client.request(
                "POST", url, headers=headers, body=body, timeout_s=self._timeout_s
            )
        except http_client.HttpInvalidRequestError as e:
            raise WebhookRejectedError(str(e)) from e
        except http_client.HttpError as e:
            raise WebhookRetryableError(str(e)) from e
        status = response.status
        if 200 <= status < 300:
            return status
        where = f"POST {url}: answered {status}"
        if status >= 500 or status in _RETRYABLE_STATUSES:
            raise WebhookRetryableError(where)
        raise WebhookRejectedError(where)

    async def close(self) -> None:
        if self._own_client:
            await self._client.close()
