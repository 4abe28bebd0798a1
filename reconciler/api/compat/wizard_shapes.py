"""The model wizards' step bodies and their answer (reference: wizard-api.md),
snake_case as that API has them.

A step body is either a wizard's first step (``workflow_total_steps``, ``step_number`` 1
and that step's fields) or a later one (the ``workflow_id`` the first answered, the step
number and that step's fields, which :mod:`wizard_flows` checks per wizard).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import MISSING, ConfigDict, Field

from reconciler.api.shapes.common import RequestShape, Shape

DRAFT_ID = "^[0-9a-f]{32}$"


class _FirstStep(RequestShape):
    workflow_total_steps: int = Field(ge=1)
    step_number: Literal[1]
    trigger_workflow: Literal[False] | MISSING = MISSING


class _FirstTriggerable(_FirstStep):
    trigger_workflow: bool | MISSING = MISSING  # type: ignore[assignment]


class WizardCloudModelFirst(_FirstStep):
    provider_type: Literal["cloud_model"]


class WizardLocalModelFirst(_FirstStep):
    modality: Literal["llm", "embedding", "reranker", "vision", "audio"]


class WizardDeployFirst(_FirstStep):
    model_id: str = Field(min_length=1)
    project_id: str | MISSING = Field(default=MISSING, min_length=1)


class WizardScanFirst(_FirstTriggerable):
    model_id: str = Field(min_length=1)


class WizardAddWorkerFirst(_FirstTriggerable):
    endpoint_id: str = Field(min_length=1)
    additional_concurrency: int = Field(ge=1)


def _no_total_steps(schema: dict[str, Any]) -> None:
    schema.setdefault("properties", {})["workflow_total_steps"] = False


class WizardLaterStep(RequestShape):
    """A step after the first: the workflow_id the first answered, the step number and
    that step's fields (see wizard-api.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_total_steps)

    workflow_id: str = Field(pattern=DRAFT_ID)
    step_number: int = Field(ge=1)
    trigger_workflow: bool | MISSING = MISSING


def _one_start(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [
        {"required": ["workflow_total_steps"], "not": {"required": ["workflow_id"]}},
        {"required": ["workflow_id"], "not": {"required": ["workflow_total_steps"]}},
    ]


class WizardClusterForm(RequestShape):
    """add-cluster: the first call gives workflow_total_steps, a retry or a later trigger
    the workflow_id; configuration_file is the kubeconfig (a file part)."""

    model_config = ConfigDict(json_schema_extra=_one_start)

    workflow_id: str | MISSING = Field(default=MISSING, pattern=DRAFT_ID)
    workflow_total_steps: str | MISSING = Field(default=MISSING, pattern="^[1-9][0-9]{0,2}$")
    step_number: Literal["1"]
    trigger_workflow: Literal["true", "false"] | MISSING = MISSING
    name: str = Field(
        min_length=1, description="shown as display_name; metadata.name is its DNS-label form"
    )
    icon: str | MISSING = MISSING
    ingress_url: str = Field(min_length=1)
    configuration_file: str = Field(
        description="the kubeconfig; checked as YAML with clusters (else a 422)",
        json_schema_extra={"contentMediaType": "application/yaml"},
    )


class WizardProgress(Shape):
    """Once triggered: the commit and how far the daemon got with the object."""

    object: str
    task_id: str | MISSING = MISSING
    task_status: str | MISSING = MISSING
    commit: str | MISSING = MISSING
    branch: str | MISSING = MISSING
    phase: str | MISSING | None = MISSING
    observed_revision: str | MISSING | None = MISSING
    note: str | MISSING = MISSING


class WizardSteps(Shape):
    """The fields the steps gave, by name, and once triggered the progress."""

    model_config = ConfigDict(extra="allow")

    workflow_execution_status: WizardProgress | MISSING = MISSING
    security_scan_result: dict[str, Any] | MISSING | None = MISSING
    """security-scan: the Model's scan as its status has it (null before the first)."""


class WizardWorkflow(Shape):
    object: Literal["workflow.get"]
    code: int
    message: str
    workflow_id: str
    workflow_type: str
    status: Literal["in_progress", "completed", "failed", "expired"]
    current_step: int
    total_steps: int
    reason: str | None
    workflow_steps: WizardSteps
