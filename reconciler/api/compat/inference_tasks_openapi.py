"""The OpenAPI paths and schemas of the inference deployment tasks surface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.api.compat.inference_tasks import DEPLOYMENT_FIELDS

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "InferenceDeployRequest": {
        "type": "object",
        "required": ["model_id", "config"],
        "additionalProperties": False,
        "properties": {
            "model_id": {"type": "string", "minLength": 1, "description": "a Model's name"},
            "config": {
                "type": "object",
                "required": ["deploy_config"],
                "additionalProperties": False,
                "description": "the Deployment's spec fields, and its name (default: model_id)",
                "properties": {
                    "name": _S,
                    **{field: {} for field in DEPLOYMENT_FIELDS},
                    "deploy_config": {"type": "object"},
                },
            },
        },
    },
    "InferenceDeleteRequest": {
        "type": "object",
        "required": ["model_id"],
        "additionalProperties": False,
        "properties": {
            "model_id": {"type": "string", "minLength": 1},
            "name": {"type": "string", "description": "which Deployment, when it has several"},
        },
    },
    "InferenceTask": {
        "type": "object",
        "required": ["task_id", "model_id", "status", "metadata"],
        "properties": {
            "task_id": _S,
            "model_id": _S,
            "status": {"enum": ["pending", "processing", "done", "failed"]},
            "metadata": {
                "type": "object",
                "properties": {
                    "deployment": _S,
                    "requested_by": _S,
                    "write_task_id": _S,
                    "commit": _NS,
                    "branch": _NS,
                    "path": _NS,
                    "endpoint_url": _NS,
                    "error": _S,
                },
            },
        },
    },
}


def paths(
    *,
    json: Callable[[str, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    path: Callable[[str], dict[str, Any]],
    read: list[dict[str, list[str]]],
) -> dict[str, Any]:
    def body(schema: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{schema}"}
        return {"required": True, "content": {"application/json": {"schema": ref}}}

    def write(summary: str, schema: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "security": read,
                "x-role": "editor",
                "requestBody": body(schema),
                "responses": {
                    "202": json("InferenceTask", "committed; the task follows the reconcile"),
                    **errors(401, 403, 404, 409, 413, 422, 503),
                },
            }
        }

    def one(summary: str, parameter: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "security": read,
                "parameters": [path(parameter)],
                "responses": {
                    "200": json("InferenceTask", "the task"),
                    **errors(401, 403, 404, 503),
                },
            }
        }

    return {
        "/deploy": write(
            "Inference tasks: deploy a Model (a Deployment committed to Git)",
            "InferenceDeployRequest",
        ),
        "/deploy/{task_id}": one("Inference tasks: one deployment task", "task_id"),
        "/deploy-status/{model_id}": one(
            "Inference tasks: a model's latest deployment task", "model_id"
        ),
        "/delete": write(
            "Inference tasks: delete a Model's Deployment (a Git commit)", "InferenceDeleteRequest"
        ),
        "/delete/{task_id}": one("Inference tasks: one deletion task", "task_id"),
        "/delete-status/{model_id}": one(
            "Inference tasks: a model's latest deletion task", "model_id"
        ),
    }
