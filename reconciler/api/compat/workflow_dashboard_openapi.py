"""The OpenAPI paths and schemas of the workflow dashboard surface (camelCase, as that API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.api.compat.workflow_dashboard_fields import OPTIONS, TRACE_LEVELS
from reconciler.core.run_targets import STRATEGIES
from reconciler.core.step_types import WORKFLOW_STEP_TYPES
from reconciler.specs.workflow import NODE_ID_PATTERN

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_EXEC_STATUS = {"enum": ["running", "completed", "failed", "cancelled"]}

_WRITTEN = {"commit": _S, "branch": _S, "taskId": _S}

_PRIORITY = {"enum": ["low", "medium", "high", "critical"]}
_PLAIN = {"type": ["string", "number", "boolean", "null"]}
_GRAPH = {
    "type": "object",
    "required": ["nodes"],
    "properties": {
        "nodes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "pattern": NODE_ID_PATTERN, "maxLength": 63},
                    "type": {"enum": list(WORKFLOW_STEP_TYPES)},
                    "user_inputs": {"type": "object"},
                    "previous_node_inputs": {"type": "object", "additionalProperties": _S},
                },
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source", "dest"],
                "properties": {"source": _S, "dest": _S},
            },
        },
    },
}
_STRATEGY = {
    "enum": list(STRATEGIES),
    "description": "spec.environment_strategy, how a run picks among its environments' "
    "clusters: ordered (the first Ready one), round_robin (the one after the previous "
    "run's), time (the Ready one with the fewest executions queued or running)",
}
_TRACE = {
    "enum": list(TRACE_LEVELS),
    "description": "spec.config.logs.level, the lowest step log level kept: "
    + ", ".join(f"{trace} -> {level}" for trace, level in TRACE_LEVELS.items()),
}
_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: {"type": "boolean"} for name in OPTIONS},
    "description": "enableRetry -> spec.config.retry_enabled (turned on with no retries: "
    "config.retries 3), enableLogging -> spec.config.logs.enabled, enableNotifications -> "
    "spec.config.notifications.enabled (422 when neither the workflow nor the daemon "
    "config's notifications.defaults names a channel)",
}
_CHANNELS = {
    "type": "object",
    "required": ["email", "slack", "webhook"],
    "additionalProperties": False,
    "properties": {c: {"type": "boolean"} for c in ("email", "slack", "webhook")},
    "description": "the channels this workflow's events go to",
}
_CONFIG = {
    "type": "object",
    "required": [
        "timeout",
        "retries",
        "retryDelay",
        "computeProfile",
        "resources",
        "notifications",
        "notificationEvents",
    ],
    "properties": {
        "timeout": _NS,
        "retries": {"type": "integer", "minimum": 0, "description": "0 with retry off"},
        "retryDelay": _S,
        "computeProfile": {"enum": ["GPU-Optimized", "CPU-Only", "None"]},
        "resources": {
            "type": "object",
            "required": ["cpu", "memory", "gpu"],
            "properties": {"cpu": _S, "memory": _S, "gpu": _S},
            "description": "what the graph's k8s_job nodes and the Deployments it names ask "
            "for, all at once",
        },
        "notifications": _CHANNELS,
        "notificationEvents": {
            "type": "array",
            "items": {"enum": ["start", "complete", "fail", "cancel"]},
        },
        "schedule": {
            "type": "object",
            "required": ["type", "cron", "description", "skipOnFailure", "catchUp"],
            "properties": {
                "type": {"const": "cron"},
                "cron": _S,
                "description": _S,
                "skipOnFailure": {"type": "boolean"},
                "catchUp": {"type": "boolean"},
            },
        },
    },
}
_WRITE_FIELDS: dict[str, Any] = {
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": "[A-Za-z0-9]",
        "description": "create: the id is its letters and digits joined by '-'; update: "
        "the name shown (the id stays)",
    },
    "description": _S,
    "priority": _PRIORITY,
    "status": {"enum": ["active", "inactive"]},
    "tags": {"type": "array", "items": _S},
    "environments": {
        "anyOf": [
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            {"type": "object", "additionalProperties": {"type": "boolean"}},
        ],
        "description": "the clusters runs target (spec.environments): each names a Cluster "
        "by its name or its label reconciler/environment; the object form keeps the true ones",
    },
    "environmentStrategy": _STRATEGY,
    "traceLevel": _TRACE,
    "options": _OPTIONS,
    "user_params": {"type": "object", "additionalProperties": _PLAIN},
    "workflows": {
        "type": "object",
        "required": ["provision"],
        "description": "our Workflow's graphs: {provision: {nodes, edges}, deprovision?}; "
        "the repo is validated with them before anything is committed (422 otherwise)",
        "properties": {"provision": _GRAPH, "deprovision": _GRAPH},
    },
}

SCHEMAS: dict[str, Any] = {
    "DashboardCreateRequest": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": _WRITE_FIELDS,
        "description": "without workflows a workflow is created inactive and stays so until "
        "an update gives it workflows",
        "if": {"required": ["status"], "properties": {"status": {"const": "active"}}},
        "then": {"required": ["workflows"]},
    },
    "DashboardUpdateRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": _WRITE_FIELDS,
    },
    "DashboardCreateAnswer": {
        "type": "object",
        "required": [
            "id",
            "name",
            "description",
            "status",
            "priority",
            "creator",
            "createdAt",
            "taskId",
        ],
        "properties": {
            "id": _S,
            "name": _S,
            "description": _S,
            "status": {"enum": ["active", "inactive"]},
            "priority": _PRIORITY,
            "creator": _S,
            "createdAt": _S,
            **_WRITTEN,
        },
    },
    "DashboardUpdateAnswer": {
        "type": "object",
        "required": ["id", "name", "description", "status", "priority", "updatedAt", "taskId"],
        "properties": {
            "id": _S,
            "name": _S,
            "description": _S,
            "status": {"enum": ["active", "inactive"]},
            "priority": {"enum": ["low", "medium", "high", "critical"]},
            "updatedAt": _NS,
            **_WRITTEN,
        },
    },
    "DashboardDeleteAnswer": {
        "type": "object",
        "required": ["success", "message", "taskId"],
        "properties": {"success": {"type": "boolean"}, "message": _S, **_WRITTEN},
    },
    "DashboardWorkflowSummary": {
        "type": "object",
        "required": ["id", "name", "description", "status", "priority", "lastRun"],
        "properties": {
            "id": _S,
            "name": _S,
            "description": _S,
            "status": {"enum": ["active", "inactive"]},
            "priority": {"enum": ["low", "medium", "high", "critical"]},
            "lastRun": _NS,
        },
    },
    "DashboardWorkflowPage": {
        "type": "object",
        "required": ["workflows", "total", "page", "pageSize"],
        "properties": {
            "workflows": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DashboardWorkflowSummary"},
            },
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "pageSize": {"type": "integer"},
        },
    },
    "DashboardWorkflow": {
        "allOf": [
            {"$ref": "#/components/schemas/DashboardWorkflowSummary"},
            {
                "type": "object",
                "required": [
                    "creator",
                    "createdAt",
                    "environments",
                    "environmentStrategy",
                    "traceLevel",
                    "options",
                    "tags",
                    "steps",
                    "config",
                ],
                "properties": {
                    "creator": {
                        **_NS,
                        "description": "the author of the commit that added its file",
                    },
                    "createdAt": {**_NS, "description": "that commit's author date"},
                    "environments": {"type": "array", "items": _S},
                    "environmentStrategy": _STRATEGY,
                    "traceLevel": _TRACE,
                    "options": {**_OPTIONS, "required": list(OPTIONS)},
                    "tags": {"type": "array", "items": _S},
                    "steps": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "status"],
                            "properties": {
                                "name": _S,
                                "status": {"enum": ["pending", "running", "completed", "failed"]},
                                "duration": _NS,
                            },
                        },
                    },
                    "config": _CONFIG,
                },
            },
        ]
    },
    "DashboardExecuteRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "environment": _S,
            "parameters": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            },
        },
    },
    "DashboardExecuteAnswer": {
        "type": "object",
        "required": ["executionId", "workflowId", "status", "startTime", "estimatedDuration"],
        "properties": {
            "executionId": _S,
            "workflowId": _S,
            "status": _EXEC_STATUS,
            "startTime": _NS,
            "estimatedDuration": _NS,
        },
    },
    "DashboardExecution": {
        "type": "object",
        "required": ["id", "workflowId", "status", "startTime", "executor"],
        "properties": {
            "id": _S,
            "workflowId": _S,
            "status": _EXEC_STATUS,
            "startTime": _NS,
            "endTime": _NS,
            "duration": _NS,
            "executor": _S,
            "error": _S,
            "environment": {**_S, "description": "the environment the run targeted"},
            "cluster": {**_S, "description": "the cluster the run targeted"},
            "parameters": {"type": "object"},
            "stepExecutions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "status", "logs"],
                    "properties": {
                        "name": _S,
                        "status": {"enum": ["pending", "running", "completed", "failed"]},
                        "startTime": _NS,
                        "endTime": _NS,
                        "duration": _NS,
                        "error": _S,
                        "logs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["timestamp", "level", "message"],
                                "properties": {
                                    "timestamp": _S,
                                    "level": {"enum": ["info", "warning", "error"]},
                                    "message": _S,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "DashboardExecutionPage": {
        "type": "object",
        "required": ["executions", "total", "limit", "offset"],
        "properties": {
            "executions": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DashboardExecution"},
            },
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "DashboardCancel": {
        "type": "object",
        "required": ["success", "message", "executionId", "status"],
        "properties": {
            "success": {"const": True},
            "message": _S,
            "executionId": _S,
            "status": {"enum": ["cancelling", "cancelled"]},
            "detail": _S,
        },
    },
}


def paths(
    *,
    json: Callable[[str, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    query: Callable[[str, dict[str, Any], str], dict[str, Any]],
    path: Callable[[str], dict[str, Any]],
    read: list[dict[str, list[str]]],
) -> dict[str, Any]:
    wid, eid = path("workflowId"), path("executionId")
    limit = query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size")
    offset = query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "skip")

    def body(schema: str, *, required: bool = False) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{schema}"}
        return {"required": required, "content": {"application/json": {"schema": ref}}}

    return {
        "/api/workflows": {
            "get": {
                "summary": "Workflow dashboard: workflows with status, priority, search, paging",
                "security": read,
                "parameters": [
                    query("status", {"enum": ["active", "inactive"]}, "only this status"),
                    query(
                        "priority",
                        {"enum": ["low", "medium", "high", "critical"]},
                        "only this priority",
                    ),
                    query("search", {"type": "string"}, "in the name or description"),
                    query("page", {"type": "integer", "minimum": 1, "maximum": 10**6}, "page"),
                    query(
                        "pageSize", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"
                    ),
                ],
                "responses": {"200": json("DashboardWorkflowPage", "a page"), **errors(401, 403)},
            },
            "post": {
                "summary": "Workflow dashboard: create a workflow (a Git commit)",
                "security": read,
                "x-role": "editor",
                "requestBody": body("DashboardCreateRequest", required=True),
                "responses": {
                    "201": json("DashboardCreateAnswer", "committed"),
                    **errors(401, 403, 409, 413, 422, 503),
                },
            },
        },
        "/api/workflows/{workflowId}": {
            "get": {
                "summary": "Workflow dashboard: one workflow",
                "security": read,
                "parameters": [wid],
                "responses": {
                    "200": json("DashboardWorkflow", "the workflow"),
                    **errors(401, 403, 404),
                },
            },
            "put": {
                "summary": "Workflow dashboard: update a workflow (a Git commit)",
                "security": read,
                "x-role": "editor",
                "parameters": [wid],
                "requestBody": body("DashboardUpdateRequest"),
                "responses": {
                    "200": json("DashboardUpdateAnswer", "committed"),
                    **errors(401, 403, 404, 409, 413, 422, 503),
                },
            },
            "delete": {
                "summary": "Workflow dashboard: delete a workflow (a Git commit)",
                "security": read,
                "x-role": "editor",
                "parameters": [wid],
                "responses": {
                    "200": json("DashboardDeleteAnswer", "committed"),
                    **errors(401, 403, 404, 409, 503),
                },
            },
        },
        "/api/workflows/{workflowId}/execute": {
            "post": {
                "summary": "Workflow dashboard: run a workflow (trigger api)",
                "security": read,
                "x-role": "operator",
                "parameters": [wid],
                "requestBody": body("DashboardExecuteRequest"),
                "responses": {
                    "201": json("DashboardExecuteAnswer", "started"),
                    **errors(401, 403, 404, 409, 413, 422, 503),
                },
            }
        },
        "/api/workflows/{workflowId}/executions": {
            "get": {
                "summary": "Workflow dashboard: a workflow's executions, newest first",
                "security": read,
                "parameters": [
                    wid,
                    query(
                        "status",
                        {"enum": ["running", "completed", "failed", "cancelled"]},
                        "only this status",
                    ),
                    limit,
                    offset,
                ],
                "responses": {
                    "200": json("DashboardExecutionPage", "a page"),
                    **errors(401, 403, 404),
                },
            }
        },
        "/api/workflows/{workflowId}/executions/{executionId}": {
            "get": {
                "summary": "Workflow dashboard: one execution with step logs",
                "security": read,
                "parameters": [wid, eid],
                "responses": {
                    "200": json("DashboardExecution", "the execution"),
                    **errors(401, 403, 404),
                },
            }
        },
        "/api/workflows/{workflowId}/executions/{executionId}/cancel": {
            "post": {
                "summary": "Workflow dashboard: cancel at the next step boundary",
                "security": read,
                "x-role": "operator",
                "parameters": [wid, eid],
                "responses": {
                    "200": json("DashboardCancel", "cancelling"),
                    **errors(401, 403, 404, 409),
                },
            }
        },
    }
