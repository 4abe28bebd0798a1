"""A real SMTP server on loopback (aiosmtpd) for notification tests: it requires AUTH
(user ``reconciler``, password :data:`SMTP_PASSWORD`), keeps every mail it accepts,
refuses recipients at ``nobody.example`` (550) and can answer 451 to the next DATA
commands (a temporary failure). Tests using it should filter aiosmtpd's warning about
AUTH without TLS (plain AUTH on loopback is what this server is for)."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_PASSWORD = "smtp-pass-9c1e77"


class MailHandler:
    """Keeps every accepted mail; refuses recipients at ``nobody.example``; answers 451 to
    the first ``defer`` DATA commands (a temporary failure)."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], email.message.Message]] = []
        self.defer = 0
        self.data_tries = 0
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.endswith("@nobody.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_tries += 1
            if self.defer:
                self.defer -= 1
                return "451 4.3.0 try again later"
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            self.mails.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and data == LoginPassword(
        b"reconciler", SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # a failure answers 535


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_smtp_server() -> Iterator[tuple[MailHandler, int]]:
    """The server on a free loopback port: its handler (what it got) and the port."""
    handler = MailHandler()
    port = _free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_login,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
