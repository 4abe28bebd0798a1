"""The native write routes: put and delete one object's document, and follow the write.

``PUT /api/v1/objects/{kind}/{name}`` takes the object's whole document, as YAML or JSON
(JSON is read as the YAML it also is); ``DELETE`` removes it. Both need the editor role
and answer 202 with the commit (or review branch) and a task id;
``GET /api/v1/tasks/{id}`` reports how far the daemon got with that commit. The Git side
is :mod:`reconciler.api.writes`.
"""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web

from reconciler.api.problems import BadRequest, NotFound, Unprocessable
from reconciler.api.shapes import native as shapes
from reconciler.api.shapes.registry import JSON, Answer, Body, RouteTable
from reconciler.api.state import VIEW, WRITES, answer, require
from reconciler.api.writes import API_TASK_WRITE, follow_write
from reconciler.engine.records import ApiTaskRecord
from reconciler.specs.registry import KINDS

routes = RouteTable()
_ACCEPTED = {202: Answer("committed (or pushed as a review branch)", shapes.WriteAccepted)}


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise NotFound(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    return kind


async def _document(request: web.Request, kind: str, name: str) -> dict[str, Any]:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise BadRequest(f"the request body is not valid YAML or JSON{at}") from None
    if not isinstance(value, dict):
        raise Unprocessable("the request body must be one object document (a mapping)")
    if value.get("kind") != kind:
        raise Unprocessable(f"kind: the document's kind must be {kind!r}, as in the path")
    metadata = value.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("name") != name:
        raise Unprocessable(f"metadata.name: the document's name must be {name!r}, as in the path")
    return value


def write_task(task: ApiTaskRecord) -> shapes.WriteTask:
    payload = task.payload
    written = task.result or {}
    return shapes.WriteTask(
        id=task.id,
        status=task.status,
        action=payload.get("action"),
        object=f"{payload.get('kind')}/{payload.get('name')}",
        path=written.get("path"),
        mode=payload.get("mode"),
        commit=written.get("commit"),
        branch=written.get("branch"),
        requested_by=payload.get("requested_by"),
        result=dict(task.result) if task.result is not None else None,
    )


@routes.put(
    "/api/v1/objects/{kind}/{name}",
    "Commit the object's whole document (YAML or JSON) to Git",
    role="editor",
    body=Body({JSON: dict[str, Any], "application/yaml": str}),
    answers=_ACCEPTED,
    errors=(400, 401, 403, 404, 409, 413, 422, 503),
)
async def put_object(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    kind, name = _kind(request), request.match_info["name"]
    document = await _document(request, kind, name)
    store = request.app[VIEW].store
    outcome = await request.app[WRITES].put(
        store=store, caller=caller, kind=kind, name=name, document=document
    )
    request.app[VIEW].trigger(reason="api write", expect=(f"{kind}/{name}",))
    return answer(request, shapes.WriteAccepted.model_validate(outcome.json()), status=202)


@routes.delete(
    "/api/v1/objects/{kind}/{name}",
    "Commit the removal of the object's document from Git",
    role="editor",
    answers=_ACCEPTED,
    errors=(401, 403, 404, 409, 503),
)
async def delete_object(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    kind, name = _kind(request), request.match_info["name"]
    store = request.app[VIEW].store
    outcome = await request.app[WRITES].delete(store=store, caller=caller, kind=kind, name=name)
    request.app[VIEW].trigger(reason="api write", expect=(f"{kind}/{name}",))
    return answer(request, shapes.WriteAccepted.model_validate(outcome.json()), status=202)


@routes.get(
    "/api/v1/tasks/{id}",
    "A write's task: its commit and how far the daemon got with it",
    role="viewer",
    answers={200: Answer("the task", shapes.WriteTask)},
    errors=(401, 403, 404, 503),
)
async def get_task(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    task = view.store.get_api_task(request.match_info["id"])
    if task is None or task.kind != API_TASK_WRITE:
        raise NotFound(f"no write task {request.match_info['id']!r}")
    task = await follow_write(task, view=view, writer=request.app[WRITES].writer)
    return answer(request, write_task(task))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
