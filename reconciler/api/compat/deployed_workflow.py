"""The deployed-workflow endpoint (reference: deployed-workflow-endpoint.txt) over our Workflows.

``POST /api/workflows/{workflowId}/endpoint`` with ``{"request": {"action_type": ...}}``:

- ``kickoff``: ``kickoff_inputs`` is base64 of a JSON object; it runs the Workflow's
  provision graph with those values as params (trigger ``api``, operator role) and answers
  ``{"trace_id": <execution id>}``.
- ``get-configuration``: the Workflow as the last validated revision has it, resolved:
  ``tasks`` are its provision graph's nodes (``id``, the workflow's own params filled into
  ``user_inputs``, ``depends_on`` from the edges; ``expected_output`` says which outputs
  the node's step type produces and which tasks take them; ``assigned_agent_id`` is its
  step type); ``agents`` are the step types it uses, each the runner of that step type
  with that one tool (``tool_instances`` are the step types, from the step catalogue);
  ``language_models`` the Deployments its steps name, the first being
  ``default_language_model_id``. ``workflow`` has ``agent_ids`` and ``task_ids`` (those
  ids), ``crew_ai_process: sequential`` (each task runs after those it depends on; the
  order is the graph's, and tasks with no path between them may overlap),
  ``manager_agent_id: null`` (no manager delegates: the graph decides),
  ``is_conversational: false`` (a run takes its inputs once, at kickoff) and
  ``llm_provider_model_id`` (the default language model, "" with none), beside our own
  fields (description, use_case, priority, tags, environments, config, user_params...).
  No MCP server belongs to a workflow, so ``mcp_instances`` is an empty list.
- ``get-asset-data``: base64 of repo files under the state repo's ``assets/`` folder at
  the last validated revision. A path is looked up one component at a time inside Git's
  own trees, so there is no file system to escape: a path with ``..``, ``.``, an empty
  part, a backslash, a ``%`` (encoded dots), a control character or a leading ``/`` is
  never looked up, and only regular files are read (a symlink or submodule is not). Every
  such path, every one that is not there, and every file over ``MAX_ASSET_BYTES`` or past
  ``MAX_ANSWER_BYTES`` in one answer is listed in ``unavailable_assets``.
- ``get-mcp-tool-definitions``: the step catalogue (the types a Workflow node may use) as
  MCP tool definitions (``name``, ``description``, ``inputSchema``; ``parameters`` too,
  the reference's name for the same schema), under one instance, ``reconciler-steps``.

The reads need the viewer role. Assets are read through the API's Git writer's object
store (the writer fetches the revision when it does not have it yet), so with
``api.write_mode: off`` there is no reader and get-asset-data answers 503.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from reconciler.api import project_access
from reconciler.api.compat import deployed_workflow_shapes as shapes
from reconciler.api.documents import status_of
from reconciler.api.problems import NotFound, Unavailable, Unprocessable
from reconciler.api.shapes.registry import Answer, RouteTable, json_body
from reconciler.api.state import VIEW, WRITES, answer, require
from reconciler.api.state import json_body as read_json
from reconciler.api.view import DaemonView
from reconciler.core.chain_builders import literal_name
from reconciler.core.diff import ObjectState
from reconciler.core.step_types import CATALOGUE, StepSignature
from reconciler.core.substitution import PLACEHOLDER
from reconciler.daemon.reconcile import PLANNED
from reconciler.drivers.git_source import GitSourceError
from reconciler.drivers.git_writer import GitWriter

ACTIONS: Mapping[str, tuple[str, ...]] = {
    "kickoff": ("kickoff_inputs",),
    "get-configuration": (),
    "get-asset-data": ("get_asset_data_inputs",),
    "get-mcp-tool-definitions": (),
}
"""Each action and the request fields it takes besides ``action_type``."""
ASSETS_FOLDER = "assets"
MCP_INSTANCE = "reconciler-steps"
MAX_ASSETS = 100
"""Most assets one get-asset-data request may ask for."""
MAX_ASSET_PATH = 1024
MAX_ASSET_BYTES = 8 * 1024 * 1024
"""Largest file get-asset-data returns; a bigger one is listed unavailable."""
MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""Most file bytes one get-asset-data answer carries; the assets past it are unavailable."""
_TREE_MODE = b"40000"
_FILE_MODES = (b"100644", b"100755")
_FORBIDDEN_CHARS = frozenset("\\%\0") | {chr(c) for c in range(32)} | {"\x7f"}

routes = RouteTable()


# --- the request -------------------------------------------------------------------------


def _request_of(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The action and its request object; 422 naming the field that is wrong."""
    unknown = sorted(set(body) - {"request"})
    if unknown:
        raise Unprocessable(f"field {unknown[0]!r} is not taken here; send {{'request': {{...}}}}")
    payload = body.get("request")
    if not isinstance(payload, dict):
        raise Unprocessable("request: expected an object with action_type")
    action = payload.get("action_type")
    if not isinstance(action, str) or action not in ACTIONS:
        raise Unprocessable(f"request.action_type must be one of {', '.join(ACTIONS)}")
    extra = sorted(set(payload) - {"action_type", *ACTIONS[action]})
    if extra:
        takes = ", ".join(ACTIONS[action]) or "nothing else"
        raise Unprocessable(
            f"request.{extra[0]}: action {action!r} does not take it (it takes {takes})"
        )
    return action, payload


def _kickoff_params(encoded: object) -> dict[str, Any]:
    if encoded is None:
        return {}
    if not isinstance(encoded, str):
        raise Unprocessable("request.kickoff_inputs must be a base64 string of a JSON object")
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Unprocessable("request.kickoff_inputs is not valid base64") from None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Unprocessable("request.kickoff_inputs does not decode to JSON text") from None
    if not isinstance(value, dict):
        raise Unprocessable("request.kickoff_inputs must decode to a JSON object of params")
    return value


def _workflow(request: web.Request) -> ObjectState:
    name = request.match_info["workflowId"]
    state = request.app[VIEW].desired().get(f"Workflow/{name}")
    if state is None:
        raise NotFound(f"no workflow {name!r}")
    return state


# --- get-configuration -------------------------------------------------------------------


def _fill_params(value: Any, params: Mapping[str, Any]) -> Any:
    """``value`` with every ``${{ param }}`` the workflow's params give filled in; node
    outputs (``${{ node.output }}``) are only known at run time and are kept."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole is not None and whole.group(2) is None and whole.group(1) in params:
            return params[whole.group(1)]

        def one(match: Any) -> str:
            if match.group(2) is None and match.group(1) in params:
                found = params[match.group(1)]
                return found if isinstance(found, str) else json.dumps(found, sort_keys=True)
            return str(match.group(0))

        return PLACEHOLDER.sub(one, value)
    if isinstance(value, Mapping):
        return {str(k): _fill_params(v, params) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill_params(v, params) for v in value]
    return value


def _expected_output(
    node_id: str, signature: StepSignature | None, consumers: Mapping[str, list[str]]
) -> str:
    """What a task yields: its step type's outputs, and which tasks take which of them."""
    outputs = sorted(signature.outputs) if signature is not None else []
    text = f"outputs: {', '.join(outputs)}" if outputs else "no outputs: done when it succeeds"
    taken = consumers.get(node_id)
    return f"{text}; handed to {', '.join(taken)}" if taken else text


def _tasks(graph: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, Mapping)]
    edges = [e for e in graph.get("edges") or [] if isinstance(e, Mapping)]
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for upstream, key in (node.get("previous_node_inputs") or {}).items():
            consumers.setdefault(str(upstream), []).append(f"{node.get('id')} ({key})")
    tasks = []
    for node in nodes:
        node_id = str(node.get("id"))
        step_type = str(node.get("type"))
        signature = CATALOGUE.get(step_type)
        tasks.append(
            {
                "id": node_id,
                "type": step_type,
                "assigned_agent_id": step_type,
                "tool_instance_id": step_type,
                "description": signature.description if signature else "",
                "expected_output": _expected_output(node_id, signature, consumers),
                "user_inputs": _fill_params(node.get("user_inputs") or {}, params),
                "previous_node_inputs": dict(node.get("previous_node_inputs") or {}),
                "depends_on": [str(e.get("source")) for e in edges if e.get("dest") == node_id],
            }
        )
    return tasks


def _agents(tasks: Sequence[Mapping[str, Any]], model_id: str | None) -> list[dict[str, Any]]:
    """One agent per step type the tasks use: the daemon's runner of that step type, whose
    one tool is that step type (``tool_instances``)."""
    agents = []
    for step_type in dict.fromkeys(str(t["type"]) for t in tasks):
        signature = CATALOGUE.get(step_type)
        ran = [str(t["id"]) for t in tasks if t["type"] == step_type]
        agents.append(
            {
                "id": step_type,
                "name": step_type,
                "crew_ai_role": f"{step_type} step runner",
                "crew_ai_goal": signature.description if signature else f"run {step_type}",
                "crew_ai_backstory": f"Runs this workflow's {step_type} tasks "
                f"({', '.join(ran)}) on the reconciler daemon, retried as the workflow's "
                "config says.",
                "crew_ai_allow_delegation": False,
                "tool_instance_ids": [step_type],
                "llm_provider_model_id": model_id or "",
            }
        )
    return agents


def _language_models(view: DaemonView, tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Deployments the workflow's steps name, each with its Model and endpoint."""
    desired = view.desired()
    found: list[dict[str, Any]] = []
    for task in tasks:
        name = literal_name(task["user_inputs"].get("deployment"))
        state = desired.get(f"Deployment/{name}") if name else None
        if state is None or any(m["model_id"] == name for m in found):
            continue
        recorded = view.store.get_object("Deployment", state.name)
        status = status_of(recorded) or {}
        found.append(
            {
                "model_id": state.name,
                "model_name": str(state.spec.get("model")),
                "endpoint_name": state.spec.get("endpoint_name"),
                "endpoint_url": status.get("endpoint_url"),
                "phase": recorded.phase if recorded is not None else None,
            }
        )
    return found


def configuration(state: ObjectState, view: DaemonView) -> dict[str, Any]:
    """The reference's configuration document for one Workflow."""
    spec = state.spec
    params = dict(spec.get("user_params") or {})
    graphs = spec.get("workflows") or {}
    tasks = _tasks(graphs.get("provision") or {}, params)
    models = _language_models(view, tasks)
    used = sorted({t["type"] for t in tasks})
    default_model = models[0]["model_id"] if models else None
    agents = _agents(tasks, default_model)
    return {
        "agents": agents,
        "default_language_model_id": default_model,
        "language_models": models,
        "mcp_instances": [],
        "tasks": tasks,
        "tool_instances": [
            {
                "id": t,
                "name": t,
                "description": CATALOGUE[t].description if t in CATALOGUE else "",
                "input_schema": CATALOGUE[t].inputs_schema() if t in CATALOGUE else {},
            }
            for t in used
        ],
        "workflow": {
            "id": state.name,
            "name": state.name,
            "description": str(spec.get("description") or ""),
            "use_case": spec.get("use_case"),
            "priority": spec.get("priority"),
            "tags": list(spec.get("tags") or []),
            "environments": list(spec.get("environments") or []),
            "suspend": bool(spec.get("suspend")),
            "trigger": spec.get("trigger"),
            "config": dict(spec.get("config") or {}),
            "user_params": params,
            "agent_ids": [a["id"] for a in agents],
            "task_ids": [t["id"] for t in tasks],
            "crew_ai_process": "sequential",
            "manager_agent_id": None,
            "is_conversational": False,
            "llm_provider_model_id": default_model or "",
            "has_deprovision": isinstance(graphs.get("deprovision"), Mapping),
        },
    }


# --- get-asset-data ----------------------------------------------------------------------


def plain_asset_path(path: object) -> tuple[str, ...] | None:
    """The parts of a requested asset path below ``assets/``, or None when it may not be
    looked up at all (not under assets/, or any part that could mean something else)."""
    if not isinstance(path, str) or not path or len(path) > MAX_ASSET_PATH:
        return None
    if path.startswith("/") or any(ch in _FORBIDDEN_CHARS for ch in path):
        return None
    parts = tuple(path.split("/"))
    if len(parts) < 2 or parts[0] != ASSETS_FOLDER:
        return None
    if any(part in ("", ".", "..") for part in parts):
        return None
    return parts[1:]


def _tree_entries(data: bytes, *, sha_bytes: int) -> dict[bytes, tuple[bytes, str]]:
    """A raw Git tree object as {name: (mode, object id)}."""
    entries: dict[bytes, tuple[bytes, str]] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        mode, name = data[pos:space], data[space + 1 : nul]
        entries[name] = (mode, data[nul + 1 : nul + 1 + sha_bytes].hex())
        pos = nul + 1 + sha_bytes
    return entries


class _AssetReader:
    """Files below ``assets/`` of one commit, looked up in Git's trees (blocking)."""

    def __init__(self, writer: GitWriter, *, revision: str, branch: str) -> None:
        self._writer = writer
        self._sha_bytes = len(revision) // 2
        # contains() fetches the branch when the revision is not in the writer's store
        # yet; its answer about the (absent) second commit is not needed here.
        writer.contains(revision, "0" * len(revision), branch=branch)
        commit = writer.read_blobs([revision])[revision]
        first = commit.split(b"\n", 1)[0].split()
        self._trees: dict[str, dict[bytes, tuple[bytes, str]]] = {}
        top = self._tree(first[1].decode("ascii"))
        found = top.get(ASSETS_FOLDER.encode())
        self._assets = found[1] if found is not None and found[0] == _TREE_MODE else None

    def _tree(self, sha: str) -> dict[bytes, tuple[bytes, str]]:
        if sha not in self._trees:
            data = self._writer.read_blobs([sha])[sha]
            self._trees[sha] = _tree_entries(data, sha_bytes=self._sha_bytes)
        return self._trees[sha]

    def read(self, parts: Sequence[str]) -> bytes | None:
        """The file's bytes; None when it is absent, not a regular file, or too large."""
        tree = self._assets
        if tree is None:
            return None
        *folders, name = parts
        for folder in folders:
            entry = self._tree(tree).get(folder.encode("utf-8"))
            if entry is None or entry[0] != _TREE_MODE:
                return None
            tree = entry[1]
        entry = self._tree(tree).get(name.encode("utf-8"))
        if entry is None or entry[0] not in _FILE_MODES:
            return None  # absent, a folder, a symlink (120000) or a submodule (160000)
        data = self._writer.read_blobs([entry[1]])[entry[1]]
        return data if len(data) <= MAX_ASSET_BYTES else None


def _read_assets(
    writer: GitWriter, revision: str, branch: str, wanted: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    reader = _AssetReader(writer, revision=revision, branch=branch)
    data: dict[str, str] = {}
    unavailable: list[str] = []
    left = MAX_ANSWER_BYTES
    for path in wanted:
        parts = plain_asset_path(path)
        content = reader.read(parts) if parts is not None else None
        if content is None or len(content) > left:
            unavailable.append(path)
        else:
            left -= len(content)
            data[path] = base64.b64encode(content).decode("ascii")
    return data, unavailable


async def _asset_data(request: web.Request, wanted: object) -> shapes.EndpointAssetData:
    if (
        not isinstance(wanted, list)
        or not all(isinstance(p, str) for p in wanted)
        or len(wanted) > MAX_ASSETS
    ):
        raise Unprocessable(
            f"request.get_asset_data_inputs must be a list of at most {MAX_ASSETS} paths"
        )
    paths = list(dict.fromkeys(wanted))
    view = request.app[VIEW]
    revision = view.store.get_value(PLANNED)
    writer = request.app[WRITES].writer
    if writer is None:
        raise Unavailable("assets are read through the API's Git writer, and api.write_mode is off")
    if not isinstance(revision, str):
        raise Unavailable("no revision of the state repo has validated yet")
    try:
        data, unavailable = await asyncio.to_thread(
            _read_assets, writer, revision, view.source().branch, paths
        )
    except GitSourceError as exc:
        raise Unavailable(f"the state repo's assets cannot be read now: {exc}") from None
    return shapes.EndpointAssetData(asset_data=data, unavailable_assets=unavailable)


# --- get-mcp-tool-definitions ------------------------------------------------------------


def mcp_tool_definitions() -> list[dict[str, Any]]:
    """Every step type a Workflow node may use, as an MCP tool definition."""
    tools = []
    for name, signature in sorted(CATALOGUE.items()):
        if not signature.workflow_use:
            continue
        schema = signature.inputs_schema()
        tools.append(
            {
                "name": name,
                "description": signature.description,
                "inputSchema": schema,
                "parameters": schema,
            }
        )
    return tools


# --- the route ---------------------------------------------------------------------------


@routes.post(
    "/api/workflows/{workflowId}/endpoint",
    "Deployed-workflow endpoint: kickoff, get-configuration, get-asset-data, "
    "get-mcp-tool-definitions",
    description="kickoff needs the operator role, the other actions viewer.",
    role="viewer",
    role_note="viewer (kickoff: operator)",
    body=json_body(shapes.EndpointRequest),
    answers={200: Answer("the action's answer", shapes.EndpointAnswer)},
    errors=(401, 403, 404, 409, 413, 422, 503),
)
async def endpoint(request: web.Request) -> web.Response:
    caller = require(request, "viewer")
    state = _workflow(request)
    action, payload = _request_of(await read_json(request))
    view = request.app[VIEW]
    done: shapes.EndpointAnswer
    if action == "kickoff":
        caller = require(request, "operator")
        project_access.authorize_object(caller, "execute", state.key, desired=view.desired())
        params = _kickoff_params(payload.get("kickoff_inputs"))
        execution_id = view.start_workflow(name=state.name, params=params, requested_by=caller.name)
        done = shapes.EndpointKickoff(trace_id=execution_id)
    elif action == "get-configuration":
        done = shapes.EndpointConfiguration.model_validate(
            {"configuration": configuration(state, view)}
        )
    elif action == "get-asset-data":
        done = await _asset_data(request, payload.get("get_asset_data_inputs"))
    else:
        done = shapes.EndpointMcpTools.model_validate(
            {
                "ready": view.readiness().ready,
                "mcp_tool_definitions": {MCP_INSTANCE: mcp_tool_definitions()},
            }
        )
    return answer(request, done)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
