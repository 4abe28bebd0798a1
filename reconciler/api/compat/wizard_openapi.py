"""The OpenAPI paths and schemas of the model wizards (snake_case, as that API has them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}

_ID = {"type": "string", "minLength": 1}
_TOTAL = {"type": "integer", "minimum": 1}
_DRAFT_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def _first(fields: dict[str, Any], required: list[str], *, trigger: bool) -> dict[str, Any]:
    """The first step of a wizard: workflow_total_steps, step 1 and its own fields."""
    return {
        "type": "object",
        "required": ["workflow_total_steps", "step_number", *required],
        "properties": {
            "workflow_total_steps": _TOTAL,
            "step_number": {"const": 1},
            "trigger_workflow": {"type": "boolean"} if trigger else {"const": False},
            **fields,
        },
        "additionalProperties": False,
    }


def _step_body(first: str) -> dict[str, Any]:
    return {"oneOf": [_ref(first), _ref("WizardLaterStep")]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "WizardLaterStep": {
        "type": "object",
        "description": "A step after the first: the workflow_id the first answered, the step "
        "number and that step's fields (see wizard-api.md)",
        "required": ["workflow_id", "step_number"],
        "properties": {
            "workflow_id": _DRAFT_ID,
            "step_number": {"type": "integer", "minimum": 1},
            "trigger_workflow": {"type": "boolean"},
            "workflow_total_steps": False,
        },
        "additionalProperties": True,
    },
    "WizardCloudModelFirst": _first(
        {"provider_type": {"const": "cloud_model"}}, ["provider_type"], trigger=False
    ),
    "WizardLocalModelFirst": _first(
        {"modality": {"enum": ["llm", "embedding", "reranker", "vision", "audio"]}},
        ["modality"],
        trigger=False,
    ),
    "WizardDeployFirst": _first({"model_id": _ID, "project_id": _ID}, ["model_id"], trigger=False),
    "WizardScanFirst": _first({"model_id": _ID}, ["model_id"], trigger=True),
    "WizardAddWorkerFirst": _first(
        {"endpoint_id": _ID, "additional_concurrency": {"type": "integer", "minimum": 1}},
        ["endpoint_id", "additional_concurrency"],
        trigger=True,
    ),
    "WizardClusterForm": {
        "type": "object",
        "description": "add-cluster: the first call gives workflow_total_steps, a retry or a "
        "later trigger the workflow_id; configuration_file is the kubeconfig (a file part)",
        "required": ["step_number", "name", "ingress_url", "configuration_file"],
        "properties": {
            "workflow_id": _DRAFT_ID,
            "workflow_total_steps": {"type": "string", "pattern": "^[1-9][0-9]{0,2}$"},
            "step_number": {"const": "1"},
            "trigger_workflow": {"enum": ["true", "false"]},
            "name": {
                "type": "string",
                "minLength": 1,
                "description": "shown as display_name; metadata.name is its DNS-label form",
            },
            "icon": {"type": "string"},
            "ingress_url": {"type": "string", "minLength": 1},
            "configuration_file": {
                "type": "string",
                "contentMediaType": "application/yaml",
                "description": "the kubeconfig; checked as YAML with clusters (else a 422)",
            },
        },
        "oneOf": [
            {"required": ["workflow_total_steps"], "not": {"required": ["workflow_id"]}},
            {"required": ["workflow_id"], "not": {"required": ["workflow_total_steps"]}},
        ],
        "additionalProperties": False,
    },
    "WizardWorkflow": {
        "type": "object",
        "required": [
            "object",
            "code",
            "message",
            "workflow_id",
            "workflow_type",
            "status",
            "current_step",
            "total_steps",
            "reason",
            "workflow_steps",
        ],
        "properties": {
            "object": {"const": "workflow.get"},
            "code": {"type": "integer"},
            "message": _S,
            "workflow_id": _S,
            "workflow_type": _S,
            "status": {"enum": ["in_progress", "completed", "failed", "expired"]},
            "current_step": {"type": "integer"},
            "total_steps": {"type": "integer"},
            "reason": _NS,
            "workflow_steps": {
                "type": "object",
                "properties": {
                    "workflow_execution_status": {
                        "type": "object",
                        "properties": {
                            "object": _S,
                            "task_id": _S,
                            "task_status": _S,
                            "commit": _S,
                            "branch": _S,
                            "phase": _NS,
                            "observed_revision": _NS,
                            "note": _S,
                        },
                    },
                },
            },
        },
    },
}

_STEP_ROUTES = {
    "/models/cloud-model-workflow": ("Wizard: a step of add-cloud-model", "WizardCloudModelFirst"),
    "/models/local-model-workflow": ("Wizard: a step of add-local-model", "WizardLocalModelFirst"),
    "/models/deploy-workflow": (
        "Wizard: a step of deploy-cloud-model or deploy-local-model (by the Model's source)",
        "WizardDeployFirst",
    ),
    "/models/security-scan": ("Wizard: security-scan of a Model", "WizardScanFirst"),
    "/endpoints/add-worker": (
        "Wizard: add-worker (more concurrency for a Deployment)",
        "WizardAddWorkerFirst",
    ),
}


def paths(
    *,
    json: Callable[[str, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    path: Callable[[str], dict[str, Any]],
    read: list[dict[str, list[str]]],
) -> dict[str, Any]:
    step_errors = errors(401, 403, 404, 409, 413, 422, 503)

    def body(schema: dict[str, Any], content_type: str) -> dict[str, Any]:
        return {"required": True, "content": {content_type: {"schema": schema}}}

    served: dict[str, Any] = {
        route: {
            "post": {
                "summary": summary + "; the triggering step commits the spec",
                "security": read,
                "x-role": "editor",
                "requestBody": body(_step_body(first), "application/json"),
                "responses": {"200": json("WizardWorkflow", "the workflow"), **step_errors},
            }
        }
        for route, (summary, first) in _STEP_ROUTES.items()
    }
    served["/clusters/clusters"] = {
        "post": {
            "summary": "Wizard: add-cluster, a multipart form; the kubeconfig goes to the "
            "secret store, never to Git",
            "security": read,
            "x-role": "editor",
            "requestBody": body(_ref("WizardClusterForm"), "multipart/form-data"),
            "responses": {"200": json("WizardWorkflow", "the workflow"), **step_errors},
        }
    }
    served["/workflows/{workflow_id}"] = {
        "get": {
            "summary": "Wizard: a workflow's steps and, once triggered, its reconcile",
            "security": read,
            "parameters": [path("workflow_id")],
            "responses": {
                "200": json("WizardWorkflow", "the workflow"),
                **errors(401, 403, 404),
            },
        }
    }
    return served
