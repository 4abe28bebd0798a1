"""Which Workflow executions announce themselves, and with what: start, complete, fail.

The executor says when an execution of an object starts running or moves
(``on_progress``) and when it ends (``on_finished``); this turns those into outbox rows
for the Workflows whose ``config.notifications`` asks for the event. Provision runs
(``execute`` chains) and deprovisions asked for while the Workflow stays in Git
(``deprovision``) are announced, each with its ``action``; the undo that runs when a
Workflow leaves Git is not (its notification settings left with it), nor is a superseded
run (a newer one replaces it).
The outbox makes each event durable and once-only by its key, so a replay after a
restart adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core.diff import ObjectState
from reconciler.daemon.object_status import step_status_word
from reconciler.engine.notify_outbox import (
    Event,
    NotificationOutbox,
    event_for_status,
    execution_summary,
)
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store

_PREFIX = "Workflow/"
_ANNOUNCED_ACTIONS = ("execute", "deprovision")


def notifications_of(state: ObjectState | None) -> Mapping[str, Any] | None:
    """``spec.config.notifications`` of a Workflow, or None."""
    if state is None:
        return None
    config = state.spec.get("config")
    found = config.get("notifications") if isinstance(config, Mapping) else None
    return found if isinstance(found, Mapping) else None


class WorkflowNotifier:
    """Feeds the outbox from executor callbacks (call from the event loop)."""

    def __init__(
        self,
        *,
        outbox: NotificationOutbox,
        store: Store,
        desired: Callable[[], Mapping[str, ObjectState]],
    ) -> None:
        self._outbox = outbox
        self._store = store
        self._desired = desired
        self._announced: set[str] = set()

    def on_progress(self, key: str) -> None:
        """An execution of ``key`` started or moved: announce its start, once."""
        if not key.startswith(_PREFIX):
            return
        name = key[len(_PREFIX) :]
        running = self._store.list_executions(
            kind="Workflow", name=name, statuses=("running",), limit=1
        )
        if (
            not running
            or running[0].id in self._announced
            or running[0].action not in _ANNOUNCED_ACTIONS
        ):
            return
        self._announced.add(running[0].id)
        self._send(running[0], "start")

    def on_finished(self, record: ExecutionRecord) -> None:
        self._announced.discard(record.id)
        if record.kind != "Workflow" or record.action not in _ANNOUNCED_ACTIONS:
            return
        event = event_for_status(record.status)
        if event is not None:
            self._send(record, event)

    def _send(self, record: ExecutionRecord, event: Event) -> None:
        notifications = notifications_of(self._desired().get(record.object_key))
        if notifications is None:
            return
        execution = execution_summary(
            record, self._store.get_steps(record.id), trigger=record.trigger
        )
        execution["action"] = record.action
        for step in execution["steps"]:
            step["status"] = step_status_word(step["status"])
        self._outbox.notify(
            workflow=record.name, notifications=notifications, event=event, execution=execution
        )
