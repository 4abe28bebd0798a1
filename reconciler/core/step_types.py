"""The catalogue of step types: what each takes and what it gives, as JSON Schema.

Pure data, shared by validation (unknown types, unknown outputs, missing and mistyped
inputs), by ``reconciler steps`` (which prints it) and by the step registry, whose
implementations must match these signatures. The flow framework's step names
(create_connector, register_remote_model, deploy_model, ...) are here with the inputs
and outputs its templates use, so those templates validate and run unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

JsonSchema = Mapping[str, Any]

NODE_TIMEOUT = "node_timeout"
"""The input every step type accepts: a duration bounding one attempt of the step."""

_STRING: JsonSchema = {"type": "string"}
_NAME: JsonSchema = {"type": "string", "minLength": 1}
_INTEGER: JsonSchema = {"type": "integer"}
_BOOLEAN: JsonSchema = {"type": "boolean"}
_OBJECT: JsonSchema = {"type": "object"}
_ANY: JsonSchema = {}
_DURATION: JsonSchema = {
    "type": ["string", "number"],
    "format": "duration",
    "description": "a number and a unit (500ms, 30s, 5m, 2h, 1d), or seconds",
}
_STRINGS: JsonSchema = {"type": "array", "items": {"type": "string"}}
_NODE_TIMEOUT_SCHEMA: JsonSchema = {
    **_DURATION,
    "description": "bounds each attempt of this step; a step past it is retried like a failure",
}


@dataclasses.dataclass(frozen=True)
class StepSignature:
    """Inputs and outputs of one step type.

    ``required``, ``optional`` and ``outputs`` are the names; ``input_properties`` and
    ``output_properties`` give a JSON Schema per name (a name without one accepts any
    value). ``open_inputs``: the step takes the fields of a spec, so any input name is
    accepted. ``workflow_use``: whether a Workflow node may use this type (internal chain
    steps may not). ``undo``: the step type that reverses this one, fed with its outputs
    (deprovision without a deprovision graph). ``guaranteed_outputs``: the outputs every
    success gives (None: all of them).
    """

    name: str
    required: frozenset[str]
    optional: frozenset[str]
    outputs: frozenset[str]
    open_inputs: bool = False
    workflow_use: bool = True
    summary: str = ""
    input_properties: Mapping[str, JsonSchema] = dataclasses.field(default_factory=dict, hash=False)
    output_properties: Mapping[str, JsonSchema] = dataclasses.field(
        default_factory=dict, hash=False
    )
    undo: str | None = None
    guaranteed_outputs: frozenset[str] | None = None

    @property
    def inputs(self) -> frozenset[str]:
        return self.required | self.optional

    @property
    def description(self) -> str:
        return self.summary

    def input_schema(self, name: str) -> JsonSchema:
        """The JSON Schema of one input ({} for any value)."""
        return self.input_properties.get(name, _ANY)

    def inputs_schema(self) -> dict[str, Any]:
        """The inputs as one JSON Schema object (what ``reconciler steps`` prints)."""
        return {
            "type": "object",
            "properties": {name: dict(self.input_schema(name)) for name in sorted(self.inputs)},
            "required": sorted(self.required),
            "additionalProperties": self.open_inputs,
        }

    def outputs_schema(self) -> dict[str, Any]:
        """The outputs as one JSON Schema object."""
        given = self.outputs if self.guaranteed_outputs is None else self.guaranteed_outputs
        return {
            "type": "object",
            "properties": {
                name: dict(self.output_properties.get(name, _ANY)) for name in sorted(self.outputs)
            },
            "required": sorted(given),
        }


def _step(
    name: str,
    summary: str,
    *,
    required: Mapping[str, JsonSchema] | None = None,
    optional: Mapping[str, JsonSchema] | None = None,
    outputs: Mapping[str, JsonSchema] | None = None,
    guaranteed: tuple[str, ...] | None = None,
    open_inputs: bool = False,
    workflow_use: bool = True,
    undo: str | None = None,
) -> StepSignature:
    needed = dict(required or {})
    extra = {NODE_TIMEOUT: _NODE_TIMEOUT_SCHEMA, **(optional or {})}
    gives = dict(outputs or {})
    return StepSignature(
        name=name,
        required=frozenset(needed),
        optional=frozenset(extra),
        outputs=frozenset(gives),
        open_inputs=open_inputs,
        workflow_use=workflow_use,
        summary=summary,
        input_properties={**needed, **extra},
        output_properties=gives,
        undo=undo,
        guaranteed_outputs=None if guaranteed is None else frozenset(guaranteed),
    )


def _sig(
    name: str,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    *,
    open_inputs: bool = False,
    workflow_use: bool = True,
    summary: str = "",
) -> StepSignature:
    """A signature by names alone (inputs of any value): for tests and plug-in types."""
    return _step(
        name,
        summary,
        required=dict.fromkeys(required, _ANY),
        optional=dict.fromkeys(optional, _ANY),
        outputs=dict.fromkeys(outputs, _ANY),
        open_inputs=open_inputs,
        workflow_use=workflow_use,
    )


_HTTP_STATUS: JsonSchema = {
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string"},
        {"type": "array", "items": {"type": ["integer", "string"]}, "minItems": 1},
    ],
    "description": "a status (200), a class ('2xx'), or a list of them; default 2xx",
}
_MODEL_ID: JsonSchema = {"type": "string", "minLength": 1, "description": "a Model's name"}
_CONNECTOR_ID: JsonSchema = {"type": "string", "minLength": 1}
_STATUS_TEXT: JsonSchema = {"type": "string", "description": "e.g. CREATED, DEPLOYED"}

_CORE_STEPS = (
    _step("noop", "do nothing, optionally after a delay", optional={"delay": _DURATION}),
    _step(
        "fail",
        "fail with a message (until an attempt number, if given)",
        required={"message": _STRING},
        optional={"until_attempt": {"type": "integer", "minimum": 1}},
    ),
    _step(
        "http_request",
        "send an HTTP request and check its status",
        required={
            "method": {"type": "string", "minLength": 1, "description": "GET, POST, ..."},
            "url": {"type": "string", "minLength": 1},
        },
        optional={
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": _ANY,
            "expect_status": _HTTP_STATUS,
            "timeout": _DURATION,
        },
        outputs={
            "status": _INTEGER,
            "body": _STRING,
            "json": {"description": "the body parsed as JSON, or null"},
        },
    ),
    _step(
        "wait_ready",
        "wait until a Deployment is Ready; give its endpoint URL",
        required={"deployment": {**_NAME, "description": "a Deployment's name"}},
        optional={"timeout": _DURATION},
        outputs={"endpoint_url": _STRING},
    ),
    _step(
        "k8s_job",
        "run a container to completion on a cluster (on a local cluster: a command on its "
        "host); outputs its log, exit code and the JSON object on its last line of output",
        required={"cluster": {**_NAME, "description": "a Cluster's name"}},
        optional={
            "image": {**_NAME, "description": "the container image (a kubernetes Cluster)"},
            "command": {
                **_STRINGS,
                "description": "the entrypoint (a local Cluster: the program to run)",
            },
            "args": _STRINGS,
            "env": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
            "gpus": {"type": "integer", "minimum": 0},
        },
        outputs={
            "logs": {**_STRING, "description": "the last 64 KiB of the output"},
            "exit_code": _INTEGER,
            "outputs": {
                **_OBJECT,
                "description": "the JSON object on the last line of output ({} if none)",
            },
        },
    ),
)

_MODEL_STEPS = (
    _step(
        "add_model",
        "register a model and resolve its source (inputs: the fields of a Model spec)",
        optional={"name": _NAME, "source": _OBJECT, "modality": _STRING},
        outputs={"model_id": _MODEL_ID},
        open_inputs=True,
        undo="remove_model",
    ),
    _step(
        "scan_model",
        "security-scan every file of a model (inputs: the fields of a Model spec)",
        optional={"model_id": _MODEL_ID},
        outputs={
            "model_id": _MODEL_ID,
            "findings": {"type": "array", "items": _OBJECT},
            "max_severity": {"type": ["string", "null"]},
        },
        open_inputs=True,
    ),
    _step(
        "deploy_model",
        "create or update an endpoint serving a model (inputs: the fields of a Deployment "
        "spec; a flow framework template gives model_id)",
        optional={"model_id": _MODEL_ID, "model": _NAME, "workers": _INTEGER},
        outputs={
            "endpoint_url": _STRING,
            "workers": _INTEGER,
            "model_id": _MODEL_ID,
            "deploy_model_status": _STATUS_TEXT,
        },
        guaranteed=(),
        open_inputs=True,
        undo="undeploy_model",
    ),
    _step(
        "undeploy_model",
        "remove an endpoint (by Deployment name, or the model_id it serves)",
        optional={"model_id": _MODEL_ID, "name": _NAME},
        outputs={"success": _BOOLEAN},
        guaranteed=(),
        open_inputs=True,
    ),
    _step(
        "scale_deployment",
        "change the worker count of an endpoint",
        optional={"workers": {"type": "integer", "minimum": 0}},
        outputs={"workers": _INTEGER},
        open_inputs=True,
    ),
)

_FLOW_FRAMEWORK_STEPS = (
    _step(
        "create_connector",
        "create a connector to a remote model service (flow framework)",
        required={
            "name": _NAME,
            "description": _STRING,
            "version": {"type": ["string", "integer"]},
            "protocol": {"type": "string", "enum": ["http", "aws_sigv4"]},
            "parameters": _OBJECT,
            "credential": {
                "type": "object",
                "description": "names of secrets, resolved on the daemon host",
            },
            "actions": {"type": "array", "items": _OBJECT, "minItems": 1},
        },
        optional={
            "backend_roles": _STRINGS,
            "access_mode": {"type": "string", "enum": ["public", "private", "restricted"]},
            "add_all_backend_roles": _BOOLEAN,
            "client_config": _OBJECT,
        },
        outputs={"connector_id": _CONNECTOR_ID},
        undo="delete_connector",
    ),
    _step(
        "delete_connector",
        "delete a connector (flow framework)",
        required={"connector_id": _CONNECTOR_ID},
        outputs={"connector_id": _CONNECTOR_ID},
    ),
    _step(
        "register_remote_model",
        "register a model served by a connector's remote service (flow framework)",
        required={"name": _NAME, "connector_id": _CONNECTOR_ID},
        optional={
            "description": _STRING,
            "function_name": {"type": "string", "enum": ["remote"]},
            "model_group_id": _STRING,
            "deploy": _BOOLEAN,
            "interface": _OBJECT,
            "guardrails": _OBJECT,
        },
        outputs={
            "model_id": _MODEL_ID,
            "register_model_status": _STATUS_TEXT,
            "deploy_model_status": _STATUS_TEXT,
            "endpoint_url": _STRING,
        },
        guaranteed=("model_id", "register_model_status"),
        undo="delete_model",
    ),
    _step(
        "register_local_pretrained_model",
        "register a pretrained model from Hugging Face to run locally (flow framework)",
        required={
            "name": {**_NAME, "description": "a Hugging Face repo id, owner/name"},
            "version": {"type": ["string", "integer"]},
            "model_format": {"type": "string", "enum": ["TORCH_SCRIPT", "ONNX"]},
        },
        optional={
            "description": _STRING,
            "model_group_id": _STRING,
            "deploy": _BOOLEAN,
        },
        outputs={
            "model_id": _MODEL_ID,
            "register_model_status": _STATUS_TEXT,
            "deploy_model_status": _STATUS_TEXT,
        },
        guaranteed=("model_id", "register_model_status"),
        undo="delete_model",
    ),
    _step(
        "delete_model",
        "remove a registered model (flow framework)",
        required={"model_id": _MODEL_ID},
        outputs={"model_id": _MODEL_ID},
    ),
)

_INTERNAL_STEPS = (
    _step(
        "cache_model",
        "pre-pull a model's files to the clusters its cache names (inputs: a Model spec)",
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "uncache_model",
        "remove a model's pre-pulled files from the clusters that hold them",
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "remove_model",
        "remove a model from the registry",
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "check_cluster",
        "connect to a cluster and observe its GPU inventory",
        outputs={"reachable": _BOOLEAN, "gpus": _OBJECT},
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "release_cluster",
        "forget a cluster (nothing on it is touched)",
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "check_secret",
        "resolve a credential's secret on the daemon host",
        open_inputs=True,
        workflow_use=False,
    ),
    _step(
        "record_spec",
        "record a spec that has no outside effect",
        open_inputs=True,
        workflow_use=False,
    ),
)

CATALOGUE: dict[str, StepSignature] = {
    sig.name: sig for sig in (*_CORE_STEPS, *_MODEL_STEPS, *_FLOW_FRAMEWORK_STEPS, *_INTERNAL_STEPS)
}

FLOW_FRAMEWORK_STEP_TYPES: tuple[str, ...] = (
    "create_connector",
    "delete_connector",
    "register_remote_model",
    "register_local_pretrained_model",
    "deploy_model",
    "undeploy_model",
    "delete_model",
)

WORKFLOW_STEP_TYPES: tuple[str, ...] = tuple(
    sorted(name for name, sig in CATALOGUE.items() if sig.workflow_use)
)


def catalogue_entries(*, workflow_only: bool = True) -> list[dict[str, Any]]:
    """The catalogue as JSON values: ``{name, description, inputs, outputs}`` per type."""
    return [
        {
            "name": sig.name,
            "description": sig.description,
            "inputs": sig.inputs_schema(),
            "outputs": sig.outputs_schema(),
        }
        for name, sig in sorted(CATALOGUE.items())
        if sig.workflow_use or not workflow_only
    ]


# --- checking a value against an input's schema -----------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}
_A_OR_AN = {"integer": "an integer", "object": "an object", "array": "an array"}


def _is_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _JSON_TYPES.get(type_name, ()))


def _type_words(types: list[str]) -> str:
    words = [_A_OR_AN.get(t, f"a {t}" if t != "null" else "null") for t in types]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def value_problems(
    schema: JsonSchema, value: Any, *, deferred: Any = None
) -> list[tuple[tuple[str | int, ...], str]]:
    """``(path inside value, message)`` for each way ``value`` breaks ``schema``.

    The subset of JSON Schema the catalogue uses: type, enum, minimum, maximum, minLength,
    minItems, items, additionalProperties (a schema) and anyOf. ``deferred(value)`` tells
    a value only known at run time (a whole ``${{ }}`` placeholder), which is not checked.
    """
    if deferred is not None and deferred(value):
        return []
    if "anyOf" in schema:
        options = [value_problems(option, value, deferred=deferred) for option in schema["anyOf"]]
        if any(not found for found in options):
            return []
        hint = schema.get("description")
        return [((), f"{_shown(value)} is not valid here" + (f": {hint}" if hint else ""))]
    declared = schema.get("type")
    if declared is not None:
        types = [declared] if isinstance(declared, str) else list(declared)
        if not any(_is_type(value, t) for t in types):
            return [((), f"must be {_type_words(types)}, got {_shown(value)}")]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        return [((), f"must be one of {allowed}, got {_shown(value)}")]
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(((), f"must be at least {schema['minimum']}, got {value}"))
        if "maximum" in schema and value > schema["maximum"]:
            found.append(((), f"must be at most {schema['maximum']}, got {value}"))
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(((), "must not be empty"))
    if isinstance(value, list | tuple):
        if len(value) < schema.get("minItems", 0):
            found.append(((), f"needs at least {schema['minItems']} item(s)"))
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                for where, message in value_problems(items, item, deferred=deferred):
                    found.append(((index, *where), message))
    if isinstance(value, dict):
        each = schema.get("additionalProperties")
        if isinstance(each, Mapping):
            for key, item in value.items():
                for where, message in value_problems(each, item, deferred=deferred):
                    found.append(((str(key), *where), message))
    return found
