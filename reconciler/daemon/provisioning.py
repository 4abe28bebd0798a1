"""A Workflow's provisioning lifecycle, as the flow framework has it: state, resources
made, and their undo when the Workflow leaves Git.

Plan is pure and cannot see what the last provision made, so a Workflow removed without
a ``deprovision`` graph plans one ``undo_provision`` step; here, with the state store at
hand, that step becomes the undo (``CATALOGUE[type].undo``) of every finished step of the
last provision, newest first, each fed that step's inputs and outputs (outputs win), so
the undo of ``create_connector`` gets the ``connector_id`` it made. The expanded chain is
what the executor stores, so a restart resumes it as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from reconciler.core.chain_builders import UNDO_PROVISION
from reconciler.core.chains import Chain, StepNode
from reconciler.core.step_types import CATALOGUE
from reconciler.engine.records import ExecutionRecord, StepRecord
from reconciler.engine.store import Store

ProvisioningState = Literal["NOT_STARTED", "PROVISIONING", "FAILED", "COMPLETED"]

RESOURCE_KEYS = ("endpoint_url", "connector_id", "model_id")
"""Outputs naming what a step made, most specific first (a deployment's endpoint before
the model it serves)."""
_SCAN_LIMIT = 50
_STATE_OF_STATUS: dict[str, ProvisioningState] = {
    "queued": "PROVISIONING",
    "running": "PROVISIONING",
    "succeeded": "COMPLETED",
    "failed": "FAILED",
    "stalled": "FAILED",
    "cancelled": "FAILED",
}


def _provisions(store: Store, name: str) -> list[ExecutionRecord]:
    records = store.list_executions(kind="Workflow", name=name, limit=_SCAN_LIMIT)
    return [record for record in records if record.action == "execute"]


def provisioning_state(records: Sequence[ExecutionRecord]) -> ProvisioningState:
    """The state of the newest provision run that was not replaced by a newer one."""
    for record in records:
        if record.action != "execute" or record.status == "superseded":
            continue
        return _STATE_OF_STATUS.get(record.status, "NOT_STARTED")
    return "NOT_STARTED"


def resource_id(outputs: Mapping[str, Any]) -> str | None:
    for key in RESOURCE_KEYS:
        value = outputs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def created_resources(steps: Sequence[StepRecord]) -> list[dict[str, Any]]:
    """What the finished steps of one run made: step types that have an undo."""
    made: list[dict[str, Any]] = []
    for step in sorted(steps, key=lambda s: s.position):
        signature = CATALOGUE.get(step.type)
        if step.status != "done" or signature is None or signature.undo is None:
            continue
        made_id = resource_id(step.outputs or {})
        made.append({"step": step.node_id, "type": step.type, "resource_id": made_id})
    return made


def last_provision_steps(store: Store, name: str) -> list[StepRecord]:
    """The steps of the newest provision run that finished at least one step."""
    for record in _provisions(store, name):
        steps = store.get_steps(record.id)
        if any(step.status == "done" for step in steps):
            return steps
    return []


def status_fields(store: Store, name: str) -> dict[str, Any]:
    """``state`` and ``resources_created`` for a Workflow's status file."""
    return {
        "state": provisioning_state(_provisions(store, name)),
        "resources_created": created_resources(last_provision_steps(store, name)),
    }


def undo_steps(steps: Sequence[StepRecord], *, retries: int, retry_delay: float) -> list[StepNode]:
    """The undo of every finished step that has one, the last finished first, in a line."""
    done = [s for s in steps if s.status == "done"]
    done.sort(key=lambda s: (s.finished_at is not None, s.finished_at, s.position), reverse=True)
    nodes: list[StepNode] = []
    for step in done:
        signature = CATALOGUE.get(step.type)
        if signature is None or signature.undo is None:
            continue
        inputs = {**dict(step.inputs or {}), **dict(step.outputs or {})}
        inputs.pop("status", None)  # a status report of the step, not an input of its undo
        nodes.append(
            StepNode(
                id=f"undo_{step.node_id}",
                type=signature.undo,
                inputs=inputs,
                after=(nodes[-1].id,) if nodes else (),
                retries=retries,
                retry_delay=retry_delay,
            )
        )
    return nodes


def expand_undo(chain: Chain, store: Store) -> Chain:
    """``chain`` with its ``undo_provision`` step replaced by the undo steps it stands for
    (no steps: nothing was made, the chain succeeds at once); other chains unchanged."""
    if chain.kind != "Workflow" or chain.action != "delete":
        return chain
    if [step.type for step in chain.steps] != [UNDO_PROVISION]:
        return chain
    first = chain.steps[0]
    steps = undo_steps(
        last_provision_steps(store, chain.name),
        retries=first.retries,
        retry_delay=first.retry_delay,
    )
    return dataclasses.replace(chain, steps=tuple(steps))
