"""The wizard flows (reference: wizard-api.md) as data: which fields each step takes.

A wizard is a draft filled step by step (``workflow_total_steps`` on the first call,
``workflow_id`` after, ``step_number`` each time) until a step sets
``trigger_workflow``. Each flow lists its steps with the fields of each and which of them
must be present; :func:`check_step` refuses a step out of order or a field that belongs
to another step (or to no step) with a 422 naming it. Pure: no I/O, no daemon.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from reconciler.api.problems import Unprocessable

COMMON_FIELDS = ("workflow_id", "workflow_total_steps", "step_number", "trigger_workflow")
"""Fields every step may carry; the others belong to one step of one flow."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One screen of a wizard: the fields it takes and those it must carry."""

    number: int
    fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Flow:
    """A wizard: its name (as the reference titles it) and its steps in order."""

    name: str
    steps: tuple[Step, ...]

    def step(self, number: int) -> Step | None:
        return next((s for s in self.steps if s.number == number), None)

    def owner_of(self, field: str) -> Step | None:
        return next((s for s in self.steps if field in s.fields), None)

    @property
    def numbers(self) -> str:
        return ", ".join(str(s.number) for s in self.steps)


ADD_CLOUD_MODEL = Flow(
    "add-cloud-model",
    (
        Step(1, ("provider_type",), ("provider_type",)),
        Step(2, ("provider_id",), ("provider_id",)),
        Step(3, ("cloud_model_id",), ("cloud_model_id",)),
        Step(4, ("name", "tags", "modality", "uri"), ("name", "modality")),
    ),
)
ADD_LOCAL_MODEL = Flow(
    "add-local-model",
    (
        Step(1, ("modality",), ("modality",)),
        Step(2, ("provider_type",), ("provider_type",)),
        Step(3, ("name", "uri", "author", "tags", "icon", "sha256"), ("name", "uri")),
        Step(4, ("proprietary_credential_id",)),
    ),
)
DEPLOY_CLOUD_MODEL = Flow(
    "deploy-cloud-model",
    (
        Step(1, ("project_id", "model_id"), ("model_id",)),
        Step(2, ("credential_id",), ("credential_id",)),
        Step(3, ("template_id",)),
        Step(4, ("endpoint_name", "deploy_config"), ("endpoint_name", "deploy_config")),
        Step(6, ("cluster_id",)),
    ),
)
DEPLOY_LOCAL_MODEL = Flow(
    "deploy-local-model",
    (
        Step(1, ("project_id", "model_id"), ("model_id",)),
        Step(2, ("template_id",)),
        Step(3, ("endpoint_name", "deploy_config"), ("endpoint_name", "deploy_config")),
        Step(5, ("cluster_id",), ("cluster_id",)),
    ),
)
SECURITY_SCAN = Flow("security-scan", (Step(1, ("model_id",), ("model_id",)),))
ADD_WORKER = Flow(
    "add-worker",
    (
        Step(
            1, ("endpoint_id", "additional_concurrency"), ("endpoint_id", "additional_concurrency")
        ),
        Step(3),
    ),
)
ADD_CLUSTER = Flow(
    "add-cluster",
    (
        Step(
            1,
            ("name", "icon", "ingress_url", "configuration_file"),
            ("name", "ingress_url", "configuration_file"),
        ),
    ),
)
FLOWS: Mapping[str, Flow] = {
    f.name: f
    for f in (
        ADD_CLOUD_MODEL,
        ADD_LOCAL_MODEL,
        DEPLOY_CLOUD_MODEL,
        DEPLOY_LOCAL_MODEL,
        SECURITY_SCAN,
        ADD_WORKER,
        ADD_CLUSTER,
    )
}


@dataclasses.dataclass(frozen=True)
class StepRequest:
    """The common fields of one step call, checked."""

    workflow_id: str | None
    total_steps: int | None
    number: int
    trigger: bool
    fields: dict[str, Any]


def whole_number(value: object, field: str, *, low: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``low`` (JSON's 3.0 is one); else 422."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise Unprocessable(f"{field}: expected a whole number of at least {low}")
    return value


def read_request(body: Mapping[str, Any]) -> StepRequest:
    """The common fields of a step body; 422 naming the first that is wrong."""
    workflow_id = body.get("workflow_id")
    total = body.get("workflow_total_steps")
    if "step_number" not in body:
        raise Unprocessable("step_number: every step names its step_number")
    number = whole_number(body["step_number"], "step_number")
    trigger = body.get("trigger_workflow", False)
    if not isinstance(trigger, bool):
        raise Unprocessable("trigger_workflow: expected true or false")
    if workflow_id is None:
        if total is None:
            raise Unprocessable(
                "workflow_total_steps: the first step of a wizard gives workflow_total_steps "
                "(later steps give the workflow_id it answered)"
            )
        total = whole_number(total, "workflow_total_steps")
        if number > total:
            raise Unprocessable(
                f"step_number: step {number} is past workflow_total_steps ({total})"
            )
    else:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise Unprocessable("workflow_id: expected the id the first step answered")
        if total is not None:
            raise Unprocessable(
                "workflow_total_steps: given on the first step only; this step names a workflow_id"
            )
    fields = {k: v for k, v in body.items() if k not in COMMON_FIELDS}
    return StepRequest(workflow_id, total, number, trigger, fields)


def check_step(
    flow: Flow, request: StepRequest, *, done: Mapping[int, tuple[str, ...]], current: int
) -> Step:
    """The step ``request`` fills, if it may come now with these fields; else a 422.

    ``done`` maps the steps already given to their fields, ``current`` is the last one.
    A step may be given again (a retry), never one before the last; a step may be skipped
    only when it has no required field.
    """
    step = flow.step(request.number)
    if step is None:
        raise Unprocessable(
            f"step_number: {flow.name} has no step {request.number} (its steps: {flow.numbers})"
        )
    if request.number < current:
        raise Unprocessable(
            f"step_number: step {request.number} comes before step {current}, which this "
            f"{flow.name} workflow has reached"
        )
    for earlier in flow.steps:
        if earlier.number >= request.number:
            break
        if earlier.required and earlier.number not in done:
            raise Unprocessable(
                f"step_number: step {request.number} of {flow.name} comes after step "
                f"{earlier.number}, which has not been given ({earlier.required[0]} is missing)"
            )
    for field in request.fields:
        if field in step.fields:
            continue
        owner = flow.owner_of(field)
        if owner is not None:
            raise Unprocessable(
                f"{field}: this field belongs to step {owner.number} of {flow.name}, "
                f"not step {step.number}"
            )
        raise Unprocessable(f"{field}: {flow.name} has no field {field!r}")
    for field in step.required:
        if field not in request.fields:
            raise Unprocessable(f"{field}: step {step.number} of {flow.name} needs {field}")
    return step


def missing_for_trigger(flow: Flow, gathered: Mapping[str, Any]) -> str | None:
    """The first required field no step has given yet, or None when the flow can run."""
    for step in flow.steps:
        for field in step.required:
            if field not in gathered:
                return field
    return None
