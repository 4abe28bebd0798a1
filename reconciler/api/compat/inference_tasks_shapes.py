"""The inference deployment tasks' request and answer bodies (reference:
inference-deployment-tasks.md: ModelDeploymentRequest, ModelDeploymentResponse and their
deletion twins)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import MISSING, Field

from reconciler.api.shapes.common import RequestShape, Shape


class InferenceDeployConfig(RequestShape):
    """The Deployment's spec fields, and its name (default: model_id)."""

    name: str | MISSING = MISSING
    project: Any = MISSING
    cluster: Any = MISSING
    template: Any = MISSING
    credential: Any = MISSING
    endpoint_name: Any = MISSING
    strategy: Any = MISSING
    deploy_config: dict[str, Any]
    workers: Any = MISSING
    suspend: Any = MISSING


DEPLOYMENT_FIELDS = tuple(name for name in InferenceDeployConfig.model_fields if name != "name")
"""The Deployment spec fields ``config`` may set (``model`` comes from ``model_id``); the
Deployment spec checks their values."""


class InferenceDeployRequest(RequestShape):
    model_id: str = Field(min_length=1, description="a Model's name")
    config: InferenceDeployConfig


class InferenceDeleteRequest(RequestShape):
    unknown_field = "field {field!r} has no place in a Deployment; this takes model_id, name"
    problems = {
        "model_id": "model_id: expected the name of a Model",
        "name": "name: expected a Deployment's name",
    }

    model_id: str = Field(min_length=1)
    name: str | None = Field(default=None, description="which Deployment, when it has several")


class InferenceTaskMetadata(Shape):
    deployment: str
    """The Deployment the task commits (or removes)."""
    requested_by: str
    write_task_id: str
    """The write task of its commit (GET /api/v1/tasks/{id})."""
    commit: str | None
    branch: str | None
    path: str | None
    endpoint_url: str | MISSING | None = MISSING
    """Once a deployment is done: where its endpoint answers."""
    error: str | MISSING = MISSING
    """Why the task failed."""


class InferenceTask(Shape):
    task_id: str
    model_id: str
    status: Literal["pending", "processing", "done", "failed"]
    metadata: InferenceTaskMetadata
