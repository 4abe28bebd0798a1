"""The native routes: health, status, objects, plans, sync, executions, workflows, steps.

Reads need the viewer role, sync/start/cancel the operator role (see
:mod:`reconciler.api.auth`). Lists page with ``limit`` and ``offset``; ``/objects`` also
with ``continue`` (the ``kind/name`` the previous page ended with: items after it),
which stays correct while objects come and go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.api import project_access
from reconciler.api.documents import (
    API_TASK_WORKFLOW_RUN,
    execution_of,
    object_summary,
    status_of,
)
from reconciler.api.problems import BadRequest, Conflict, NotFound
from reconciler.api.shapes import native as shapes
from reconciler.api.shapes.common import Problem, parse
from reconciler.api.shapes.registry import Answer, RouteTable, json_body
from reconciler.api.state import VIEW, answer, cached_json, require
from reconciler.api.state import json_body as read_json
from reconciler.core.plan_render import plan_to_json
from reconciler.core.step_types import catalogue_entries
from reconciler.engine.records import (
    FINISHED_EXECUTION,
    UNFINISHED_EXECUTION,
    ExecutionRecord,
    ExecutionStatus,
)
from reconciler.specs.registry import KINDS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
LAST_EXECUTIONS = 5
_ORDERED_STATUSES: tuple[ExecutionStatus, ...] = tuple(
    sorted(FINISHED_EXECUTION | UNFINISHED_EXECUTION)
)
EXECUTION_STATUSES: frozenset[str] = frozenset(_ORDERED_STATUSES)

routes = RouteTable()
_AUTH = (401, 403)


# --- query helpers ----------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"query parameter {name!r} must be a whole number from {low} to {high}")
    return int(text)


def _paging(request: web.Request) -> tuple[int, int]:
    limit = _int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = _int_param(request, "offset", 0, low=0, high=10**9)
    return limit, offset


def _label_filters(request: web.Request) -> list[tuple[str, str | None]]:
    filters: list[tuple[str, str | None]] = []
    for item in request.query.getall("label", []):
        key, sep, value = item.partition("=")
        if not key:
            raise BadRequest("query parameter 'label' is KEY or KEY=VALUE")
        filters.append((key, value if sep else None))
    return filters


def _trigger_index(request: web.Request) -> dict[str, str]:
    store = request.app[VIEW].store
    index: dict[str, str] = {}
    for task in store.list_api_tasks(kind=API_TASK_WORKFLOW_RUN):
        execution_id = task.payload.get("execution_id")
        if isinstance(execution_id, str):
            index[execution_id] = str(task.payload.get("trigger") or "api")
    return index


def _trigger(record: ExecutionRecord, index: Mapping[str, str]) -> str:
    return index.get(record.id, "on_change")


# --- health ------------------------------------------------------------------------------


@routes.get(
    "/healthz",
    "Liveness: the event loop answers",
    role=None,
    answers={200: Answer("alive", shapes.Health)},
)
async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return answer(request, shapes.Health(status="ok"))


@routes.get(
    "/readyz",
    "Readiness: first load done and the store writable",
    role=None,
    answers={
        200: Answer("ready", shapes.Readiness),
        503: Answer("not ready, and why", shapes.Readiness),
    },
)
async def readyz(request: web.Request) -> web.Response:
    """Ready: the first load is done and the store takes writes."""
    readiness = request.app[VIEW].readiness()
    body = shapes.Readiness(
        ready=readiness.ready,
        loaded=readiness.loaded,
        store_writable=readiness.store_writable,
        detail=readiness.detail,
    )
    return answer(request, body, status=200 if readiness.ready else 503)


# --- status and objects ------------------------------------------------------------------


@routes.get(
    "/api/v1/status",
    "The daemon: source, object counts, queue",
    role="viewer",
    answers={200: Answer("the daemon's view", shapes.Status)},
    errors=_AUTH,
)
async def status(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    source = view.source()
    records = view.store.list_objects()
    phases: dict[str, int] = {}
    for record in records:
        phase = (status_of(record) or {}).get("phase") or record.phase or "Pending"
        phases[str(phase)] = phases.get(str(phase), 0) + 1
    unfinished = view.store.list_executions(statuses=UNFINISHED_EXECUTION, limit=-1)
    readiness = view.readiness()
    body = shapes.Status(
        ready=readiness.ready,
        source=shapes.SourceState(
            url=source.url,
            branch=source.branch,
            last_seen_revision=source.last_seen_revision,
            last_applied_revision=source.last_applied_revision,
            status=dict(source.status) if source.status else None,
        ),
        objects=shapes.ObjectCounts(
            in_git=len(view.desired()), recorded=len(records), by_phase=phases
        ),
        executions=shapes.QueueCounts(
            queued=sum(1 for r in unfinished if r.status == "queued"),
            running=sum(1 for r in unfinished if r.status == "running"),
        ),
    )
    return answer(request, body)


def _kind_param(request: web.Request) -> str | None:
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    return kind


@routes.get(
    "/api/v1/objects",
    "Objects in Git or recorded by the daemon, sorted by kind/name",
    role="viewer",
    query=shapes.ObjectsQuery,
    answers={200: Answer("a page", shapes.ObjectPage)},
    errors=(400, *_AUTH),
)
async def list_objects(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    kind = _kind_param(request)
    phase = request.query.get("phase")
    labels = _label_filters(request)
    limit, offset = _paging(request)
    after = request.query.get("continue")
    desired = view.desired()
    records = {record.key: record for record in view.store.list_objects(kind=kind)}
    keys = sorted({k for k in desired if kind is None or k.split("/", 1)[0] == kind} | set(records))
    items: list[shapes.ObjectSummary] = []
    for key in keys:
        object_kind, name = key.split("/", 1)
        summary = object_summary(object_kind, name, state=desired.get(key), record=records.get(key))
        if phase is not None and summary.phase != phase:
            continue
        if any(
            summary.labels.get(k) != v if v is not None else k not in summary.labels
            for k, v in labels
        ):
            continue
        items.append(summary)
    if after is not None:
        items = [i for i in items if f"{i.kind}/{i.name}" > after]
    total = len(items)
    page = items[offset : offset + limit]
    more = offset + limit < total
    next_token = f"{page[-1].kind}/{page[-1].name}" if more else None
    body = shapes.ObjectPage(
        items=page, total=total, limit=limit, offset=offset, continue_=next_token
    )
    return answer(request, body)


@routes.get(
    "/api/v1/objects/{kind}/{name}",
    "One object: spec, status, conditions, last executions",
    role="viewer",
    answers={200: Answer("the object", shapes.ObjectDetail)},
    errors=(*_AUTH, 404),
)
async def get_object(request: web.Request) -> web.Response:
    require(request, "viewer")

    async def build() -> dict[str, Any]:
        kind, name = request.match_info["kind"], request.match_info["name"]
        return _object_detail(request, kind, name).as_json()

    return await cached_json(request, build)


@routes.get(
    "/api/v1/objects/{kind}/{name}/explain",
    "Why the object is where it is: its reason and what to do, what it waits for (and "
    "what that waits for), its last execution's steps and logs",
    role="viewer",
    answers={200: Answer("the explanation", shapes.Explanation)},
    errors=(*_AUTH, 404),
)
async def explain_object(request: web.Request) -> web.Response:
    """Why an object is where it is, what it waits for, what to do (reconciler explain)."""
    require(request, "viewer")
    key = f"{request.match_info['kind']}/{request.match_info['name']}"
    found = request.app[VIEW].explain(key)
    if found is None:
        raise NotFound(f"no object {key}: it is neither in Git nor recorded by the daemon")
    return answer(request, shapes.Explanation.model_validate(dict(found)))


def _object_detail(request: web.Request, kind: str, name: str) -> shapes.ObjectDetail:
    view = request.app[VIEW]
    key = f"{kind}/{name}"
    state = view.desired().get(key)
    record = view.store.get_object(kind, name)
    if state is None and record is None:
        raise NotFound(f"no object {key}: it is neither in Git nor recorded by the daemon")
    status_document = status_of(record)
    applied = record.status.get("applied") if record else None
    document = state.document if state is not None else applied
    spec = document.get("spec") if isinstance(document, Mapping) else None
    index = _trigger_index(request)
    executions = view.store.list_executions(kind=kind, name=name, limit=LAST_EXECUTIONS)
    metadata = document.get("metadata") if isinstance(document, Mapping) else None
    return shapes.ObjectDetail(
        **dict(object_summary(kind, name, state=state, record=record)),
        spec=dict(spec) if isinstance(spec, Mapping) else None,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
        spec_hash=state.spec_hash if state is not None else None,
        applied_hash=record.spec_hash if record else None,
        applied_revision=record.revision if record else None,
        status=status_document,
        conditions=(status_document or {}).get("conditions") or [],
        last_executions=[
            execution_of(r, trigger=_trigger(r, index), steps=view.store.get_steps(r.id))
            for r in executions
        ],
    )


# --- plan and sync -----------------------------------------------------------------------


@routes.get(
    "/api/v1/plan",
    "The plan of a branch or commit against what is applied",
    role="viewer",
    query=shapes.PlanQuery,
    answers={
        200: Answer("the plan", shapes.PlanResult),
        422: Answer(
            "the ref does not validate, or is not a ref name",
            shapes.PlanResult,
            more={"application/problem+json": Problem},
        ),
    },
    errors=(*_AUTH, 404, 503),
)
async def plan(request: web.Request) -> web.Response:
    require(request, "viewer")
    ref = request.query.get("ref")
    if ref == "":
        raise BadRequest("query parameter 'ref' is empty; leave it out for the watched branch")
    planned = await request.app[VIEW].plan_for(ref)
    body = shapes.PlanResult(
        ref=planned.ref,
        revision=planned.revision,
        valid=planned.plan is not None,
        diagnostics=list(planned.diagnostics),
        plan=None
        if planned.plan is None
        else plan_to_json(planned.plan, base="applied", head=planned.revision),
    )
    return answer(request, body, status=200 if planned.plan is not None else 422)


@routes.post(
    "/api/v1/sync",
    "Reconcile now (all, or naming one object); reruns failed chains",
    role="operator",
    body=json_body(shapes.SyncRequest, required=False),
    answers={202: Answer("a cycle is due", shapes.SyncAccepted)},
    errors=(400, *_AUTH, 404, 413, 422),
)
async def sync(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    asked = parse(shapes.SyncRequest, await read_json(request))
    target: str | None = None
    if isinstance(asked.kind, str) and isinstance(asked.name, str):
        target = f"{asked.kind}/{asked.name}"
        if target not in view.desired() and view.store.get_object(asked.kind, asked.name) is None:
            raise NotFound(f"no object {target}")
        view.resync_object(target)  # this object only, before any other work
    else:
        view.trigger(reason=f"api sync by {caller.name}", resync=True)
    return answer(request, shapes.SyncAccepted(triggered=True, object=target), status=202)


# --- executions, workflows, steps ----------------------------------------------------------


@routes.get(
    "/api/v1/executions",
    "Executions, newest first",
    role="viewer",
    query=shapes.ExecutionsQuery,
    answers={200: Answer("a page", shapes.ExecutionPage)},
    errors=(400, *_AUTH),
)
async def list_executions(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    limit, offset = _paging(request)
    kind = _kind_param(request)
    name = request.query.get("name")
    statuses = request.query.getall("status", [])
    bad = [s for s in statuses if s not in EXECUTION_STATUSES]
    if bad:
        raise BadRequest(
            f"unknown status {bad[0]!r}; known: {', '.join(sorted(EXECUTION_STATUSES))}"
        )
    chosen = [s for s in _ORDERED_STATUSES if s in statuses] or None
    records = view.store.list_executions(
        kind=kind, name=name, statuses=chosen, limit=limit, offset=offset
    )
    index = _trigger_index(request)
    items = [execution_of(r, trigger=_trigger(r, index)) for r in records]
    return answer(request, shapes.ExecutionPage(items=items, limit=limit, offset=offset))


@routes.get(
    "/api/v1/executions/{id}",
    "One execution with its steps and their logs",
    role="viewer",
    query=shapes.ExecutionQuery,
    answers={200: Answer("the execution", shapes.Execution)},
    errors=(*_AUTH, 404),
)
async def get_execution(request: web.Request) -> web.Response:
    require(request, "viewer")
    store = request.app[VIEW].store
    record = store.get_execution(request.match_info["id"])
    logs = request.query.get("logs", "true") != "false"
    body = execution_of(
        record,
        trigger=_trigger(record, _trigger_index(request)),
        steps=store.get_steps(record.id),
        logs=logs,
    )
    return answer(request, body)


@routes.post(
    "/api/v1/executions/{id}/cancel",
    "Cancel at the next step boundary",
    role="operator",
    answers={202: Answer("cancelling", shapes.Cancelling)},
    errors=(*_AUTH, 404, 409),
)
async def cancel_execution(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    execution_id = request.match_info["id"]
    record = view.store.get_execution(execution_id)
    project_access.authorize_object(caller, "execute", record.object_key, desired=view.desired())
    report = view.cancel(record.id)
    if not report.accepted:
        final = view.store.get_execution(record.id)
        raise Conflict(f"execution {record.id} already finished ({final.status})")
    return answer(request, shapes.Cancelling.model_validate(report.as_json()), status=202)


_RUN_ERRORS = (400, *_AUTH, 404, 409, 413, 422, 503)


@routes.post(
    "/api/v1/workflows/{name}/executions",
    "Run a Workflow's provision graph now (trigger api)",
    role="operator",
    body=json_body(shapes.RunRequest, required=False),
    answers={201: Answer("started", shapes.Execution)},
    errors=_RUN_ERRORS,
)
async def start_workflow(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    name = request.match_info["name"]
    asked = parse(shapes.RunRequest, await read_json(request))
    project_access.authorize_object(caller, "execute", f"Workflow/{name}", desired=view.desired())
    execution_id = view.start_workflow(
        name=name, params=dict(asked.params or {}), requested_by=caller.name
    )
    record = view.store.get_execution(execution_id)
    document = execution_of(record, trigger="api", steps=view.store.get_steps(record.id))
    location = f"/api/v1/executions/{record.id}"
    return answer(request, document, status=201, headers={"Location": location})


@routes.post(
    "/api/v1/workflows/{name}/deprovision",
    "Deprovision a Workflow that stays in Git: its deprovision graph, or the undo of what "
    "its last provision made (trigger api)",
    role="operator",
    body=json_body(shapes.DeprovisionRequest, required=False),
    answers={202: Answer("deprovision started", shapes.Execution)},
    errors=_RUN_ERRORS,
)
async def deprovision_workflow(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    name = request.match_info["name"]
    parse(shapes.DeprovisionRequest, await read_json(request))
    project_access.authorize_object(caller, "execute", f"Workflow/{name}", desired=view.desired())
    execution_id = view.deprovision_workflow(name=name, requested_by=caller.name)
    record = view.store.get_execution(execution_id)
    document = execution_of(record, trigger="api", steps=view.store.get_steps(record.id))
    location = f"/api/v1/executions/{record.id}"
    return answer(request, document, status=202, headers={"Location": location})


@routes.get(
    "/api/v1/steps",
    "The step catalogue, and which types this build runs",
    role="viewer",
    answers={200: Answer("the catalogue", shapes.StepCatalogue)},
    errors=_AUTH,
)
async def steps(request: web.Request) -> web.Response:
    require(request, "viewer")
    implemented = request.app[VIEW].implemented_step_types()
    items = [
        shapes.CatalogueEntry(**entry, implemented=entry["name"] in implemented)
        for entry in catalogue_entries(workflow_only=False)
    ]
    return answer(request, shapes.StepCatalogue(items=items))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
