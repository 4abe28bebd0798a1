"""The OpenAPI paths and schemas of the flow framework surface (snake_case, as that API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.api.compat.flow_framework import BASE, ID_PATTERN
from reconciler.core.step_types import WORKFLOW_STEP_TYPES

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_MILLIS = {"type": "integer", "description": "milliseconds since the epoch"}
_STATE = {"enum": ["NOT_STARTED", "PROVISIONING", "FAILED", "COMPLETED"]}
_WRITTEN = {"commit": _S, "branch": _S, "task_id": _S}
_STEP_NAMES = "(?:" + "|".join(WORKFLOW_STEP_TYPES) + ")"


def _one_field(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": values,
    }


def _clause(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: body},
        "additionalProperties": False,
    }


def _text_or(key: str) -> dict[str, Any]:
    given = {"type": "object", "required": [key], "properties": {key: _S},
             "additionalProperties": False}  # fmt: skip
    return _one_field({"oneOf": [_S, given]})


_CLAUSES = {
    "match_all": {"type": "object", "maxProperties": 0},
    "match": _text_or("query"),
    "term": _text_or("value"),
    "terms": _one_field({"type": "array", "items": _S}),
    "prefix": _text_or("value"),
    "ids": {
        "type": "object",
        "required": ["values"],
        "properties": {"values": {"type": "array", "items": _S}},
        "additionalProperties": False,
    },
}
_QUERIES = {"oneOf": [{"$ref": "#/components/schemas/FlowQuery"}, {
    "type": "array", "items": {"$ref": "#/components/schemas/FlowQuery"}}]}  # fmt: skip


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Any] = {
    "FlowTemplateRequest": {
        "type": "object",
        "description": "a workflow template. Its workflows are provision (required to run) and "
        "deprovision, each {nodes: [{id, type, user_inputs, previous_node_inputs, retries, "
        "timeout}], edges: [{source, dest}], user_params}; with validation=all (the default) "
        "the repo's validation decides what they may hold (step types and inputs, edges, "
        "references), a 400 with its diagnostics (as that API answers); otherwise a template "
        "it rejects is kept as a draft. The edges its nodes' previous_node_inputs imply are "
        "added to the stored template",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "\\S"},
            "description": _S,
            "use_case": _S,
            "version": {"type": "object"},
            "workflows": {"type": "object"},
            "ui_metadata": {"type": "object"},
        },
        "additionalProperties": False,
    },
    "FlowQuery": {
        "description": "one query clause: match_all, match, term, terms, prefix, ids or bool",
        "oneOf": [
            *(_clause(name, body) for name, body in _CLAUSES.items()),
            _clause(
                "bool",
                {
                    "type": "object",
                    "properties": {
                        "must": _QUERIES,
                        "filter": _QUERIES,
                        "should": _QUERIES,
                        "must_not": _QUERIES,
                        "minimum_should_match": {"type": "integer", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            ),
        ],
    },
    "FlowTemplate": {
        "type": "object",
        "description": "a workflow template: name, description, use_case, version, "
        "workflows (provision, deprovision: nodes, edges, user_params), ui_metadata",
        "properties": {
            "name": _S,
            "description": _S,
            "use_case": _S,
            "version": {"type": "object"},
            "workflows": {"type": "object"},
            "ui_metadata": {"type": "object"},
        },
    },
    "FlowWorkflow": {
        "allOf": [
            _ref("FlowTemplate"),
            {
                "type": "object",
                "required": ["name", "workflows"],
                "properties": {
                    "last_provisioned_time": _MILLIS,
                    "created_time": _MILLIS,
                    "last_updated_time": _MILLIS,
                    "user": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}},
                    },
                    "draft": {"type": "boolean"},
                    "problem": _NS,
                },
            },
        ]
    },
    "FlowWritten": {
        "type": "object",
        "required": ["workflow_id"],
        "properties": {
            "workflow_id": _S,
            "execution_id": _S,
            "draft": {"type": "boolean"},
            "problem": _S,
            **_WRITTEN,
        },
    },
    "FlowDeleted": {
        "type": "object",
        "required": ["_index", "_id", "result", "workflow_id"],
        "properties": {
            "_index": _S,
            "_id": _S,
            "result": {"const": "deleted"},
            "workflow_id": _S,
            **_WRITTEN,
        },
    },
    "FlowRun": {
        "type": "object",
        "required": ["workflow_id", "execution_id"],
        "properties": {"workflow_id": _S, "execution_id": _S},
    },
    "FlowStatus": {
        "type": "object",
        "required": ["workflow_id", "state", "resources_created"],
        "properties": {
            "workflow_id": _S,
            "state": _STATE,
            "error": _S,
            "provisioning_progress": {"enum": ["NOT_STARTED", "IN_PROGRESS", "DONE", "FAILED"]},
            "provision_start_time": _MILLIS,
            "provision_end_time": _MILLIS,
            "resources_created": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "workflow_step_name",
                        "workflow_step_id",
                        "resource_type",
                        "resource_id",
                    ],
                    "properties": {
                        "workflow_step_name": _S,
                        "workflow_step_id": _S,
                        "resource_type": _NS,
                        "resource_id": _NS,
                    },
                },
            },
        },
    },
    "FlowSteps": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["inputs", "optional_inputs", "outputs", "required_plugins", "description"],
            "properties": {
                "inputs": {"type": "array", "items": _S},
                "optional_inputs": {"type": "array", "items": _S},
                "outputs": {"type": "array", "items": _S},
                "required_plugins": {"type": "array", "items": _S},
                "description": _S,
            },
        },
    },
    "FlowSearchRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "query": _ref("FlowQuery"),
            "from": {"type": "integer", "minimum": 0, "maximum": 10000},
            "size": {"type": "integer", "minimum": 0, "maximum": 10000},
        },
    },
    "FlowSearchAnswer": {
        "type": "object",
        "required": ["took", "timed_out", "_shards", "hits"],
        "properties": {
            "took": {"type": "integer"},
            "timed_out": {"type": "boolean"},
            "_shards": {"type": "object"},
            "hits": {
                "type": "object",
                "required": ["total", "max_score", "hits"],
                "properties": {
                    "total": {
                        "type": "object",
                        "required": ["value", "relation"],
                        "properties": {"value": {"type": "integer"}, "relation": _S},
                    },
                    "max_score": {"type": ["number", "null"]},
                    "hits": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["_index", "_id", "_score", "_source"],
                            "properties": {
                                "_index": _S,
                                "_id": _S,
                                "_score": {"type": "number"},
                                "_source": _ref("FlowTemplate"),
                            },
                        },
                    },
                },
            },
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
    wid = {**path("workflow_id"), "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"}}
    validation = query(
        "validation", _S, "all (default) validates; any other value, e.g. none, saves a draft"
    )
    template = {
        "required": True,
        "content": {
            "application/json": {"schema": _ref("FlowTemplateRequest")},
            "application/yaml": {"schema": _ref("FlowTemplateRequest")},
        },
    }
    params = {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                }
            }
        },
    }
    search = {
        "summary": "Flow framework: search templates (match_all, match, term, terms, prefix, "
        "ids, bool; from, size)",
        "security": read,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ref("FlowSearchRequest")}},
        },
        "responses": {"200": json("FlowSearchAnswer", "the hits"), **errors(400, 401, 403, 413)},
    }
    return {
        BASE: {
            "post": {
                "summary": "Flow framework: create a workflow from a template (a Git commit, "
                "or a draft in the state store with validation=none)",
                "security": read,
                "x-role": "editor",
                "x-open-query": True,
                "description": "Any other query parameter is a value for the template's "
                "${{ name }} expression of that name, allowed with provision=true only.",
                "parameters": [
                    query("provision", {"enum": ["true", "false"]}, "provision right after"),
                    validation,
                ],
                "requestBody": template,
                "responses": {
                    "201": json("FlowWritten", "created"),
                    **errors(400, 401, 403, 404, 409, 413, 503),
                },
            }
        },
        BASE + "/_steps": {
            "get": {
                "summary": "Flow framework: the step types this daemon runs",
                "security": read,
                "parameters": [
                    query(
                        "workflow_step",
                        {"type": "string", "pattern": f"^{_STEP_NAMES}(?:,{_STEP_NAMES})*$"},
                        "only these step types, comma-separated",
                    )
                ],
                "responses": {"200": json("FlowSteps", "the steps"), **errors(400, 401, 403)},
            }
        },
        BASE + "/_search": {"get": dict(search), "post": dict(search)},
        BASE + "/{workflow_id}": {
            "get": {
                "summary": "Flow framework: one workflow's template",
                "security": read,
                "parameters": [wid],
                "responses": {
                    "200": json("FlowWorkflow", "the template"),
                    **errors(401, 403, 404),
                },
            },
            "put": {
                "summary": "Flow framework: update a workflow not provisioned (a Git commit)",
                "security": read,
                "x-role": "editor",
                "parameters": [wid, validation],
                "requestBody": template,
                "responses": {
                    "200": json("FlowWritten", "updated"),
                    **errors(400, 401, 403, 404, 409, 413, 503),
                },
            },
            "delete": {
                "summary": "Flow framework: delete a workflow (a Git commit; a draft is dropped)",
                "security": read,
                "x-role": "editor",
                "parameters": [wid],
                "responses": {
                    "200": json("FlowDeleted", "deleted"),
                    **errors(401, 403, 404, 409, 503),
                },
            },
        },
        BASE + "/{workflow_id}/_provision": {
            "post": {
                "summary": "Flow framework: run the provision graph",
                "security": read,
                "x-role": "operator",
                "x-open-query": True,
                "description": "Each query parameter is a value for the template's "
                "${{ name }} expression of that name (as that API takes them); the fields of "
                "a JSON body are too. A name given both ways is a 400.",
                "parameters": [wid],
                "requestBody": params,
                "responses": {
                    "200": json("FlowRun", "started"),
                    **errors(400, 401, 403, 404, 409, 413, 503),
                },
            }
        },
        BASE + "/{workflow_id}/_deprovision": {
            "post": {
                "summary": "Flow framework: undo what the last provision made",
                "security": read,
                "x-role": "operator",
                "parameters": [wid],
                "responses": {
                    "200": json("FlowRun", "started"),
                    **errors(401, 403, 404, 409, 503),
                },
            }
        },
        BASE + "/{workflow_id}/_status": {
            "get": {
                "summary": "Flow framework: provisioning state and resources created",
                "security": read,
                "parameters": [
                    wid,
                    query("all", {"enum": ["true", "false"]}, "add progress and times"),
                ],
                "responses": {
                    "200": json("FlowStatus", "the status"),
                    **errors(400, 401, 403, 404),
                },
            }
        },
    }
