"""Where a workflow notification goes, and the text Slack and email get.

Pure parts of the outbox (:mod:`reconciler.engine.notify_outbox`): which channels a
Workflow's ``config.notifications`` sends to (its own, or the daemon's defaults when it is
enabled and names none), the text rendering of a notification's JSON body, and the
Protocols of the Slack and mail senders (:mod:`reconciler.drivers.notify`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

Channel = Literal["webhook", "slack", "email"]
MAILTO = "mailto:"


@dataclasses.dataclass(frozen=True)
class ChannelDefaults:
    """The channels of a Workflow whose notifications are enabled and name none."""

    webhook: str | None = None
    webhook_secret: str | None = None
    slack_webhook_secret: str | None = None
    email_to: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Target:
    """One channel an event goes to: a webhook URL (``secret`` signs), a Slack webhook
    (``secret`` names the secret holding its URL; ``url`` is empty) or mail recipients
    (``url`` is ``mailto:a@x,b@y``)."""

    channel: Channel
    url: str
    secret: str | None = None


def targets_of(
    notifications: Mapping[str, Any] | None, defaults: ChannelDefaults | None = None
) -> list[Target]:
    """The channels ``config.notifications`` sends to: none when it is absent or
    ``enabled: false``; its own channels; else (enabled, naming none) the defaults."""
    if not notifications or notifications.get("enabled") is False:
        return []
    found: list[Target] = []
    if notifications.get("webhook"):
        found.append(Target("webhook", str(notifications["webhook"]), notifications.get("secret")))
    slack = notifications.get("slack")
    if isinstance(slack, Mapping) and slack.get("secret"):
        found.append(Target("slack", "", str(slack["secret"])))
    mail = notifications.get("email")
    if isinstance(mail, Mapping) and mail.get("to"):
        found.append(Target("email", MAILTO + ",".join(str(a) for a in mail["to"])))
    if found or defaults is None:
        return found
    if defaults.webhook:
        found.append(Target("webhook", defaults.webhook, defaults.webhook_secret))
    if defaults.slack_webhook_secret:
        found.append(Target("slack", "", defaults.slack_webhook_secret))
    if defaults.email_to:
        found.append(Target("email", MAILTO + ",".join(defaults.email_to)))
    return found


def notification_text(body: bytes) -> tuple[str, str]:
    """The subject and plain text of a notification body, for Slack and email."""
    data = json.loads(body)
    execution = data.get("execution") or {}
    workflow, event = data.get("workflow"), data.get("event")
    subject = f"[reconciler] Workflow {workflow}: {event} ({execution.get('status')})"
    lines = [
        f"Workflow {workflow}, execution {execution.get('id')}: {event}",
        f"status: {execution.get('status')}, trigger: {execution.get('trigger')}",
        f"started: {execution.get('started_at') or '-'}, "
        f"finished: {execution.get('finished_at') or '-'}",
    ]
    if execution.get("action") and execution["action"] != "execute":
        lines.append(f"action: {execution['action']}")
    if execution.get("error"):
        lines.append(f"error: {execution['error']}")
    for step in execution.get("steps") or []:
        line = f"  {step.get('id')}: {step.get('status')} ({step.get('attempts')} attempt(s))"
        if step.get("error"):
            line += f": {step['error']}"
        lines.append(line)
    return subject, "\n".join(lines) + "\n"


class SlackPoster(Protocol):
    """What posts to a Slack incoming webhook (reconciler.drivers.notify.WebhookSender)."""

    async def post_slack(self, webhook_url: str, text: str) -> int: ...


class Mailer(Protocol):
    """What sends one mail (reconciler.drivers.notify.EmailSender)."""

    async def send(
        self,
        to: Sequence[str],
        *,
        subject: str,
        text: str,
        message_id: str,
        password: str | None = None,
    ) -> None: ...
