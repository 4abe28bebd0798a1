"""Durable workflow notifications: an outbox table, delivered in the background.

An execution event (start, complete, fail, cancel) becomes one row, committed before
:meth:`NotificationOutbox.enqueue` returns, holding the exact body to send and its
``Idempotency-Key`` (derived from workflow, execution id and event, so it is the same on
every retry and after a restart, and differs between events). A background task POSTs
due rows, oldest first per workflow; 5xx and connection errors are retried with capped,
jittered exponential backoff; a 2xx marks the row delivered, so a restarted daemon
resumes undelivered rows and never sends a delivered one again. A crash between the
receiver's 2xx and our commit can repeat one POST: the key lets the receiver drop it.

The table lives in the state database file beside the Store's tables, created here (IF
NOT EXISTS) so the outbox ships without a schema migration of the Store.
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


def idempotency_key(*, workflow: str, execution_id: str, event: str) -> str:
    """Stable for one event of one execution, different for any other."""
    digest = hashlib.sha256(f"{workflow}\0{execution_id}\0{event}".encode()).hexdigest()
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
    url: str
    secret: str | None
    body: bytes
    status: EntryStatus
    attempts: int
    last_error: str | None


class NotificationOutbox:
    """The outbox of one daemon. ``enqueue`` from the loop; ``start()`` delivers.

    ``db_path``: the state database file (Store.path). ``secrets`` resolves the names
    given as ``secret``. ``max_attempts`` bounds the tries of one row before it is marked
    failed (its error kept). ``clock`` gives seconds since the epoch (tests may pass
    their own).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        sender: Sender,
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
        self._sender = sender
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
    ) -> str:
        """Commit one notification for delivery; its key. Enqueuing the same event of
        the same execution again (a replay after a restart) adds nothing."""
        key = idempotency_key(workflow=workflow, execution_id=str(execution["id"]), event=event)
        body = notification_body(event=event, workflow=workflow, execution=execution)
        self._conn.execute(
            f"INSERT OR IGNORE INTO {TABLE} (key, workflow, event, url, secret, body, status,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                key,
                workflow,
                event,
                url,
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
    ) -> str | None:
        """Enqueue ``event`` if the spec's ``config.notifications`` asks for it."""
        if not notifications or not notifications.get("webhook"):
            return None
        events = notifications.get("events") or ["complete", "fail"]
        if event not in events:
            return None
        return self.enqueue(
            workflow=workflow,
            event=event,
            execution=execution,
            url=str(notifications["webhook"]),
            secret=notifications.get("secret"),
        )

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
            secret = self._secret(row["secret"])
            await self._sender.post(
                str(row["url"]),
                str(row["body"]).encode("utf-8"),
                idempotency_key=key,
                secret=secret,
            )
        except asyncio.CancelledError:
            raise
        except notify.WebhookRejectedError as e:
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

    def _secret(self, name: str | None) -> str | None:
        if name is None:
            return None
        if self._secrets is None:
            raise notify.WebhookRetryableError(
                f"secret '{name}' cannot be resolved: no secret store is configured"
            )
        try:
            return self._secrets.resolve(name)
        except Exception as e:  # the resolver's message names places, never the value
            raise notify.WebhookRetryableError(f"secret '{name}': {e}") from e

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
