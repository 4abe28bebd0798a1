"""A Workflow's provisioning lifecycle, as the flow framework has it: state, resources
made, and their undo when the Workflow leaves Git.

Plan is pure and cannot see what the last provision made, so a Workflow removed without
a ``deprovision`` graph plans one ``undo_provision`` step; here, with the state store at
hand, that step becomes the undo (``CATALOGUE[type].undo``) of every finished step of the
last provision, newest first, each fed that step's inputs and those of its outputs the
undo declares as inputs (outputs win), so the undo of ``create_connector`` gets the
``connector_id`` it made. The expanded chain is what the executor stores, so a restart
resumes it as it is.

A deprovision on request (chain action ``deprovision``, the Workflow staying in Git) is
expanded the same way. The provisioning state follows the newest run that provisions or
deprovisions: a succeeded deprovision (or undo on removal) reads NOT_STARTED with nothing
in ``resources_created``; one that failed part-way leaves the steps it did not undo, and
a second request undoes only those.

What a Workflow made is its own: a Deployment or Model of the same name leaving Git
(which would prune it) runs no step while a Workflow's provision made it and no
deprovision has undone it (:func:`keep_owned`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from reconciler.core.chain_builders import UNDO_PROVISION
from reconciler.core.chains import Chain, StepNode
from reconciler.core.step_types import CATALOGUE
from reconciler.engine.records import ExecutionRecord, StepRecord
from reconciler.engine.store import Store

log = logging.getLogger("reconciler.daemon.provisioning")

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


_DEPROVISIONS = ("deprovision", "delete")
_LIFECYCLE = ("execute", *_DEPROVISIONS)


class NothingProvisioned(ValueError):
    """A deprovision asked for while no provision has run since the last deprovision."""


def _lifecycle_records(store: Store, name: str) -> list[ExecutionRecord]:
    """Runs that provision or deprovision Workflow ``name``, newest first."""
    records = store.list_executions(kind="Workflow", name=name, limit=_SCAN_LIMIT)
    return [r for r in records if r.action in _LIFECYCLE and r.status != "superseded"]


def provisioning_state(records: Sequence[ExecutionRecord]) -> ProvisioningState:
    """The state the newest provision or deprovision run leaves (superseded ones aside):
    a provision's by its status; a deprovision running reads PROVISIONING, succeeded
    NOT_STARTED, failed or cancelled FAILED (some of what was made may remain)."""
    for record in records:
        if record.status == "superseded" or record.action not in _LIFECYCLE:
            continue
        if record.action in _DEPROVISIONS and record.status == "succeeded":
            return "NOT_STARTED"
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
    """The finished steps of the newest provision run that finished any, less those a
    later deprovision has undone (all of them once one succeeded)."""
    undone: set[str] = set()
    for record in _lifecycle_records(store, name):
        steps = store.get_steps(record.id)
        if record.action in _DEPROVISIONS:
            if record.status == "succeeded":
                return []
            undone.update(s.node_id for s in steps if s.status == "done")
            continue
        if any(step.status == "done" for step in steps):
            return [s for s in steps if f"undo_{s.node_id}" not in undone]
    return []


def status_fields(store: Store, name: str) -> dict[str, Any]:
    """``state`` and ``resources_created`` for a Workflow's status file."""
    return {
        "state": provisioning_state(_lifecycle_records(store, name)),
        "resources_created": created_resources(last_provision_steps(store, name)),
    }


def provision_params(store: Store, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` (spec.user_params) with the params the newest provision ran with, so
    a deprovision graph names what that run made; params no longer declared are left
    out."""
    for record in _lifecycle_records(store, name):
        if record.action == "execute":
            given = {k: v for k, v in record.params.items() if k in defaults}
            return {**defaults, **given}
    return dict(defaults)


_OWNED_BY_STEP: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "deploy_model": ("Deployment", (("inputs", "deployment"),)),
    "add_model": ("Model", (("outputs", "model_id"), ("inputs", "model"))),
    "register_local_pretrained_model": ("Model", (("outputs", "model_id"),)),
}
"""Step types whose finished step made an object of a kind the object reconciler also
manages, and where its name is (the first of these fields that holds one)."""


def owned_objects(steps: Sequence[StepRecord]) -> dict[str, str]:
    """``kind/name`` of each object the finished ``steps`` made, to the node that made it."""
    owned: dict[str, str] = {}
    for step in steps:
        found = _OWNED_BY_STEP.get(step.type)
        if step.status != "done" or found is None:
            continue
        kind, places = found
        values = {"inputs": step.inputs or {}, "outputs": step.outputs or {}}
        for where, field in places:
            name = values[where].get(field)
            if isinstance(name, str) and name:
                owned.setdefault(f"{kind}/{name}", step.node_id)
                break
    return owned


def owner_of(store: Store, key: str, workflows: Iterable[str]) -> tuple[str, str] | None:
    """The Workflow (``Workflow/name``) and node that made object ``key`` and still own it
    (its provision made it and no deprovision has undone it); None when none does."""
    for name in workflows:
        node = owned_objects(last_provision_steps(store, name)).get(key)
        if node is not None:
            return f"Workflow/{name}", node
    return None


def may_be_owned(chain: Chain) -> bool:
    """Whether ``chain`` is a prune a Workflow's ownership could stop (see keep_owned)."""
    return chain.action == "delete" and chain.kind in ("Deployment", "Model")


def keep_owned(chain: Chain, store: Store, workflows: Iterable[str]) -> Chain:
    """A delete (a prune: the object left Git) of a Deployment or Model that a Workflow
    made and owns runs no step: what the workflow made goes only with its deprovision or
    undo. Other chains unchanged."""
    if not may_be_owned(chain):
        return chain
    owner = owner_of(store, chain.object_key, workflows)
    if owner is None:
        return chain
    workflow, node = owner
    log.warning(
        "%s left Git but is kept: %s made it (node %s) and owns it; its deprovision "
        "removes it",
        chain.object_key,
        workflow,
        node,
        extra={"object": chain.object_key, "owner": workflow, "node": node},
    )
    return dataclasses.replace(chain, steps=())


def deprovision_chain(chain: Chain, store: Store) -> Chain:
    """A ``deprovision`` chain as it is to be submitted: the undo spelled out and the
    params of the last provision; NothingProvisioned when there is nothing to undo."""
    if provisioning_state(_lifecycle_records(store, chain.name)) == "NOT_STARTED":
        raise NothingProvisioned(
            f"Workflow {chain.name!r} has nothing provisioned (state NOT_STARTED): no "
            "provision has run since the last deprovision"
        )
    params = provision_params(store, chain.name, chain.params)
    return expand_undo(dataclasses.replace(chain, params=params), store)


def undo_steps(steps: Sequence[StepRecord], *, retries: int, retry_delay: float) -> list[StepNode]:
    """The undo of every finished step that has one, the last finished first, in a line."""
    done = [s for s in steps if s.status == "done"]
    done.sort(key=lambda s: (s.finished_at is not None, s.finished_at, s.position), reverse=True)
    nodes: list[StepNode] = []
    for step in done:
        signature = CATALOGUE.get(step.type)
        if signature is None or signature.undo is None:
            continue
        # Only outputs the undo takes by name (the connector_id a create_connector made):
        # a spec-taking undo (undeploy_model validates a Deployment spec) refuses a
        # report such as endpoint_url.
        undo = CATALOGUE.get(signature.undo)
        takes = undo.inputs if undo is not None else frozenset()
        given = {k: v for k, v in (step.outputs or {}).items() if k in takes}
        inputs = {**dict(step.inputs or {}), **given}
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


def _deprovisioned_on_request(store: Store, name: str) -> bool:
    """Whether the newest provision or deprovision of ``name`` is a deprovision on
    request that succeeded."""
    newest = next(iter(_lifecycle_records(store, name)), None)
    return newest is not None and newest.action == "deprovision" and newest.status == "succeeded"


def expand_undo(chain: Chain, store: Store) -> Chain:
    """``chain`` with its ``undo_provision`` step replaced by the undo steps it stands for
    (no steps: nothing was made, the chain succeeds at once). A removed Workflow that a
    deprovision on request already took down runs no step, not even its deprovision
    graph: nothing is left for it. Other chains unchanged."""
    if chain.kind != "Workflow" or chain.action not in _DEPROVISIONS:
        return chain
    if chain.action == "delete" and _deprovisioned_on_request(store, chain.name):
        return dataclasses.replace(chain, steps=())
    if [step.type for step in chain.steps] != [UNDO_PROVISION]:
        return chain
    first = chain.steps[0]
    steps = undo_steps(
        last_provision_steps(store, chain.name),
        retries=first.retries,
        retry_delay=first.retry_delay,
    )
    return dataclasses.replace(chain, steps=tuple(steps))
