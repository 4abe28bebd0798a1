"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of every route this app serves.

Written out rather than inferred, so each response shape is a promise. A test checks the
document names exactly the routes the app has, and schemathesis checks that responses
match it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler import __version__
from reconciler.api import shard_routes
from reconciler.api.compat import (
    deployed_workflow_openapi,
    flow_framework_openapi,
    inference_tasks_openapi,
    wizard_openapi,
    workflow_dashboard_openapi,
)
from reconciler.api.state import json_response
from reconciler.engine.records import FINISHED_EXECUTION, UNFINISHED_EXECUTION
from reconciler.specs.registry import KINDS

REF_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"
"""A branch name or commit sha as ``/api/v1/plan?ref=`` takes it."""
_NULL_STR = {"type": ["string", "null"]}
_STAMP = {"type": ["string", "null"], "format": "date-time"}
_ROLES = "viewer < operator < editor < admin"

_WRITE_TASK_STATUS = {"enum": ["committing", "pending", "review", "done", "failed"]}

SCHEMAS: dict[str, Any] = {
    "WriteAccepted": {
        "type": "object",
        "required": ["task_id", "status", "commit", "branch", "path"],
        "properties": {
            "task_id": {"type": "string"},
            "status": _WRITE_TASK_STATUS,
            "commit": {"type": "string"},
            "branch": {"type": "string"},
            "path": {"type": "string"},
        },
    },
    "WriteTask": {
        "type": "object",
        "required": ["id", "status", "action", "object", "commit", "branch", "result"],
        "properties": {
            "id": {"type": "string"},
            "status": _WRITE_TASK_STATUS,
            "action": {"enum": ["put", "delete"]},
            "object": {"type": "string"},
            "path": _NULL_STR,
            "mode": {"enum": ["commit", "branch"]},
            "commit": _NULL_STR,
            "branch": _NULL_STR,
            "requested_by": _NULL_STR,
            "result": {"type": ["object", "null"]},
        },
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["ready", "loaded", "store_writable", "detail"],
        "properties": {
            "ready": {"type": "boolean"},
            "loaded": {"type": "boolean"},
            "store_writable": {"type": "boolean"},
            "detail": {"type": "string"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["ready", "source", "objects", "executions"],
        "properties": {
            "ready": {"type": "boolean"},
            "source": {
                "type": "object",
                "required": ["url", "branch", "last_seen_revision", "last_applied_revision"],
                "properties": {
                    "url": {"type": "string"},
                    "branch": {"type": "string"},
                    "last_seen_revision": _NULL_STR,
                    "last_applied_revision": _NULL_STR,
                    "status": {"type": ["object", "null"]},
                },
            },
            "objects": {
                "type": "object",
                "properties": {
                    "in_git": {"type": "integer"},
                    "recorded": {"type": "integer"},
                    "by_phase": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "executions": {
                "type": "object",
                "properties": {"queued": {"type": "integer"}, "running": {"type": "integer"}},
            },
        },
    },
    "ObjectSummary": {
        "type": "object",
        "required": ["kind", "name", "phase", "ready", "labels", "in_git"],
        "properties": {
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "phase": {"type": "string"},
            "ready": {"type": "string"},
            "observed_revision": _NULL_STR,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "in_git": {"type": "boolean"},
        },
    },
    "ObjectPage": {
        "type": "object",
        "required": ["items", "total", "limit", "offset", "continue"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/ObjectSummary"}},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "continue": _NULL_STR,
        },
    },
    "Step": {
        "type": "object",
        "required": ["id", "type", "position", "status", "attempts"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "position": {"type": "integer"},
            "status": {
                "enum": [
                    "pending",
                    "running",
                    "succeeded",
                    "failed",
                    "stalled",
                    "skipped",
                    "cancelled",
                ]
            },
            "attempts": {"type": "integer"},
            "error": _NULL_STR,
            "outputs": {"type": ["object", "null"]},
            "started_at": _STAMP,
            "finished_at": _STAMP,
            "next_attempt_at": _STAMP,
            "logs": {"type": "string"},
        },
    },
    "Execution": {
        "type": "object",
        "required": ["id", "object", "kind", "name", "action", "trigger", "status"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string"},
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "action": {"enum": ["apply", "delete", "execute", "deprovision"]},
            "trigger": {"enum": ["on_change", "manual", "schedule", "api"]},
            "revision": {"type": "string"},
            "spec_hash": {"type": "string"},
            "cluster": _NULL_STR,
            "status": {
                "enum": [
                    "queued",
                    "running",
                    "succeeded",
                    "failed",
                    "stalled",
                    "cancelled",
                    "superseded",
                ]
            },
            "error": _NULL_STR,
            "params": {"type": "object"},
            "created_at": _STAMP,
            "started_at": _STAMP,
            "finished_at": _STAMP,
            "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
        },
    },
    "ObjectDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/ObjectSummary"},
            {
                "type": "object",
                "required": ["spec", "status", "conditions", "last_executions"],
                "properties": {
                    "spec": {"type": ["object", "null"]},
                    "metadata": {"type": ["object", "null"]},
                    "spec_hash": _NULL_STR,
                    "applied_hash": _NULL_STR,
                    "applied_revision": _NULL_STR,
                    "status": {"type": ["object", "null"]},
                    "conditions": {"type": "array", "items": {"type": "object"}},
                    "last_executions": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Execution"},
                    },
                },
            },
        ]
    },
    "ExecutionPage": {
        "type": "object",
        "required": ["items", "limit", "offset"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Execution"}},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "PlanResult": {
        "type": "object",
        "required": ["ref", "revision", "valid", "diagnostics", "plan"],
        "properties": {
            "ref": {"type": "string"},
            "revision": _NULL_STR,
            "valid": {"type": "boolean"},
            "diagnostics": {"type": "array", "items": {"type": "string"}},
            "plan": {"type": ["object", "null"]},
        },
    },
    "SyncRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"kind": {"enum": list(KINDS)}, "name": {"type": "string"}},
        "anyOf": [{"maxProperties": 0}, {"required": ["kind", "name"]}],
    },
    "SyncAccepted": {
        "type": "object",
        "required": ["triggered", "object"],
        "properties": {"triggered": {"const": True}, "object": _NULL_STR},
    },
    "RunRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "params": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            }
        },
    },
    "ExplainedVerdict": {
        "type": "object",
        "required": ["object", "phase", "reason", "message", "what_to_do", "waits_for"],
        "properties": {
            "object": {"type": "string"},
            "phase": {"type": ["string", "null"]},
            "reason": {"type": "string"},
            "message": {"type": ["string", "null"]},
            "what_to_do": {"type": ["string", "null"]},
            "waits_for": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ExplainedVerdict"},
            },
        },
    },
    "Explanation": {
        "allOf": [
            {"$ref": "#/components/schemas/ExplainedVerdict"},
            {
                "type": "object",
                "required": ["last_execution"],
                "properties": {
                    "last_execution": {
                        "type": ["object", "null"],
                        "required": ["id", "action", "trigger", "revision", "status", "steps"],
                        "properties": {
                            "id": {"type": "string"},
                            "action": {"type": "string"},
                            "trigger": {"type": "string"},
                            "revision": {"type": "string"},
                            "status": {"type": "string"},
                            "error": {"type": ["string", "null"]},
                            "steps": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["id", "type", "status", "attempts", "log_tail"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "type": {"type": "string"},
                                        "status": {"type": "string"},
                                        "attempts": {"type": "integer"},
                                        "error": {"type": ["string", "null"]},
                                        "log_tail": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    }
                },
            },
        ]
    },
    "Cancelling": {
        "type": "object",
        "description": "What the cancel does now: a queued execution is cancelled at once; "
        "a running one's steps are interrupted at their next await (subprocesses get "
        "subprocess_grace_s after SIGTERM) and undone where their step type has an undo.",
        "required": ["id", "state", "cancelling", "interrupting", "undo", "message"],
        "properties": {
            "id": {"type": "string"},
            "state": {"enum": ["cancelled", "cancelling"]},
            "cancelling": {"type": "boolean"},
            "interrupting": {"type": "array", "items": {"type": "string"}},
            "undo": {"type": "array", "items": {"type": "string"}},
            "subprocess_grace_s": {"type": "number"},
            "message": {"type": "string"},
        },
    },
    "StepCatalogue": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "description", "inputs", "outputs", "implemented"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "inputs": {"type": "object"},
                        "outputs": {"type": "object"},
                        "implemented": {"type": "boolean"},
                    },
                },
            }
        },
    },
    "WebhookAccepted": {
        "type": "object",
        "required": ["accepted", "provider", "delivery"],
        "properties": {
            "accepted": {"const": True},
            "provider": {"enum": ["github", "gitlab", "gitea"]},
            "delivery": {"type": "string"},
        },
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "a query parameter or body is malformed",
        401: "no bearer token, or one that matches no configured token",
        403: "the token's role is too low, or the API is read-only",
        404: "no such object, execution, workflow or ref",
        409: "the request conflicts with what is running",
        413: "the body is too large",
        422: "the body is well-formed but not acceptable",
        429: "too many requests",
        503: "not ready",
    }
    return {str(code): _problem(words[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_READ: list[dict[str, list[str]]] = [{"bearer": []}]
_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size")
_OFFSET = _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "items to skip")
_KIND = _query("kind", {"enum": list(KINDS)}, "only this kind")


def _paths() -> dict[str, Any]:
    auth_errors = _errors(401, 403)
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness: the event loop answers",
                "security": [],
                "responses": {
                    "200": {
                        "description": "alive",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "ok"}},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: first load done and the store writable",
                "security": [],
                "responses": {
                    "200": _json("Readiness", "ready"),
                    "503": _json("Readiness", "not ready, and why"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (no token needed with api.metrics_public: true)",
                "security": _READ,
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **auth_errors,
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "summary": "The daemon: source, object counts, queue",
                "security": _READ,
                "responses": {"200": _json("Status", "the daemon's view"), **auth_errors},
            }
        },
        "/api/v1/objects": {
            "get": {
                "summary": "Objects in Git or recorded by the daemon, sorted by kind/name",
                "security": _READ,
                "parameters": [
                    _KIND,
                    _query("phase", {"type": "string"}, "only this phase"),
                    {
                        **_query(
                            "label",
                            {"type": "string", "pattern": "^[^=]+(=.*)?$"},
                            "KEY or KEY=VALUE",
                        ),
                        "style": "form",
                        "explode": True,
                    },
                    _LIMIT,
                    _OFFSET,
                    _query("continue", {"type": "string"}, "the previous page's continue"),
                ],
                "responses": {"200": _json("ObjectPage", "a page"), **_errors(400, 401, 403)},
            }
        },
        "/api/v1/objects/{kind}/{name}/explain": {
            "get": {
                "summary": "Why the object is where it is: its reason and what to do, what it "
                "waits for (and what that waits for), its last execution's steps and logs",
                "security": _READ,
                "parameters": [_path("kind"), _path("name")],
                "responses": {
                    "200": _json("Explanation", "the explanation"),
                    **_errors(401, 403, 404),
                },
            },
        },
        "/api/v1/objects/{kind}/{name}": {
            "get": {
                "summary": "One object: spec, status, conditions, last executions",
                "security": _READ,
                "parameters": [_path("kind"), _path("name")],
                "responses": {
                    "200": _json("ObjectDetail", "the object"),
                    **_errors(401, 403, 404),
                },
            },
            "put": {
                "summary": "Commit the object's whole document (YAML or JSON) to Git",
                "security": _READ,
                "x-role": "editor",
                "parameters": [_path("kind"), _path("name")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/yaml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "202": _json("WriteAccepted", "committed (or pushed as a review branch)"),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                },
            },
            "delete": {
                "summary": "Commit the removal of the object's document from Git",
                "security": _READ,
                "x-role": "editor",
                "parameters": [_path("kind"), _path("name")],
                "responses": {
                    "202": _json("WriteAccepted", "committed (or pushed as a review branch)"),
                    **_errors(401, 403, 404, 409, 503),
                },
            },
        },
        "/api/v1/tasks/{id}": {
            "get": {
                "summary": "A write's task: its commit and how far the daemon got with it",
                "security": _READ,
                "parameters": [_path("id")],
                "responses": {
                    "200": _json("WriteTask", "the task"),
                    **_errors(401, 403, 404, 503),
                },
            }
        },
        "/api/v1/plan": {
            "get": {
                "summary": "The plan of a branch or commit against what is applied",
                "security": _READ,
                "parameters": [
                    _query(
                        "ref",
                        {"type": "string", "pattern": REF_PATTERN},
                        "a branch or commit; default: the watched branch",
                    )
                ],
                "responses": {
                    "200": _json("PlanResult", "the plan"),
                    "422": {
                        "description": "the ref does not validate, or is not a ref name",
                        "content": {
                            "application/json": {"schema": _ref("PlanResult")},
                            "application/problem+json": {"schema": _ref("Problem")},
                        },
                    },
                    **_errors(401, 403, 404, 503),
                },
            }
        },
        "/api/v1/sync": {
            "post": {
                "summary": "Reconcile now (all, or naming one object); reruns failed chains",
                "security": _READ,
                "x-role": "operator",
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("SyncRequest")}},
                },
                "responses": {
                    "202": _json("SyncAccepted", "a cycle is due"),
                    **_errors(400, 401, 403, 404, 413, 422),
                },
            }
        },
        "/api/v1/executions": {
            "get": {
                "summary": "Executions, newest first",
                "security": _READ,
                "parameters": [
                    _KIND,
                    _query("name", {"type": "string"}, "only this object name"),
                    {
                        **_query(
                            "status",
                            {"enum": sorted(FINISHED_EXECUTION | UNFINISHED_EXECUTION)},
                            "only these statuses",
                        ),
                        "style": "form",
                        "explode": True,
                    },
                    _LIMIT,
                    _OFFSET,
                ],
                "responses": {"200": _json("ExecutionPage", "a page"), **_errors(400, 401, 403)},
            }
        },
        "/api/v1/executions/{id}": {
            "get": {
                "summary": "One execution with its steps and their logs",
                "security": _READ,
                "parameters": [
                    _path("id"),
                    _query("logs", {"enum": ["true", "false"]}, "include step logs"),
                ],
                "responses": {"200": _json("Execution", "the execution"), **_errors(401, 403, 404)},
            }
        },
        "/api/v1/executions/{id}/cancel": {
            "post": {
                "summary": "Cancel at the next step boundary",
                "security": _READ,
                "x-role": "operator",
                "parameters": [_path("id")],
                "responses": {
                    "202": _json("Cancelling", "cancelling"),
                    **_errors(401, 403, 404, 409),
                },
            }
        },
        "/api/v1/workflows/{name}/executions": {
            "post": {
                "summary": "Run a Workflow's provision graph now (trigger api)",
                "security": _READ,
                "x-role": "operator",
                "parameters": [_path("name")],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("RunRequest")}},
                },
                "responses": {
                    "201": _json("Execution", "started"),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                },
            }
        },
        "/api/v1/workflows/{name}/deprovision": {
            "post": {
                "summary": "Deprovision a Workflow that stays in Git: its deprovision graph, "
                "or the undo of what its last provision made (trigger api)",
                "security": _READ,
                "x-role": "operator",
                "parameters": [_path("name")],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "additionalProperties": False}
                        }
                    },
                },
                "responses": {
                    "202": _json("Execution", "deprovision started"),
                    **_errors(400, 401, 403, 404, 409, 413, 422, 503),
                },
            }
        },
        "/api/v1/steps": {
            "get": {
                "summary": "The step catalogue, and which types this build runs",
                "security": _READ,
                "responses": {"200": _json("StepCatalogue", "the catalogue"), **auth_errors},
            }
        },
        "/api/v1/webhooks/git": {
            "post": {
                "summary": "A Git push: fetch now (GitHub, GitLab, Gitea signatures)",
                "security": [],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {}}},
                },
                "responses": {
                    "202": _json("WebhookAccepted", "a fetch is due"),
                    **_errors(400, 401, 403, 409, 413, 429, 503),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths = {
        **_paths(),
        **workflow_dashboard_openapi.paths(
            json=_json, errors=_errors, query=_query, path=_path, read=_READ
        ),
        **deployed_workflow_openapi.paths(errors=_errors, path=_path, read=_READ),
        **inference_tasks_openapi.paths(json=_json, errors=_errors, path=_path, read=_READ),
        **wizard_openapi.paths(json=_json, errors=_errors, path=_path, read=_READ),
        **flow_framework_openapi.paths(
            json=_json, errors=_errors, query=_query, path=_path, read=_READ
        ),
        **shard_routes.paths(json=_json, errors=_errors, read=_READ),
    }
    for item in paths.values():
        for operation in item.values():  # an unknown query parameter is a 400 anywhere
            operation["responses"].setdefault("400", _errors(400)["400"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reconciler",
            "version": __version__,
            "description": "GitOps reconciler for the ML model lifecycle. Bearer tokens carry "
            f"roles ({_ROLES}); reads need viewer, POSTs operator, writes editor (x-role).",
        },
        "paths": paths,
        "components": {
            "schemas": {
                **SCHEMAS,
                **workflow_dashboard_openapi.SCHEMAS,
                **deployed_workflow_openapi.SCHEMAS,
                **inference_tasks_openapi.SCHEMAS,
                **wizard_openapi.SCHEMAS,
                **flow_framework_openapi.SCHEMAS,
                **shard_routes.SCHEMAS,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": _READ,
    }


def query_parameters(
    spec: dict[str, Any],
) -> dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]]:
    """(METHOD, path template) -> (the query parameters the document gives that route,
    those of them that may repeat)."""
    allowed: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if operation.get("x-open-query"):  # the route checks its own (named params)
                continue
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            names = frozenset(p["name"] for p in query)
            repeated = frozenset(p["name"] for p in query if p.get("explode"))
            allowed[(method.upper(), path)] = (names, repeated)
    return allowed


def add_routes(app: web.Application) -> None:
    served = document()

    async def openapi(request: web.Request) -> web.Response:
        return json_response(request, served)

    app.router.add_get("/api/v1/openapi.json", openapi)
