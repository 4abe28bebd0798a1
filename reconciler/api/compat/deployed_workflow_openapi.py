"""The OpenAPI path and schemas of the deployed-workflow endpoint (snake_case, as that API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_S = {"type": "string"}
_OBJ = {"type": "object"}
_LIST = {"type": "array", "items": _OBJ}

_KICKOFF_INPUTS = {
    "type": "string",
    "contentEncoding": "base64",
    "description": "base64 of a JSON object of params",
}
_ASSET_INPUTS = {
    "type": "array",
    "items": _S,
    "maxItems": 100,
    "description": "repo paths under assets/",
}


_NS = {"type": ["string", "null"]}
_STRINGS = {"type": "array", "items": _S}
_AGENT = {
    "type": "object",
    "description": "the runner of one step type the workflow uses; its one tool is that type",
    "required": [
        "id",
        "name",
        "crew_ai_role",
        "crew_ai_goal",
        "crew_ai_backstory",
        "tool_instance_ids",
    ],
    "properties": {
        "id": {**_S, "description": "the step type"},
        "name": _S,
        "crew_ai_role": _S,
        "crew_ai_goal": _S,
        "crew_ai_backstory": _S,
        "crew_ai_allow_delegation": {"type": "boolean"},
        "tool_instance_ids": _STRINGS,
        "llm_provider_model_id": _S,
    },
}
_TASK = {
    "type": "object",
    "description": "one node of the provision graph",
    "required": ["id", "description", "expected_output", "assigned_agent_id"],
    "properties": {
        "id": {**_S, "description": "the node's id"},
        "type": _S,
        "description": _S,
        "expected_output": {
            **_S,
            "description": "the outputs its step type produces and which tasks take them",
        },
        "assigned_agent_id": {**_S, "description": "the agent of its step type"},
        "tool_instance_id": _S,
        "user_inputs": _OBJ,
        "previous_node_inputs": {"type": "object", "additionalProperties": _S},
        "depends_on": _STRINGS,
    },
}
_WORKFLOW = {
    "type": "object",
    "required": [
        "id",
        "name",
        "description",
        "agent_ids",
        "task_ids",
        "crew_ai_process",
        "manager_agent_id",
        "is_conversational",
        "llm_provider_model_id",
    ],
    "properties": {
        "id": _S,
        "name": _S,
        "description": _S,
        "agent_ids": {**_STRINGS, "description": "the step types its tasks use"},
        "task_ids": {**_STRINGS, "description": "the provision graph's node ids"},
        "crew_ai_process": {
            "const": "sequential",
            "description": "each task runs after the tasks it depends on (the graph's edges)",
        },
        "manager_agent_id": {"type": "null", "description": "no manager: the graph decides"},
        "is_conversational": {
            "const": False,
            "description": "a run takes its inputs once, at kickoff",
        },
        "llm_provider_model_id": {
            **_S,
            "description": "the default language model (a Deployment the steps name), or ''",
        },
        "user_params": _OBJ,
        "config": _OBJ,
    },
}


def _action(name: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """One action's request object: ``action_type`` and the fields that action takes."""
    required = [
        "action_type",
        *(["get_asset_data_inputs"] if "get_asset_data_inputs" in fields else []),
    ]
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": {"action_type": {"const": name}, **fields},
    }


SCHEMAS: dict[str, Any] = {
    "EndpointRequest": {
        "type": "object",
        "required": ["request"],
        "additionalProperties": False,
        "properties": {
            "request": {
                "oneOf": [
                    _action("kickoff", kickoff_inputs=_KICKOFF_INPUTS),
                    _action("get-configuration"),
                    _action("get-asset-data", get_asset_data_inputs=_ASSET_INPUTS),
                    _action("get-mcp-tool-definitions"),
                ]
            }
        },
    },
    "EndpointKickoff": {
        "type": "object",
        "required": ["trace_id"],
        "properties": {"trace_id": _S},
    },
    "EndpointConfiguration": {
        "type": "object",
        "required": ["configuration"],
        "properties": {
            "configuration": {
                "type": "object",
                "required": [
                    "agents",
                    "default_language_model_id",
                    "language_models",
                    "mcp_instances",
                    "tasks",
                    "tool_instances",
                    "workflow",
                ],
                "properties": {
                    "agents": {"type": "array", "items": _AGENT},
                    "default_language_model_id": _NS,
                    "language_models": _LIST,
                    "mcp_instances": _LIST,
                    "tasks": {"type": "array", "items": _TASK},
                    "tool_instances": _LIST,
                    "workflow": _WORKFLOW,
                },
            }
        },
    },
    "EndpointAssetData": {
        "type": "object",
        "required": ["asset_data", "unavailable_assets"],
        "properties": {
            "asset_data": {"type": "object", "additionalProperties": _S},
            "unavailable_assets": {"type": "array", "items": _S},
        },
    },
    "EndpointMcpTools": {
        "type": "object",
        "required": ["ready", "mcp_tool_definitions"],
        "properties": {
            "ready": {"type": "boolean"},
            "mcp_tool_definitions": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "description", "inputSchema"],
                        "properties": {"name": _S, "description": _S, "inputSchema": _OBJ},
                    },
                },
            },
        },
    },
}


def paths(
    *,
    errors: Callable[..., dict[str, Any]],
    path: Callable[[str], dict[str, Any]],
    read: list[dict[str, list[str]]],
) -> dict[str, Any]:
    answers = ["EndpointKickoff", "EndpointConfiguration", "EndpointAssetData", "EndpointMcpTools"]
    return {
        "/api/workflows/{workflowId}/endpoint": {
            "post": {
                "summary": "Deployed-workflow endpoint: kickoff, get-configuration, "
                "get-asset-data, get-mcp-tool-definitions",
                "description": "kickoff needs the operator role, the other actions viewer.",
                "security": read,
                "x-role": "viewer (kickoff: operator)",
                "parameters": [path("workflowId")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/EndpointRequest"}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the action's answer",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        {"$ref": f"#/components/schemas/{name}"} for name in answers
                                    ]
                                }
                            }
                        },
                    },
                    **errors(401, 403, 404, 409, 413, 422, 503),
                },
            }
        }
    }
