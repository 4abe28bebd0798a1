"""Workflow notifications on the wire: a webhook POST, a Slack message, an email.

The outbox (reconciler.engine.notify_outbox) decides what to send and when; each sender
here delivers one notification and says whether it was delivered, is worth retrying or
was refused for good. Webhook and Slack: 5xx, 408, 425, 429, a connection error or a
timeout are retried; any other 4xx or a malformed URL is refused. Email goes through an
SMTP server with aiosmtplib: 4xx replies, connection errors and timeouts are retried, 5xx
replies (a recipient, the sender or the message refused, failed authentication) are
refused. A secret (the HMAC key, the Slack webhook URL, the SMTP password) is never put
in an error or a log.
"""

from __future__ import annotations

import dataclasses
import email.message
import email.utils
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Literal

import aiosmtplib

from reconciler.drivers import http_client

SIGNATURE_HEADER = "X-Reconciler-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_S = 10.0
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A notification that was not delivered."""


class RetryableDeliveryError(DeliveryError):
    """Not delivered this time; the same notification may get through later."""


class RejectedDeliveryError(DeliveryError):
    """Refused by the receiver, or not sendable: retrying the same one cannot help."""


WebhookError = DeliveryError
WebhookRetryableError = RetryableDeliveryError
WebhookRejectedError = RejectedDeliveryError


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
        return _verdict(response.status, f"POST {url}")

    async def post_slack(self, webhook_url: str, text: str) -> int:
        """Post ``text`` to a Slack incoming webhook (``{"text": ...}``); the 2xx status.
        The URL is the credential: errors name "the Slack webhook", never the URL."""
        body = json.dumps({"text": text}).encode("utf-8")
        try:
            response = await self._client.request(
                "POST",
                webhook_url,
                headers={"Content-Type": "application/json"},
                body=body,
                timeout_s=self._timeout_s,
            )
        except http_client.HttpInvalidRequestError as e:
            raise RejectedDeliveryError(
                f"the Slack webhook URL cannot be used ({type(e).__name__})"
            ) from None
        except http_client.HttpError as e:
            raise RetryableDeliveryError(
                f"the Slack webhook did not answer ({type(e).__name__})"
            ) from None
        return _verdict(response.status, "POST to the Slack webhook")

    async def close(self) -> None:
        if self._own_client:
            await self._client.close()


def _verdict(status: int, where: str) -> int:
    if 200 <= status < 300:
        return status
    if status >= 500 or status in _RETRYABLE_STATUSES:
        raise RetryableDeliveryError(f"{where}: answered {status}")
    raise RejectedDeliveryError(f"{where}: answered {status}")


SmtpSecurity = Literal["starttls", "tls", "none"]


@dataclasses.dataclass(frozen=True)
class SmtpServer:
    """Where email goes: ``security`` starttls (upgrade a plain connection, required),
    tls (TLS from the first byte) or none (plain; loopback relays only)."""

    host: str
    port: int
    sender: str
    security: SmtpSecurity = "starttls"
    username: str | None = None
    timeout_s: float = 30.0


class EmailSender:
    """Sends notification mails through one SMTP server (a connection per mail)."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def send(
        self,
        to: Sequence[str],
        *,
        subject: str,
        text: str,
        message_id: str,
        password: str | None = None,
    ) -> None:
        """Send one plain-text mail; ``message_id`` (the notification's key) is its
        Message-ID, so a repeat after a crash is recognisable."""
        server = self._server
        message = email.message.EmailMessage()
        message["From"] = server.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = f"<{message_id}@reconciler>"
        message.set_content(text)
        where = f"SMTP {server.host}:{server.port}"
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=password,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",
                timeout=server.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = sorted({r.code for r in e.recipients})
            raise _smtp_error(
                max(codes, default=550), f"{where}: every recipient refused ({codes})"
            ) from None
        except aiosmtplib.SMTPResponseException as e:
            raise _smtp_error(e.code, f"{where}: answered {e.code} {e.message}") from None
        except (aiosmtplib.SMTPException, OSError) as e:
            raise RetryableDeliveryError(f"{where}: {type(e).__name__}: {e}") from None
        if refused:
            raise RejectedDeliveryError(
                f"{where}: refused {', '.join(sorted(refused))}; the others got the mail"
            )


def _smtp_error(code: int, message: str) -> DeliveryError:
    """4xx: try again later; 5xx: refused for good."""
    if 400 <= code < 500:
        return RetryableDeliveryError(message)
    return RejectedDeliveryError(message)
