"""Why an object is where it is: ``reconciler explain KIND/NAME`` and its API route.

For one object: its verdict (phase, reason, message) and what the user can do about that
reason (reconciler.core.reasons); what it waits for, and what that waits for in turn,
each with its own verdict; and its last execution's steps with their status, error and
the tail of their log. Built from what the daemon knows now, ahead of the next status
commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.reasons import advice
from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.status_view import StatusView
from reconciler.engine.store import Store

LOG_TAIL_LINES = 15
MAX_DEPTH = 6


def explain(
    key: str, *, view: StatusView, book: ObjectBook, deps: DependencyIndex, store: Store
) -> dict[str, Any] | None:
    """The explanation of ``kind/name`` as JSON values; None if the daemon knows no such
    object."""
    status = view.status_of(key)
    if status is None:
        return None
    answer = _verdict(key, status)
    answer["waits_for"] = _waits(key, view=view, deps=deps, seen={key}, depth=1)
    answer["last_execution"] = _last_execution(key, book=book, store=store)
    return answer


def _verdict(key: str, status: Mapping[str, Any]) -> dict[str, Any]:
    reason = str(status.get("reason") or "")
    return {
        "object": key,
        "phase": status.get("phase"),
        "reason": reason,
        "message": status.get("message"),
        "what_to_do": _advice(status),
    }


def _advice(status: Mapping[str, Any]) -> str | None:
    phase, reason = status.get("phase"), str(status.get("reason") or "")
    if phase == "Ready":
        return None
    return advice(reason)


def _waits(
    key: str, *, view: StatusView, deps: DependencyIndex, seen: set[str], depth: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for target in sorted(deps.waiting_on(key)):
        status = view.status_of(target) or {"phase": None, "reason": "Unknown", "message": ""}
        item = _verdict(target, status)
        if target in seen or depth >= MAX_DEPTH:
            item["waits_for"] = []
        else:
            item["waits_for"] = _waits(
                target, view=view, deps=deps, seen={*seen, target}, depth=depth + 1
            )
        found.append(item)
    return found


def _last_execution(key: str, *, book: ObjectBook, store: Store) -> dict[str, Any] | None:
    record = book.latest(key)
    if record is None:
        return None
    steps = []
    for step in store.get_steps(record.id):
        lines = step.logs.splitlines()
        steps.append(
            {
                "id": step.node_id,
                "type": step.type,
                "status": "succeeded" if step.status == "done" else step.status,
                "attempts": step.attempts,
                "error": step.error,
                "log_tail": lines[-LOG_TAIL_LINES:],
            }
        )
    return {
        "id": record.id,
        "action": record.action,
        "trigger": record.trigger,
        "revision": record.revision,
        "status": record.status,
        "error": record.error,
        "steps": steps,
    }
