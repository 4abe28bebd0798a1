"""The inference deployment tasks API (reference: inference-deployment-tasks.md) over Git.

``POST /deploy`` with ``{"model_id": <a Model's name>, "config": {...}}`` commits a
Deployment of that Model (editor role): ``config`` holds the Deployment's own spec fields
(``project``, ``cluster``, ``template``, ``credential``, ``endpoint_name``, ``strategy``,
``deploy_config``, ``workers``, ``suspend``) and ``name``, the Deployment's name (default:
the model id); ``endpoint_name`` defaults to that name. A field the Deployment kind has no
place for is a 422 naming it. Deploying again under the same name replaces that
Deployment's spec (a green rollout by default); a Deployment of that name serving another
Model is a 409. ``POST /delete`` with ``{"model_id": ..., "name"?: ...}`` commits the
removal of that Model's Deployment (``name`` picks one when it has several).

Each request is an API task that follows its commit (the write task of
:mod:`reconciler.api.writes`) and then the Deployment: ``pending`` until the daemon has
the commit, ``processing`` while it reconciles, ``done`` once the Deployment is Ready at
that spec (or, for a delete, gone), ``failed`` when the commit failed or the Deployment
stalled. ``GET /deploy/{task_id}`` and ``/delete/{task_id}`` read one task;
``/deploy-status/{model_id}`` and ``/delete-status/{model_id}`` the model's latest. A task
or model with none is 404.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.api.compat import inference_tasks_shapes as shapes
from reconciler.api.compat.inference_tasks_shapes import DEPLOYMENT_FIELDS
from reconciler.api.problems import Conflict, NotFound, Unprocessable
from reconciler.api.shapes.common import parse
from reconciler.api.shapes.registry import Answer, RouteTable, json_body
from reconciler.api.state import VIEW, WRITES, answer, require
from reconciler.api.state import json_body as read_json
from reconciler.api.view import SourceInfo
from reconciler.api.writes import WriteOutcome, follow_write
from reconciler.drivers.git_writer import GitWriter
from reconciler.engine.records import ApiTaskRecord
from reconciler.specs.common import DNS_LABEL_PATTERN

TASK_DEPLOY = "inference_deploy"
TASK_DELETE = "inference_delete"
FINAL = ("done", "failed")
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)

routes = RouteTable()
_TASK = {200: Answer("the task", shapes.InferenceTask)}
_ACCEPTED = {202: Answer("committed; the task follows the reconcile", shapes.InferenceTask)}
_WRITE_ERRORS = (401, 403, 404, 409, 413, 422, 503)
_READ_ERRORS = (401, 403, 404, 503)


# --- requests ----------------------------------------------------------------------------


def _model_id(body: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Unprocessable(
            f"field {unknown[0]!r} has no place in a Deployment; this takes {', '.join(allowed)}"
        )
    model_id = body.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise Unprocessable("model_id: expected the name of a Model")
    return model_id


def deployment_document(model_id: str, config: object) -> dict[str, Any]:
    """The Deployment a deploy request asks for; 422 naming a field that has no place."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise Unprocessable("config: expected an object of Deployment spec fields")
    unknown = sorted(set(config) - {"name", *DEPLOYMENT_FIELDS})
    if unknown:
        raise Unprocessable(
            f"config.{unknown[0]}: a Deployment has no such field (config takes name, "
            f"{', '.join(DEPLOYMENT_FIELDS)})"
        )
    if "deploy_config" not in config:
        raise Unprocessable(
            "config.deploy_config: required (concurrent_requests, avg_sequence_length, "
            "avg_context_length, and optional SLO ranges)"
        )
    name = config.get("name", model_id)
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.fullmatch(name):
        raise Unprocessable(
            f"config.name: {name!r} is not a Deployment name (a lowercase DNS label: a-z, "
            "0-9, '-', 1-63 chars); give config.name when the model id is not one"
        )
    spec = {"model": model_id, **{k: config[k] for k in DEPLOYMENT_FIELDS if k in config}}
    spec.setdefault("endpoint_name", name)
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": spec,
    }


# --- following a task --------------------------------------------------------------------


def _seen(writer: GitWriter | None, source: SourceInfo, commit: str) -> bool:
    seen = source.last_seen_revision
    return bool(writer and seen and writer.contains(seen, commit, branch=source.branch))


async def _follow(request: web.Request, task: ApiTaskRecord) -> ApiTaskRecord:
    """Move a task on from its write task and its Deployment; final statuses stay."""
    if task.status in FINAL:
        return task
    view = request.app[VIEW]
    store = view.store
    writer = request.app[WRITES].writer
    write = store.get_api_task(str(task.payload.get("write_task")))
    result = dict(task.result or {})
    if write is None:
        return store.update_api_task(task.id, status="failed", result={"error": "lost write"})
    source = view.source()
    write = await follow_write(write, view=view, writer=writer)
    written = dict(write.result or {})
    if write.status == "failed":
        result["error"] = written.get("error") or "the write failed"
        return store.update_api_task(task.id, status="failed", result=result)
    name = str(task.payload.get("deployment"))
    # The write task is done once its own Deployment is applied at the commit's spec (or
    # gone), failed once its attempt failed: whatever else the daemon is doing.
    applied = write.status == "done"
    live = view.object_status(f"Deployment/{name}") or {}
    status = "pending"
    if task.kind == TASK_DEPLOY and applied and live.get("phase") == "Ready":
        status = "done"
        result["endpoint_url"] = live.get("endpoint_url")
    elif task.kind == TASK_DELETE and applied:
        status = "done"
    elif applied or await asyncio.to_thread(_seen, writer, source, str(written.get("commit"))):
        status = "processing"
    if status == task.status and result == dict(task.result or {}):
        return task
    return store.update_api_task(task.id, status=status, result=result)


def task_shape(task: ApiTaskRecord) -> shapes.InferenceTask:
    """The reference's ModelDeploymentResponse / ModelDeletionResponse."""
    payload = task.payload
    metadata = {
        "deployment": payload.get("deployment"),
        "requested_by": payload.get("requested_by"),
        "write_task_id": payload.get("write_task"),
        "commit": payload.get("commit"),
        "branch": payload.get("branch"),
        "path": payload.get("path"),
        **dict(task.result or {}),
    }
    return shapes.InferenceTask(
        task_id=task.id,
        model_id=payload.get("model_id"),
        status=task.status,
        metadata=shapes.InferenceTaskMetadata.model_validate(metadata),
    )


async def _answer(request: web.Request, task: ApiTaskRecord, *, status: int = 200) -> web.Response:
    return answer(request, task_shape(await _follow(request, task)), status=status)


def _task(request: web.Request, kind: str) -> ApiTaskRecord:
    task_id = request.match_info["task_id"]
    task = request.app[VIEW].store.get_api_task(task_id)
    if task is None or task.kind != kind:
        what = "deployment" if kind == TASK_DEPLOY else "deletion"
        raise NotFound(f"no {what} task {task_id!r}")
    return task


def _latest(request: web.Request, kind: str) -> ApiTaskRecord:
    model_id = request.match_info["model_id"]
    tasks = [
        t
        for t in request.app[VIEW].store.list_api_tasks(kind=kind)
        if t.payload.get("model_id") == model_id
    ]
    if not tasks:
        what = "deployment" if kind == TASK_DEPLOY else "deletion"
        raise NotFound(f"no {what} task for model {model_id!r}")
    return tasks[-1]


# --- routes ------------------------------------------------------------------------------


@routes.post(
    "/deploy",
    "Inference tasks: deploy a Model (a Deployment committed to Git)",
    role="editor",
    body=json_body(shapes.InferenceDeployRequest),
    answers=_ACCEPTED,
    errors=_WRITE_ERRORS,
)
async def deploy(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    body = await read_json(request)
    model_id = _model_id(body, ("model_id", "config"))
    view = request.app[VIEW]
    desired = view.desired()
    if f"Model/{model_id}" not in desired:
        raise NotFound(f"no Model {model_id!r} in the last valid revision; add it first")
    document = deployment_document(model_id, body.get("config"))
    name = document["metadata"]["name"]
    existing = desired.get(f"Deployment/{name}")
    if existing is not None and existing.spec.get("model") != model_id:
        raise Conflict(
            f"Deployment {name!r} serves Model {existing.spec.get('model')!r}; choose another "
            "config.name"
        )
    outcome = await request.app[WRITES].put(
        store=view.store, caller=caller, kind="Deployment", name=name, document=document
    )
    return await _accepted(
        request,
        TASK_DEPLOY,
        model_id=model_id,
        name=name,
        outcome=outcome,
        requested_by=caller.name,
    )


async def _accepted(
    request: web.Request,
    kind: str,
    *,
    model_id: str,
    name: str,
    outcome: WriteOutcome,
    requested_by: str,
) -> web.Response:
    """After a write: ask for a cycle, record the task that follows it, answer 202."""
    view = request.app[VIEW]
    view.trigger(reason="api write", expect=(f"Deployment/{name}",))
    task = view.store.create_api_task(
        kind=kind,
        payload={
            "model_id": model_id,
            "deployment": name,
            "write_task": outcome.task.id,
            "requested_by": requested_by,
            "commit": outcome.commit,
            "branch": outcome.branch,
            "path": outcome.path,
        },
        status="pending",
    )
    return await _answer(request, task, status=202)


@routes.post(
    "/delete",
    "Inference tasks: delete a Model's Deployment (a Git commit)",
    role="editor",
    body=json_body(shapes.InferenceDeleteRequest),
    answers=_ACCEPTED,
    errors=_WRITE_ERRORS,
)
async def delete(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    asked = parse(shapes.InferenceDeleteRequest, await read_json(request))
    model_id, wanted = asked.model_id, asked.name
    view = request.app[VIEW]
    serving = sorted(
        state.name
        for key, state in view.desired().items()
        if key.startswith("Deployment/") and state.spec.get("model") == model_id
    )
    if wanted is not None and wanted not in serving:
        raise NotFound(f"no Deployment {wanted!r} of Model {model_id!r}")
    if not serving:
        raise NotFound(f"Model {model_id!r} has no Deployment in the last valid revision")
    if wanted is None and len(serving) > 1:
        raise Conflict(
            f"Model {model_id!r} has {len(serving)} Deployments ({', '.join(serving)}); "
            "name the one to delete"
        )
    name = wanted or serving[0]
    outcome = await request.app[WRITES].delete(
        store=view.store, caller=caller, kind="Deployment", name=name
    )
    return await _accepted(
        request,
        TASK_DELETE,
        model_id=model_id,
        name=name,
        outcome=outcome,
        requested_by=caller.name,
    )


@routes.get(
    "/deploy/{task_id}",
    "Inference tasks: one deployment task",
    role="viewer",
    answers=_TASK,
    errors=_READ_ERRORS,
)
async def get_deploy_task(request: web.Request) -> web.Response:
    require(request, "viewer")
    return await _answer(request, _task(request, TASK_DEPLOY))


@routes.get(
    "/deploy-status/{model_id}",
    "Inference tasks: a model's latest deployment task",
    role="viewer",
    answers=_TASK,
    errors=_READ_ERRORS,
)
async def get_model_deploy_status(request: web.Request) -> web.Response:
    require(request, "viewer")
    return await _answer(request, _latest(request, TASK_DEPLOY))


@routes.get(
    "/delete/{task_id}",
    "Inference tasks: one deletion task",
    role="viewer",
    answers=_TASK,
    errors=_READ_ERRORS,
)
async def get_delete_task(request: web.Request) -> web.Response:
    require(request, "viewer")
    return await _answer(request, _task(request, TASK_DELETE))


@routes.get(
    "/delete-status/{model_id}",
    "Inference tasks: a model's latest deletion task",
    role="viewer",
    answers=_TASK,
    errors=_READ_ERRORS,
)
async def get_model_delete_status(request: web.Request) -> web.Response:
    require(request, "viewer")
    return await _answer(request, _latest(request, TASK_DELETE))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
