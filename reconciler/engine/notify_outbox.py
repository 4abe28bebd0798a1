"""Durable workflow notifications: an outbox table, delivered in the background.

An execution event (start, complete, fail, cancel) becomes one row per channel (webhook,
Slack, email), committed before :meth:`NotificationOutbox.enqueue` returns, holding the
exact body to send and its ``Idempotency-Key`` (derived from workflow, execution id,
event and channel, so it is the same on every retry and after a restart, and differs
between events). A background task delivers due rows, oldest first per workflow; a
transient failure (5xx, a 4xx SMTP reply, a connection error) is retried with capped,
jittered exponential backoff; a delivery marks the row delivered, so a restarted daemon
resumes undelivered rows and never sends a delivered one again. A crash between the
receiver's answer and our commit can repeat one delivery: the key (the webhook's
``Idempotency-Key``, the mail's Message-ID) lets the receiver recognise it.

Which channels: a Workflow's ``config.notifications`` with ``enabled: true`` names its
own (``webhook``, ``slack.secret``, ``email.to``); naming none, it gets the
daemon's defaults (:class:`ChannelDefaults`, from ``notifications.defaults`` of the
daemon config). Slack and email get a text rendering of the same JSON body.

The table lives in the state database file beside the Store's tables, created here (IF
NOT EXISTS, a ``channel`` column added to a table from before channels) so the outbox
ships without a schema migration of the Store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler.drivers import notify
from reconciler.engine.notify_channels import (
    MAILTO,
    Channel,
    ChannelDefaults,
    Mailer,
    SlackPoster,
    notification_text,
    targets_of,
)
from reconciler.engine.records import ExecutionRecord, StepRecord

_logger = logging.getLogger("reconciler.engine.notify_outbox")

Event = Literal["start", "complete", "fail", "cancel"]
EntryStatus = Literal["pending", "delivered", "failed"]
TABLE = "notification_outbox"

_SCHEMA = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        workflow TEXT NOT NULL,
        event TEXT NOT NULL,
        url TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'webhook',
        secret TEXT,
        body TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    )
    """,
    f"CREATE INDEX IF NOT EXISTS {TABLE}_pending ON {TABLE} (status, workflow, seq)",
)

_EVENT_OF_STATUS: dict[str, Event] = {
    "succeeded": "complete",
    "failed": "fail",
    "stalled": "fail",
    "cancelled": "cancel",
}


def event_for_status(status: str) -> Event | None:
    """The event a finished execution's status announces (superseded: none)."""
    return _EVENT_OF_STATUS.get(status)


def idempotency_key(
    *, workflow: str, execution_id: str, event: str, channel: Channel = "webhook"
) -> str:
    """Stable for one event of one execution on one channel, different for any other."""
    text = f"{workflow}\0{execution_id}\0{event}"
    if channel != "webhook":  # a webhook's keys stay what they were before channels
        text += f"\0{channel}"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _iso(when: datetime.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def execution_summary(
    record: ExecutionRecord, steps: Sequence[StepRecord], *, trigger: str
) -> dict[str, Any]:
    """The ``execution`` object of a notification (and of ``last_executions``)."""
    return {
        "id": record.id,
        "status": record.status,
        "trigger": trigger,
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "error": record.error,
        "steps": [
            {
                "id": step.node_id,
                "status": step.status,
                "attempts": step.attempts,
                "started_at": _iso(step.started_at),
                "finished_at": _iso(step.finished_at),
                "error": step.error,
            }
            for step in sorted(steps, key=lambda s: s.position)
        ],
    }


def notification_body(*, event: Event, workflow: str, execution: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {"event": event, "workflow": workflow, "execution": dict(execution)},
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")


class Sender(Protocol):
    """What posts one body (reconciler.drivers.notify.WebhookSender)."""

    async def post(
        self, url: str, body: bytes, *, idempotency_key: str, secret: str | None = None
    ) -> int: ...


class SecretLookup(Protocol):
    """Resolves a secret's name to its value on the daemon host (SecretResolver)."""

    def resolve(self, name: str) -> str: ...


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    key: str
    workflow: str
    event: str
    channel: Channel
    url: str
    secret: str | None
    body: bytes
    status: EntryStatus
    attempts: int
    last_error: str | None


class NotificationOutbox:
    """The outbox of one daemon. ``enqueue`` from the loop; ``start()`` delivers.

    ``db_path``: the state database file (Store.path). ``sender`` posts webhooks,
    ``slack`` Slack messages (None: a Slack row fails, saying so); ``mailer`` sends mail
    (None: an email row fails, saying no SMTP server is configured); ``password_secret``
    names the SMTP password. ``defaults``: the channels of a Workflow that names none. ``secrets``
    resolves the names given as ``secret``. ``max_attempts`` bounds the tries of one row
    before it is marked failed (its error kept). ``clock`` gives seconds since the epoch
    (tests may pass their own).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        sender: Sender,
        slack: SlackPoster | None = None,
        mailer: Mailer | None = None,
        password_secret: str | None = None,
        defaults: ChannelDefaults | None = None,
        secrets: SecretLookup | None = None,
        base_delay_s: float = 1.0,
        cap_delay_s: float = 300.0,
        max_attempts: int = 30,
        busy_timeout_s: float = 5.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = sqlite3.connect(
            Path(db_path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        columns = {row["name"] for row in self._conn.execute(f"PRAGMA table_info({TABLE})")}
        if "channel" not in columns:  # a table from before channels: its rows are webhooks
            self._conn.execute(
                f"ALTER TABLE {TABLE} ADD COLUMN channel TEXT NOT NULL DEFAULT 'webhook'"
            )
        self._sender = sender
        self._slack = slack
        self._mailer = mailer
        self._password_secret = password_secret
        self._defaults = defaults
        self._secrets = secrets
        self._base_delay_s = base_delay_s
        self._cap_delay_s = cap_delay_s
        self._max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._clock = clock
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._worker: asyncio.Task[None] | None = None

    # -- producing ---------------------------------------------------------------------

    def enqueue(
        self,
        *,
        workflow: str,
        event: Event,
        execution: Mapping[str, Any],
        url: str,
        secret: str | None = None,
        channel: Channel = "webhook",
    ) -> str:
        """Commit one notification for delivery; its key. Enqueuing the same event of
        the same execution on the same channel again (a replay after a restart) adds
        nothing."""
        key = idempotency_key(
            workflow=workflow, execution_id=str(execution["id"]), event=event, channel=channel
        )
        body = notification_body(event=event, workflow=workflow, execution=execution)
        self._conn.execute(
            f"INSERT OR IGNORE INTO {TABLE} (key, workflow, event, url, channel, secret, body,"
            " status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                key,
                workflow,
                event,
                url,
                channel,
                secret,
                body.decode("utf-8"),
                self._clock(),
                _iso(datetime.datetime.now(datetime.UTC)),
            ),
        )
        self._wake.set()
        return key

    def notify(
        self,
        *,
        workflow: str,
        notifications: Mapping[str, Any] | None,
        event: Event,
        execution: Mapping[str, Any],
    ) -> list[str]:
        """Enqueue ``event`` on each channel of the spec's ``config.notifications`` when
        it asks for the event (see :func:`targets_of`); the keys."""
        targets = targets_of(notifications, self._defaults)
        events = (notifications or {}).get("events") or ["complete", "fail"]
        if not targets or event not in events:
            return []
        return [
            self.enqueue(
                workflow=workflow,
                event=event,
                execution=execution,
                url=target.url,
                secret=target.secret,
                channel=target.channel,
            )
            for target in targets
        ]

    # -- reading -----------------------------------------------------------------------

    def entries(self, *, status: EntryStatus | None = None) -> list[OutboxEntry]:
        query = f"SELECT * FROM {TABLE}"
        args: tuple[str, ...] = ()
        if status is not None:
            query, args = query + " WHERE status = ?", (status,)
        rows = self._conn.execute(query + " ORDER BY seq", args).fetchall()
        return [
            OutboxEntry(
                key=row["key"],
                workflow=row["workflow"],
                event=row["event"],
                channel=row["channel"],
                url=row["url"],
                secret=row["secret"],
                body=str(row["body"]).encode("utf-8"),
                status=row["status"],
                attempts=int(row["attempts"]),
                last_error=row["last_error"],
            )
            for row in rows
        ]

    # -- delivering --------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the background (pending rows from before a restart first)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name="notification outbox"
            )

    async def close(self) -> None:
        """Stop delivering (undelivered rows stay for the next start) and close the file."""
        tasks = [t for t in (self._worker, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        self._in_flight.clear()
        self._conn.close()

    def _heads(self) -> list[sqlite3.Row]:
        """The oldest pending row of each workflow: events of one workflow go in order."""
        return self._conn.execute(
            f"SELECT * FROM {TABLE} WHERE seq IN (SELECT MIN(seq) FROM {TABLE}"
            " WHERE status = 'pending' GROUP BY workflow) ORDER BY seq"
        ).fetchall()

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            soonest: float | None = None
            for row in self._heads():
                if row["key"] in self._in_flight:
                    continue
                due = float(row["next_attempt_at"])
                if due <= now:
                    self._launch(row)
                else:
                    soonest = due if soonest is None else min(soonest, due)
            timeout = None if soonest is None else max(soonest - self._clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _launch(self, row: sqlite3.Row) -> None:
        key = str(row["key"])
        task = asyncio.get_running_loop().create_task(self._deliver(row), name=f"notify {key}")
        self._in_flight[key] = task

    async def _deliver(self, row: sqlite3.Row) -> None:
        key = str(row["key"])
        attempts = int(row["attempts"]) + 1
        try:
            await self._send(row, key)
        except asyncio.CancelledError:
            raise
        except notify.RejectedDeliveryError as e:
            self._finish(key, "failed", attempts, str(e))
        except Exception as e:
            error = str(e) or type(e).__name__
            if attempts >= self._max_attempts:
                self._finish(key, "failed", attempts, f"{error} (gave up after {attempts} tries)")
            else:
                self._retry_later(key, attempts, error)
        else:
            self._finish(key, "delivered", attempts, None)
        finally:
            self._in_flight.pop(key, None)
            self._wake.set()

    async def _send(self, row: sqlite3.Row, key: str) -> None:
        body = str(row["body"]).encode("utf-8")
        channel = row["channel"]
        if channel == "webhook":
            secret = self._secret(row["secret"])
            await self._sender.post(str(row["url"]), body, idempotency_key=key, secret=secret)
            return
        subject, text = notification_text(body)
        if channel == "slack":
            if self._slack is None:
                raise notify.RejectedDeliveryError("this daemon has no Slack sender")
            url = self._secret(row["secret"])
            assert url is not None
            await self._slack.post_slack(url.strip(), f"*{subject}*\n{text}")
            return
        if self._mailer is None:
            raise notify.RejectedDeliveryError(
                "email notifications need an SMTP server: set notifications.smtp in the "
                "daemon config"
            )
        recipients = str(row["url"]).removeprefix(MAILTO).split(",")
        await self._mailer.send(
            recipients,
            subject=subject,
            text=text,
            message_id=key,
            password=self._secret(self._password_secret),
        )

    def _secret(self, name: str | None) -> str | None:
        if name is None:
            return None
        if self._secrets is None:
            raise notify.RetryableDeliveryError(
                f"secret '{name}' cannot be resolved: no secret store is configured"
            )
        try:
            return self._secrets.resolve(name)
        except Exception as e:  # the resolver's message names places, never the value
            raise notify.RetryableDeliveryError(f"secret '{name}': {e}") from e

    def _finish(self, key: str, status: EntryStatus, attempts: int, error: str | None) -> None:
        if status == "failed":
            _logger.warning("notification %s not delivered: %s", key, error)
        self._conn.execute(
            f"UPDATE {TABLE} SET status = ?, attempts = ?, last_error = ?, delivered_at = ?"
            " WHERE key = ?",
            (
                status,
                attempts,
                error,
                _iso(datetime.datetime.now(datetime.UTC)) if status == "delivered" else None,
                key,
            ),
        )

    def _retry_later(self, key: str, attempts: int, error: str) -> None:
        ceiling = min(self._cap_delay_s, self._base_delay_s * 2.0 ** min(attempts - 1, 60))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        _logger.info("notification %s: %s; retrying in %.3gs", key, error, delay)
        self._conn.execute(
            f"UPDATE {TABLE} SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE key = ?",
            (attempts, error, self._clock() + delay, key),
        )
