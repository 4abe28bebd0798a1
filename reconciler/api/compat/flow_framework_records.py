"""What the flow framework surface keeps and reads in the daemon's state store.

Drafts (templates saved with ``validation=none`` that the repo would reject) live under
one store key, :data:`DRAFTS_KEY`, as ``{workflow_id: {template, problem, saved_by,
saved_at}}``: never in Git, where one invalid file would stop the whole repo from being
applied, and never with a credential value (those are taken out before saving).

A workflow's provisioning state and what its last provision made come from
:mod:`reconciler.daemon.provisioning` (the functions that fill the Workflow's status
file) over the same store, so ``_status`` is as fresh as the store, not as the last
status commit; here they get that API's names (``resources_created`` with
``workflow_step_name``, ``workflow_step_id``, ``resource_type``, ``resource_id``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from reconciler.core.step_types import CATALOGUE
from reconciler.daemon import provisioning
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store

DRAFTS_KEY = "api.flow_framework.drafts"
LIFECYCLE_ACTIONS = ("execute", "deprovision", "delete")
"""Chain actions that provision (execute) or undo a provision."""
PROGRESS = {
    "NOT_STARTED": "NOT_STARTED",
    "PROVISIONING": "IN_PROGRESS",
    "COMPLETED": "DONE",
    "FAILED": "FAILED",
}
_SCAN_LIMIT = 50


# --- drafts ------------------------------------------------------------------------------


def drafts(store: Store) -> dict[str, dict[str, Any]]:
    found = store.get_value(DRAFTS_KEY)
    return dict(found) if isinstance(found, Mapping) else {}


WRITTEN_PREFIX = "flow/written/"
"""State-store keys of when and by whom a workflow was written through this API."""


def save_draft(store: Store, workflow_id: str, draft: dict[str, Any]) -> None:
    saved = drafts(store)
    saved[workflow_id] = draft
    store.set_value(DRAFTS_KEY, saved)


def note_written(store: Store, workflow_id: str, *, by: str, created: bool) -> None:
    """Record that ``by`` created (or updated) the workflow now: GET serves these as
    ``created_time``, ``last_updated_time`` and ``user``, as that API does."""
    now = millis(datetime.datetime.now(datetime.UTC))
    key = f"{WRITTEN_PREFIX}{workflow_id}"
    before = store.get_value(key)
    known = dict(before) if isinstance(before, dict) and not created else {}
    known.setdefault("created_time", now)
    known.setdefault("user", {"name": by})
    known["last_updated_time"] = now
    store.set_value(key, known)


def written(store: Store, workflow_id: str) -> dict[str, Any]:
    """``created_time``, ``last_updated_time`` and ``user`` of a workflow written through
    this API ({} for one written straight to Git)."""
    found = store.get_value(f"{WRITTEN_PREFIX}{workflow_id}")
    return dict(found) if isinstance(found, dict) else {}


def forget_written(store: Store, workflow_id: str) -> None:
    store.set_value(f"{WRITTEN_PREFIX}{workflow_id}", None)


def drop_draft(store: Store, workflow_id: str) -> bool:
    """Forget a draft; False when there was none."""
    saved = drafts(store)
    if saved.pop(workflow_id, None) is None:
        return False
    store.set_value(DRAFTS_KEY, saved)
    return True


# --- provisioning ------------------------------------------------------------------------


def lifecycle(store: Store, workflow_id: str) -> list[ExecutionRecord]:
    """Runs that provision or deprovision the workflow, newest first."""
    records = store.list_executions(kind="Workflow", name=workflow_id, limit=_SCAN_LIMIT)
    return [r for r in records if r.action in LIFECYCLE_ACTIONS and r.status != "superseded"]


def provisioning_state(store: Store, workflow_id: str) -> str:
    return str(provisioning.status_fields(store, workflow_id)["state"])


def millis(moment: datetime.datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


_RESOURCE_KEYS = ("connector_id", "model_id", "endpoint_url")
"""What a step made, as that API names it: a deploy_model's resource is the model_id it
deployed, even where it also gives the endpoint's URL."""


def resources_created(store: Store, workflow_id: str) -> list[dict[str, Any]]:
    """What the last provision made and no deprovision undid, in that API's words."""
    made: list[dict[str, Any]] = []
    steps = provisioning.last_provision_steps(store, workflow_id)
    for step in sorted(steps, key=lambda s: s.position):
        signature = CATALOGUE.get(step.type)
        if step.status != "done" or signature is None or signature.undo is None:
            continue
        outputs = step.outputs or {}
        key = next((k for k in _RESOURCE_KEYS if outputs.get(k)), None)
        made.append(
            {
                "workflow_step_name": step.type,
                "workflow_step_id": step.node_id,
                "resource_type": key,
                "resource_id": str(outputs[key]) if key else None,
            }
        )
    return made


def status_body(store: Store | None, workflow_id: str, *, every: bool) -> dict[str, Any]:
    """``_status`` of a workflow (``store`` None: a draft, never provisioned); ``every``
    (``all=true``) adds ``provisioning_progress`` and the last provision's times."""
    state = provisioning_state(store, workflow_id) if store is not None else "NOT_STARTED"
    runs = lifecycle(store, workflow_id) if store is not None else []
    answer: dict[str, Any] = {"workflow_id": workflow_id, "state": state}
    if state == "FAILED" and runs and runs[0].error:
        answer["error"] = runs[0].error
    if every:
        answer["provisioning_progress"] = PROGRESS[state]
        provisions = [r for r in runs if r.action == "execute"]
        if provisions:
            last = provisions[0]
            answer["provision_start_time"] = millis(last.started_at or last.created_at)
            if last.finished_at is not None:
                answer["provision_end_time"] = millis(last.finished_at)
    answer["resources_created"] = resources_created(store, workflow_id) if store else []
    return answer
