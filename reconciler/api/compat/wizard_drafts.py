"""Wizard drafts in the state store, so a daemon restart keeps them, and their expiry.

A draft is an API task of kind ``wizard``: its payload says the flow, the total steps the
first call announced and who started it; its result holds the steps given so far and
their fields (``data``), and once triggered the write it made and the object it follows.
Statuses: ``in_progress`` (being filled), ``committing`` (its trigger is writing),
``committed`` (triggered; the reconcile is followed), ``completed``, ``failed``,
``expired``. A draft nobody has touched for ``ttl_s`` (default a day; no config needed)
expires: its fields are dropped and it takes no more steps. The clock is injectable so
tests move time instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from reconciler.api.problems import Conflict, NotFound
from reconciler.engine.records import ApiTaskRecord
from reconciler.engine.store import Store

API_TASK_WIZARD = "wizard"
DEFAULT_TTL_S = 24 * 3600.0
"""How long an untriggered draft lives after its last step."""


class Drafts:
    """Create, read, fill and expire drafts; ``clock`` gives seconds since the epoch."""

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_expired: Callable[[Mapping[str, Any]], object] | None = None
        """Told the fields of each draft as it expires (what it stored outside can go)."""

    def _stale(self, task: ApiTaskRecord) -> bool:
        return task.status == "in_progress" and (
            self.clock() - task.updated_at.timestamp() > self.ttl_s
        )

    def _expire(self, store: Store, task: ApiTaskRecord) -> ApiTaskRecord:
        result = task.result or {}
        if self.on_expired is not None:
            self.on_expired(gathered(task))
        kept = {
            "current_step": result.get("current_step", 0),
            "reason": f"expired: not triggered within {int(self.ttl_s)} s of its last step",
        }
        return store.update_api_task(task.id, status="expired", result=kept)

    def expire_stale(self, store: Store) -> int:
        """Expire every draft past its time; how many."""
        stale = [t for t in store.list_api_tasks(kind=API_TASK_WIZARD, status="in_progress")
                 if self._stale(t)]  # fmt: skip
        for task in stale:
            self._expire(store, task)
        return len(stale)

    def find(self, store: Store, workflow_id: str) -> ApiTaskRecord:
        """The draft ``workflow_id`` (expired now if its time is up); 404 when unknown."""
        task = store.get_api_task(workflow_id)
        if task is None or task.kind != API_TASK_WIZARD:
            raise NotFound(f"no wizard workflow {workflow_id!r}")
        return self._expire(store, task) if self._stale(task) else task

    def open_for_step(self, store: Store, workflow_id: str, flow: str) -> ApiTaskRecord:
        """The draft a step continues; 409 once it was triggered or expired, 422 for
        another flow's draft."""
        task = self.find(store, workflow_id)
        if task.payload.get("flow") != flow and not (
            str(task.payload.get("flow", "")).startswith("deploy-") and flow.startswith("deploy-")
        ):
            raise Conflict(
                f"workflow_id: {workflow_id!r} is a {task.payload.get('flow')} workflow, not {flow}"
            )
        if task.status == "expired":
            raise Conflict(
                f"workflow_id: {workflow_id!r} expired before it was triggered; start again "
                "with workflow_total_steps"
            )
        if task.status != "in_progress":
            raise Conflict(f"workflow_id: {workflow_id!r} was already triggered ({task.status})")
        return task

    def create(self, store: Store, *, flow: str, total_steps: int, by: str) -> ApiTaskRecord:
        return store.create_api_task(
            kind=API_TASK_WIZARD,
            payload={"flow": flow, "total_steps": total_steps, "requested_by": by},
            status="in_progress",
        )

    @staticmethod
    def save(
        store: Store,
        task: ApiTaskRecord,
        *,
        step: int,
        fields: Mapping[str, Any],
        status: str = "in_progress",
        extra: Mapping[str, Any] | None = None,
    ) -> ApiTaskRecord:
        """Record step ``step`` with ``fields`` (merged over what earlier steps gave)."""
        result = dict(task.result or {})
        steps = {str(k): list(v) for k, v in dict(result.get("steps") or {}).items()}
        steps[str(step)] = sorted(fields)
        data = {**dict(result.get("data") or {}), **fields}
        result.update(current_step=step, steps=steps, data=data, **dict(extra or {}))
        return store.update_api_task(task.id, status=status, result=result)


def done_steps(task: ApiTaskRecord) -> dict[int, tuple[str, ...]]:
    steps = (task.result or {}).get("steps") or {}
    return {int(k): tuple(v) for k, v in steps.items()}


def gathered(task: ApiTaskRecord) -> dict[str, Any]:
    return dict((task.result or {}).get("data") or {})


WIZARD_DRAFTS = web.AppKey("wizard_drafts", Drafts)
