"""Slack and email notifications through the outbox, against real servers on loopback: an
HTTP receiver speaking a Slack incoming webhook's answers, and aiosmtpd as the SMTP
server (with AUTH, refusals and temporary failures). Also which channels a Workflow's
``config.notifications`` picks (its own, the daemon's defaults, or none when disabled),
and an outbox table from before channels."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reconciler.drivers import notify
from reconciler.engine.notify_channels import (
    ChannelDefaults,
    Target,
    notification_text,
    targets_of,
)
from reconciler.engine.notify_outbox import TABLE, NotificationOutbox, idempotency_key
from tests.workflows.mail_server import SMTP_PASSWORD, MailHandler, running_smtp_server

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
DEADLINE_S = 20.0
SLACK_PATH = "/services/T000/B000/XXXXXXXXXXXXXXXX"
EXECUTION = {
    "id": "exec-1",
    "status": "failed",
    "trigger": "api",
    "started_at": "2025-07-10T14:45:00.000000Z",
    "finished_at": "2025-07-10T14:46:00.000000Z",
    "error": "GPU memory allocation failed",
    "steps": [{"id": "train", "status": "failed", "attempts": 2, "error": "OOM"}],
}


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class FixedSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def resolve(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(f"secret {name} is in none of the configured places")
        return self.values[name]


# --- a Slack incoming webhook on loopback ----------------------------------------------


class SlackHook:
    """Answers like Slack: 200 ``ok`` for a JSON ``{"text": ...}``, 400 otherwise; the
    first ``busy`` posts get a 429 (rate limited)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.busy = 0
        self.tries = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.tries += 1
        if self.busy:
            self.busy -= 1
            return web.Response(status=429, text="rate_limited")
        data = await request.json()
        if request.content_type != "application/json" or not isinstance(data.get("text"), str):
            return web.Response(status=400, text="invalid_payload")
        self.messages.append(data["text"])
        return web.Response(status=200, text="ok")


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackHook, str]]:
    hook = SlackHook()
    app = web.Application()
    app.router.add_post(SLACK_PATH, hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield hook, f"http://127.0.0.1:{runner.addresses[0][1]}{SLACK_PATH}"
    await runner.cleanup()


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailHandler, int]]:
    with running_smtp_server() as server:
        yield server


def _mailer(port: int, *, security: notify.SmtpSecurity = "none") -> notify.EmailSender:
    return notify.EmailSender(
        notify.SmtpServer(
            host="127.0.0.1",
            port=port,
            sender="reconciler@example.com",
            security=security,
            username="reconciler",
            timeout_s=10.0,
        )
    )


def _outbox(db: Path, **kwargs: Any) -> NotificationOutbox:
    sender = kwargs.pop("sender", None) or notify.WebhookSender()
    return NotificationOutbox(
        db, sender=sender, slack=sender, base_delay_s=0.01, cap_delay_s=0.05, **kwargs
    )


# --- which channels ---------------------------------------------------------------------


def test_targets_own_channels_defaults_and_disabled() -> None:
    own = {
        "webhook": "https://hooks.example/x",
        "secret": "hook-key",
        "slack": {"secret": "slack-hook"},
        "email": {"to": ["a@example.com", "b@example.com"]},
    }
    defaults = ChannelDefaults(slack_webhook_secret="team-slack", email_to=("ops@example.com",))
    assert targets_of(own, defaults) == [
        Target("webhook", "https://hooks.example/x", "hook-key"),
        Target("slack", "", "slack-hook"),
        Target("email", "mailto:a@example.com,b@example.com"),
    ]
    assert targets_of({"enabled": True}, defaults) == [
        Target("slack", "", "team-slack"),
        Target("email", "mailto:ops@example.com"),
    ]
    assert targets_of({"enabled": True}, None) == []
    assert targets_of({**own, "enabled": False}, defaults) == []
    assert targets_of(None, defaults) == []


def test_keys_differ_per_channel_and_a_webhook_keeps_its_old_key() -> None:
    keys = {
        channel: idempotency_key(workflow="w", execution_id="e", event="fail", channel=channel)
        for channel in ("webhook", "slack", "email")
    }
    assert len(set(keys.values())) == 3
    assert keys["webhook"] == idempotency_key(workflow="w", execution_id="e", event="fail")


def test_text_rendering_says_what_happened() -> None:
    body = json.dumps({"event": "fail", "workflow": "nightly", "execution": EXECUTION}).encode()
    subject, text = notification_text(body)
    assert subject == "[reconciler] Workflow nightly: fail (failed)"
    assert "execution exec-1" in text and "GPU memory allocation failed" in text
    assert "train: failed (2 attempt(s)): OOM" in text


# --- Slack ------------------------------------------------------------------------------


async def test_slack_gets_the_event_as_text_and_a_429_is_retried(
    tmp_path: Path, slack: tuple[SlackHook, str]
) -> None:
    hook, url = slack
    hook.busy = 1
    box = _outbox(tmp_path / "state.db", secrets=FixedSecrets({"slack-hook": url + "\n"}))
    box.start()
    keys = box.notify(
        workflow="nightly",
        notifications={"slack": {"secret": "slack-hook"}, "events": ["fail"]},
        event="fail",
        execution=EXECUTION,
    )
    assert len(keys) == 1
    await wait_for(lambda: bool(hook.messages), "the Slack message")
    await wait_for(lambda: bool(box.entries(status="delivered")), "the row delivered")
    assert hook.tries == 2
    assert hook.messages[0].startswith("*[reconciler] Workflow nightly: fail (failed)*\n")
    assert "GPU memory allocation failed" in hook.messages[0]
    (entry,) = box.entries()
    assert entry.channel == "slack" and entry.url == "" and entry.secret == "slack-hook"
    await box.close()


async def test_a_refused_slack_post_fails_without_naming_the_url(
    tmp_path: Path, slack: tuple[SlackHook, str]
) -> None:
    _, url = slack
    wrong = url.replace(SLACK_PATH, "/services/T000/B000/revoked")
    box = _outbox(tmp_path / "state.db", secrets=FixedSecrets({"slack-hook": wrong}))
    box.start()
    box.notify(
        workflow="w",
        notifications={"slack": {"secret": "slack-hook"}, "events": ["start"]},
        event="start",
        execution={"id": "e1"},
    )
    await wait_for(lambda: bool(box.entries(status="failed")), "the row to fail")
    (entry,) = box.entries()
    assert entry.attempts == 1
    assert entry.last_error == "POST to the Slack webhook: answered 404"
    assert "revoked" not in (entry.last_error or "") and "127.0.0.1" not in entry.last_error
    await box.close()


# --- email ------------------------------------------------------------------------------


async def test_email_goes_through_smtp_with_auth_after_a_temporary_failure(
    tmp_path: Path, smtp_server: tuple[MailHandler, int]
) -> None:
    handler, port = smtp_server
    handler.defer = 1
    box = _outbox(
        tmp_path / "state.db",
        mailer=_mailer(port),
        password_secret="smtp-password",
        secrets=FixedSecrets({"smtp-password": SMTP_PASSWORD}),
    )
    box.start()
    (key,) = box.notify(
        workflow="nightly",
        notifications={"email": {"to": ["ml-team@example.com"]}, "events": ["fail"]},
        event="fail",
        execution=EXECUTION,
    )
    await wait_for(lambda: bool(box.entries(status="delivered")), "the mail delivered")
    assert handler.data_tries == 2  # the 451 was retried
    ((recipients, message),) = handler.mails
    assert recipients == ["ml-team@example.com"]
    assert message["From"] == "reconciler@example.com"
    assert message["Subject"] == "[reconciler] Workflow nightly: fail (failed)"
    assert message["Message-ID"] == f"<{key}@reconciler>"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "GPU memory allocation failed" in body.get_content()
    await box.close()


async def test_a_refused_recipient_or_a_wrong_password_is_not_retried(
    tmp_path: Path, smtp_server: tuple[MailHandler, int]
) -> None:
    handler, port = smtp_server
    box = _outbox(
        tmp_path / "state.db",
        mailer=_mailer(port),
        password_secret="smtp-password",
        secrets=FixedSecrets({"smtp-password": SMTP_PASSWORD}),
    )
    box.start()
    box.notify(
        workflow="a",
        notifications={"email": {"to": ["x@nobody.example"]}, "events": ["start"]},
        event="start",
        execution={"id": "e1"},
    )
    await wait_for(lambda: bool(box.entries(status="failed")), "the refused mail")
    (entry,) = box.entries()
    assert entry.attempts == 1 and "every recipient refused ([550])" in (entry.last_error or "")
    await box.close()

    wrong = _outbox(
        tmp_path / "other.db",
        mailer=_mailer(port),
        password_secret="smtp-password",
        secrets=FixedSecrets({"smtp-password": "not-the-password"}),
    )
    wrong.start()
    wrong.notify(
        workflow="b",
        notifications={"email": {"to": ["ok@example.com"]}, "events": ["start"]},
        event="start",
        execution={"id": "e2"},
    )
    await wait_for(lambda: bool(wrong.entries(status="failed")), "the refused login")
    (entry,) = wrong.entries()
    assert entry.attempts == 1 and "535" in (entry.last_error or "")
    assert "not-the-password" not in (entry.last_error or "")
    assert handler.mails == []
    await wrong.close()


async def test_starttls_required_against_a_plain_server_is_retried_not_sent_in_clear(
    tmp_path: Path, smtp_server: tuple[MailHandler, int]
) -> None:
    handler, port = smtp_server
    box = _outbox(
        tmp_path / "state.db",
        mailer=_mailer(port, security="starttls"),
        password_secret="smtp-password",
        secrets=FixedSecrets({"smtp-password": SMTP_PASSWORD}),
        max_attempts=2,
    )
    box.start()
    box.notify(
        workflow="w",
        notifications={"email": {"to": ["ok@example.com"]}, "events": ["start"]},
        event="start",
        execution={"id": "e1"},
    )
    await wait_for(lambda: bool(box.entries(status="failed")), "the row to give up")
    (entry,) = box.entries()
    assert entry.attempts == 2 and "STARTTLS" in (entry.last_error or "")
    assert handler.mails == []
    await box.close()


async def test_enabled_without_channels_uses_the_daemon_defaults_and_disabled_sends_nothing(
    tmp_path: Path, smtp_server: tuple[MailHandler, int]
) -> None:
    handler, port = smtp_server
    box = _outbox(
        tmp_path / "state.db",
        mailer=_mailer(port),
        password_secret="smtp-password",
        secrets=FixedSecrets({"smtp-password": SMTP_PASSWORD}),
        defaults=ChannelDefaults(email_to=("ops@example.com",)),
    )
    box.start()
    off = {"enabled": False, "email": {"to": ["own@example.com"]}, "events": ["start"]}
    assert box.notify(workflow="w", notifications=off, event="start", execution={"id": "e0"}) == []
    box.notify(
        workflow="w",
        notifications={"enabled": True, "events": ["start"]},
        event="start",
        execution={"id": "e1"},
    )
    await wait_for(lambda: bool(handler.mails), "the mail to the default recipients")
    assert [recipients for recipients, _ in handler.mails] == [["ops@example.com"]]
    await box.close()


async def test_an_email_row_without_an_smtp_server_fails_saying_what_to_set(
    tmp_path: Path,
) -> None:
    box = _outbox(tmp_path / "state.db")
    box.start()
    box.notify(
        workflow="w",
        notifications={"email": {"to": ["ok@example.com"]}, "events": ["start"]},
        event="start",
        execution={"id": "e1"},
    )
    await wait_for(lambda: bool(box.entries(status="failed")), "the row to fail")
    assert "notifications.smtp" in (box.entries()[0].last_error or "")
    await box.close()


# --- a table from before channels ---------------------------------------------------------


async def test_a_table_from_before_channels_gets_the_column_and_its_rows_stay_webhooks(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TABLE {TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL"
            " UNIQUE, workflow TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, secret"
            " TEXT, body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT"
            " 0, next_attempt_at REAL NOT NULL, last_error TEXT, created_at TEXT NOT NULL,"
            " delivered_at TEXT)"
        )
        conn.execute(
            f"INSERT INTO {TABLE} (key, workflow, event, url, body, status, next_attempt_at,"
            " created_at) VALUES ('k1', 'w', 'start', 'http://127.0.0.1:9/hook', '{}',"
            " 'delivered', 0, 'then')"
        )
    box = _outbox(db)
    (entry,) = box.entries()
    assert entry.channel == "webhook" and entry.status == "delivered"
    await box.close()
