"""The workflow dashboard's API (reference: workflow-dashboard-api.md) over our Workflows.

A dashboard workflow is one Workflow object, its id the Workflow's name. Reads come from
the last validated revision and the store; ``/execute`` starts the provision graph
through the daemon view (trigger ``api``; ``environment`` picks which of the workflow's
environments the run targets), and executions, step logs and cancel map onto our
executions. Statuses in that API's words: a workflow is ``active`` unless suspended;
an execution is ``running`` (queued or running), ``completed``, ``failed`` (failed or
stalled) or ``cancelled`` (cancelled or superseded). Create, update and delete become
Git commits through :mod:`reconciler.api.writes` (editor role); the body fields and the
spec fields they set (environmentStrategy, traceLevel, options...) are in
:mod:`~reconciler.api.compat.workflow_dashboard_fields`, and a field our Workflow has no
place for is a 422 naming it, never silently dropped.

The detail: ``creator`` and ``createdAt`` are the author and date of the commit that
first added the workflow's file to the watched branch; ``config`` has the run settings,
``computeProfile`` and ``resources`` derived from the graph
(:mod:`~reconciler.api.compat.workflow_dashboard_resources`), ``notifications`` (which
of email, slack, webhook get its events) and ``notificationEvents``; ``options``,
``traceLevel`` and ``environmentStrategy`` are read back as create and update take them.
Step logs are served as the workflow's ``config.logs`` keeps them.

Create and update also take ``workflows`` (the graphs, in our Workflow's own shape) and
``user_params``. The dashboard's create body carries no graph, yet a Workflow must have a
provision graph to be valid, so a workflow created without one is written suspended
(``inactive``) with a one-step ``noop`` provision graph and the annotation
``reconciler/dashboard-graph: none``: it is listed, cannot run (a suspended workflow is
refused by execute), shows no steps, and cannot be made ``active`` until an update gives
it ``workflows``, which also drops the annotation.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from reconciler.api import project_access
from reconciler.api.compat import workflow_dashboard_fields as fields
from reconciler.api.compat import workflow_dashboard_resources as resources
from reconciler.api.compat import workflow_dashboard_shapes as shapes
from reconciler.api.documents import API_TASK_WORKFLOW_RUN, stamp
from reconciler.api.problems import BadRequest, Conflict, NotFound, Unprocessable
from reconciler.api.shapes.common import parse
from reconciler.api.shapes.registry import Answer, RouteTable, json_body
from reconciler.api.state import VIEW, WRITES, answer, cached_json, require
from reconciler.api.state import json_body as read_json
from reconciler.api.view import DaemonView
from reconciler.core import run_targets
from reconciler.core.diff import ObjectState
from reconciler.engine.records import ExecutionRecord, ExecutionStatus, StepRecord
from reconciler.engine.step_logs import LogPolicy, policy_of
from reconciler.engine.store import Store
from reconciler.specs.common import DNS_LABEL_PATTERN

PAGE_SIZE = 10
PRIORITIES = fields.PRIORITIES
MAX_PAGE_SIZE = 1000
EXECUTION_STATUS: Mapping[str, str] = {
    "queued": "running",
    "running": "running",
    "succeeded": "completed",
    "failed": "failed",
    "stalled": "failed",
    "cancelled": "cancelled",
    "superseded": "cancelled",
}
OURS_FOR: Mapping[str, tuple[ExecutionStatus, ...]] = {
    "running": ("queued", "running"),
    "completed": ("succeeded",),
    "failed": ("failed", "stalled"),
    "cancelled": ("cancelled", "superseded"),
}
STEP_STATUS: Mapping[str, str] = {
    "pending": "pending",
    "running": "running",
    "done": "completed",
    "failed": "failed",
    "stalled": "failed",
    "skipped": "pending",
    "cancelled": "failed",
}
NAME_ANNOTATION = "reconciler/display-name"
"""A workflow's name as the dashboard shows it, when it is not its id (a DNS label)."""
GRAPH_ANNOTATION = "reconciler/dashboard-graph"
"""On a Workflow created through the dashboard without a graph: ``none`` until one is added."""
AWAITING_GRAPH = {"nodes": [{"id": "awaiting_graph", "type": "noop"}], "edges": []}
"""The provision graph of a workflow created without one: valid, and never run (suspended)."""
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
_LOG_LINE = re.compile(r"^(\S+T(\d\d:\d\d:\d\d)\S*) (INFO|WARNING|ERROR) (.*)$")

routes = RouteTable()
_WID = "/api/workflows/{workflowId}"
_EID = _WID + "/executions/{executionId}"


# --- shapes ------------------------------------------------------------------------------


def _duration(start: datetime.datetime | None, end: datetime.datetime | None) -> str | None:
    if start is None:
        return None
    finish = end or datetime.datetime.now(datetime.UTC)
    seconds = max(0, int((finish - start).total_seconds()))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _runs(store: Store) -> dict[str, Mapping[str, Any]]:
    """What the API recorded of the runs it started, by execution id."""
    return {
        str(task.payload.get("execution_id")): task.payload
        for task in store.list_api_tasks(kind=API_TASK_WORKFLOW_RUN)
    }


def _executor(record: ExecutionRecord, runs: Mapping[str, Mapping[str, Any]]) -> str:
    run = runs.get(record.id)
    return str(run.get("requested_by")) if run else "reconciler (on change)"


def _environment_of(view: DaemonView, state: ObjectState) -> dict[str, str]:
    """The environment each cluster a run of ``state`` may target is in."""
    clusters = {s.name: s for s in view.desired().values() if s.kind == "Cluster"}
    found = run_targets.candidates(run_targets.environments_of(state.spec), clusters)
    return {c.cluster: c.environment for c in found}


def _execution(
    record: ExecutionRecord,
    runs: Mapping[str, Mapping[str, Any]],
    environments: Mapping[str, str] | None = None,
) -> shapes.DashboardExecution:
    """One execution; ``environment`` and ``cluster`` say where it ran (the environment
    asked for, else the one of the cluster it targeted)."""
    start = record.started_at or record.created_at
    data = shapes.DashboardExecution(
        id=record.id,
        workflow_id=record.name,
        status=EXECUTION_STATUS[record.status],
        start_time=stamp(start),
        end_time=stamp(record.finished_at),
        duration=_duration(start, record.finished_at),
        executor=_executor(record, runs),
    )
    if record.error:
        data.error = record.error
    run = runs.get(record.id)
    cluster = record.chain.cluster
    environment = (run or {}).get("environment") or (environments or {}).get(cluster or "")
    if environment:
        data.environment = str(environment)
    if cluster:
        data.cluster = cluster
    return data


def _log_entries(text: str) -> list[shapes.DashboardLogLine]:
    entries: list[shapes.DashboardLogLine] = []
    for line in text.splitlines():
        found = _LOG_LINE.match(line)
        if found is None:
            if line.strip():
                entries.append(shapes.DashboardLogLine(timestamp="", level="info", message=line))
            continue
        entries.append(
            shapes.DashboardLogLine(
                timestamp=found.group(2), level=found.group(3).lower(), message=found.group(4)
            )
        )
    return entries


def _step_execution(step: StepRecord, kept: LogPolicy) -> shapes.DashboardStepExecution:
    """One step of an execution, with the log lines its Workflow keeps."""
    data = shapes.DashboardStepExecution(
        name=step.node_id,
        status=STEP_STATUS[step.status],
        start_time=stamp(step.started_at),
        end_time=stamp(step.finished_at),
        duration=_duration(step.started_at, step.finished_at),
        logs=_log_entries(kept.apply(step.logs)),
    )
    if step.error:
        data.error = step.error
    return data


def _executions_of(store: Store, name: str, **query: Any) -> list[ExecutionRecord]:
    records = store.list_executions(kind="Workflow", name=name, **query)
    return [r for r in records if r.action == "execute"]


def _display_name(state: ObjectState) -> str:
    return str(state.annotations.get(NAME_ANNOTATION) or state.name)


def _summary(state: ObjectState, store: Store) -> shapes.DashboardWorkflowSummary:
    spec = state.spec
    last = _executions_of(store, state.name, limit=20)
    return shapes.DashboardWorkflowSummary(
        id=state.name,
        name=_display_name(state),
        description=str(spec.get("description") or ""),
        status="inactive" if state.suspended else "active",
        priority=str(spec.get("priority") or "medium"),
        last_run=stamp(last[0].started_at or last[0].created_at) if last else None,
    )


def _config(state: ObjectState, view: DaemonView) -> shapes.DashboardConfig:
    """The reference's WorkflowConfig of a Workflow: its run settings, the compute its
    graph asks for, which notification channels its events go to and which events."""
    spec = state.spec
    config = spec.get("config") or {}
    profile, asked = resources.compute_of(spec, view.desired(), view.store)
    retrying = config.get("retry_enabled") is not False
    notifications = config.get("notifications") or {}
    data = shapes.DashboardConfig(
        timeout=config.get("timeout"),
        retries=int(config.get("retries") or 0) if retrying else 0,
        retry_delay=config.get("retry_delay") or "30s",
        compute_profile=profile,
        resources=shapes.DashboardResources(**asked),
        notifications=shapes.DashboardChannels(
            **fields.notified_channels(spec, view.notification_defaults())
        ),
        notification_events=[str(e) for e in notifications.get("events") or []],
    )
    schedule = config.get("schedule")
    if isinstance(schedule, Mapping):
        data.schedule = shapes.DashboardSchedule(
            type="cron",
            cron=schedule.get("cron"),
            description=f"cron {schedule.get('cron')} ({schedule.get('timezone') or 'UTC'})",
            skip_on_failure=bool(schedule.get("skip_on_failure")),
            catch_up=bool(schedule.get("catch_up")),
        )
    return data


async def _detail(state: ObjectState, view: DaemonView) -> shapes.DashboardWorkflow:
    """``creator`` and ``createdAt``: the author and time of the commit that first added
    the workflow's file (else of the commit its first execution ran at)."""
    store = view.store
    spec = state.spec
    runs = _executions_of(store, state.name, limit=20)
    latest_steps = {s.node_id: s for s in store.get_steps(runs[0].id)} if runs else {}
    graph = (spec.get("workflows") or {}).get("provision") or {}
    steps = []
    for node in [] if _awaits_graph(state) else graph.get("nodes") or []:
        step = latest_steps.get(str(node.get("id")))
        steps.append(
            shapes.DashboardStep(
                name=str(node.get("id")),
                status=STEP_STATUS[step.status] if step else "pending",
                duration=_duration(step.started_at, step.finished_at) if step else None,
            )
        )
    origin = await view.origin_of("Workflow", state.name)
    creator: str | None
    if origin is not None:
        creator, created = origin.author, stamp(origin.created_at.astimezone(datetime.UTC))
    else:
        first = store.list_executions(kind="Workflow", name=state.name, limit=1, oldest_first=True)
        creator = (await view.author_of(first[0].revision)) if first else None
        created = stamp(first[0].created_at) if first else None
    return shapes.DashboardWorkflow(
        **dict(_summary(state, store)),
        creator=creator,
        created_at=created,
        environments=[str(e) for e in spec.get("environments") or []],
        environment_strategy=spec.get("environment_strategy") or "ordered",
        trace_level=fields.trace_level_of(spec),
        options=shapes.DashboardOptionsState.model_validate(fields.options_of(spec)),
        tags=[str(t) for t in spec.get("tags") or []],
        steps=steps,
        config=_config(state, view),
    )


# --- routes ------------------------------------------------------------------------------


def _awaits_graph(state: ObjectState) -> bool:
    return state.annotations.get(GRAPH_ANNOTATION) == "none"


def _workflow(request: web.Request) -> ObjectState:
    name = request.match_info["workflowId"]
    state = request.app[VIEW].desired().get(f"Workflow/{name}")
    if state is None:
        raise NotFound(f"no workflow {name!r}")
    return state


def _number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"query parameter {name!r} must be a whole number from {low} to {high}")
    return int(text)


_AUTH = (401, 403)
_WRITE_ERRORS = (401, 403, 404, 409, 413, 422, 503)


@routes.get(
    "/api/workflows",
    "Workflow dashboard: workflows with status, priority, search, paging",
    role="viewer",
    query=shapes.WorkflowsQuery,
    answers={200: Answer("a page", shapes.DashboardWorkflowPage)},
    errors=_AUTH,
)
async def list_workflows(request: web.Request) -> web.Response:
    require(request, "viewer")
    status = request.query.get("status")
    priority = request.query.get("priority")
    search = (request.query.get("search") or "").lower()
    if status is not None and status not in ("active", "inactive"):
        raise BadRequest("status must be active or inactive")
    if priority is not None and priority not in PRIORITIES:
        raise BadRequest(f"priority must be one of {', '.join(PRIORITIES)}")
    page = _number(request, "page", 1, 1, 10**6)
    size = _number(request, "pageSize", PAGE_SIZE, 1, MAX_PAGE_SIZE)

    async def build() -> dict[str, Any]:
        view = request.app[VIEW]
        states = sorted(
            (s for k, s in view.desired().items() if k.startswith("Workflow/")),
            key=lambda s: s.name,
        )
        items = [_summary(s, view.store) for s in states]
        items = [
            i
            for i in items
            if (status is None or i.status == status)
            and (priority is None or i.priority == priority)
            and (not search or search in i.name.lower() or search in i.description.lower())
        ]
        start = (page - 1) * size
        return shapes.DashboardWorkflowPage(
            workflows=items[start : start + size], total=len(items), page=page, page_size=size
        ).as_json()

    return await cached_json(request, build)


@routes.get(
    _WID,
    "Workflow dashboard: one workflow",
    role="viewer",
    answers={200: Answer("the workflow", shapes.DashboardWorkflow)},
    errors=(*_AUTH, 404),
)
async def get_workflow(request: web.Request) -> web.Response:
    require(request, "viewer")

    async def build() -> dict[str, Any]:
        return (await _detail(_workflow(request), request.app[VIEW])).as_json()

    return await cached_json(request, build)


@routes.post(
    _WID + "/execute",
    "Workflow dashboard: run a workflow (trigger api)",
    role="operator",
    body=json_body(shapes.DashboardExecuteRequest, required=False),
    answers={201: Answer("started", shapes.DashboardExecuteAnswer)},
    errors=_WRITE_ERRORS,
)
async def execute(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    state = _workflow(request)
    asked = parse(shapes.DashboardExecuteRequest, await read_json(request))
    project_access.authorize_object(caller, "execute", state.key, desired=view.desired())
    execution_id = view.start_workflow(
        name=state.name,
        params=dict(asked.parameters or {}),
        requested_by=caller.name,
        environment=asked.environment,
    )
    record = view.store.get_execution(execution_id)
    durations = [
        (r.finished_at - r.started_at).total_seconds()
        for r in _executions_of(view.store, state.name, statuses=("succeeded",), limit=10)
        if r.started_at and r.finished_at
    ]
    estimate = None
    if durations:
        mean = int(sum(durations) / len(durations))
        estimate = f"{mean // 3600:02d}:{mean % 3600 // 60:02d}:{mean % 60:02d}"
    started = shapes.DashboardExecuteAnswer(
        execution_id=record.id,
        workflow_id=state.name,
        status=EXECUTION_STATUS[record.status],
        start_time=stamp(record.started_at or record.created_at),
        estimated_duration=estimate,
    )
    return answer(request, started, status=201)


@routes.get(
    _WID + "/executions",
    "Workflow dashboard: a workflow's executions, newest first",
    role="viewer",
    query=shapes.ExecutionsQuery,
    answers={200: Answer("a page", shapes.DashboardExecutionPage)},
    errors=(*_AUTH, 404),
)
async def list_executions(request: web.Request) -> web.Response:
    require(request, "viewer")
    status = request.query.get("status")
    if status is not None and status not in OURS_FOR:
        raise BadRequest(f"status must be one of {', '.join(OURS_FOR)}")
    limit = _number(request, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _number(request, "offset", 0, 0, 10**9)

    async def build() -> dict[str, Any]:
        state = _workflow(request)
        store = request.app[VIEW].store
        statuses = OURS_FOR[status] if status else None
        every = _executions_of(store, state.name, statuses=statuses, limit=-1)
        runs = _runs(store)
        places = _environment_of(request.app[VIEW], state)
        page = [_execution(r, runs, places) for r in every[offset : offset + limit]]
        return shapes.DashboardExecutionPage(
            executions=page, total=len(every), limit=limit, offset=offset
        ).as_json()

    return await cached_json(request, build)


def _own_execution(request: web.Request) -> ExecutionRecord:
    state = _workflow(request)
    execution_id = request.match_info["executionId"]
    record = request.app[VIEW].store.find_execution(execution_id)
    if record is None or record.object_key != state.key or record.action != "execute":
        raise NotFound(f"workflow {state.name!r} has no execution {execution_id!r}")
    return record


@routes.get(
    _EID,
    "Workflow dashboard: one execution with step logs",
    role="viewer",
    answers={200: Answer("the execution", shapes.DashboardExecution)},
    errors=(*_AUTH, 404),
)
async def get_execution(request: web.Request) -> web.Response:
    require(request, "viewer")

    async def build() -> dict[str, Any]:
        record = _own_execution(request)
        view = request.app[VIEW]
        state = _workflow(request)
        kept = policy_of(state.spec)
        found = _execution(record, _runs(view.store), _environment_of(view, state))
        found.step_executions = [_step_execution(s, kept) for s in view.store.get_steps(record.id)]
        found.parameters = dict(record.params)
        return found.as_json()

    return await cached_json(request, build)


@routes.post(
    _EID + "/cancel",
    "Workflow dashboard: cancel at the next step boundary",
    role="operator",
    answers={200: Answer("cancelling", shapes.DashboardCancel)},
    errors=(*_AUTH, 404, 409),
)
async def cancel(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    record = _own_execution(request)
    project_access.authorize_object(
        caller, "execute", record.object_key, desired=request.app[VIEW].desired()
    )
    report = request.app[VIEW].cancel(record.id)
    if not report.accepted:
        raise Conflict(f"execution {record.id} already finished ({record.status})")
    cancelling = shapes.DashboardCancel(
        success=True,
        message="Execution cancellation requested",
        detail=report.message(),
        execution_id=record.id,
        status="cancelling" if report.state == "cancelling" else "cancelled",
    )
    return answer(request, cancelling)


def _annotation_change(workflow_id: str, body: Mapping[str, Any]) -> dict[str, str | None]:
    """The annotations a body sets (None: removes): the display name, and adding a graph
    ends ``reconciler/dashboard-graph: none``. The id never changes."""
    notes: dict[str, str | None] = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise Unprocessable("name must be a non-empty string of at most 200 characters")
        notes[NAME_ANNOTATION] = None if name == workflow_id else name
    if "workflows" in body:
        notes[GRAPH_ANNOTATION] = None
    return notes


def workflow_id_for(name: str) -> str:
    """The Workflow name (a DNS label) a dashboard name gives: ``New ML Pipeline`` ->
    ``new-ml-pipeline``; 422 when nothing of it is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    if not slug or not _DNS_LABEL.fullmatch(slug):
        raise Unprocessable(
            f"name: {name!r} gives no workflow id (its letters and digits, joined by '-')"
        )
    return slug


def _notifications_reach_somewhere(
    view: DaemonView, name: str, body: Mapping[str, Any], spec: Mapping[str, Any]
) -> None:
    """``options.enableNotifications: true`` needs a channel: the workflow's own, or the
    daemon config's defaults; without one it could change nothing, so it is refused."""
    options = body.get("options")
    if not isinstance(options, Mapping) or options.get("enableNotifications") is not True:
        return
    if not fields.own_channels(spec) and not view.notification_defaults():
        raise Unprocessable(
            f"options.enableNotifications: workflow {name!r} names no notification channel "
            "(config.notifications webhook, slack or email) and the daemon config has no "
            "notifications.defaults; add a channel to its spec in Git first"
        )


def _created_document(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Workflow a create body asks for; 422 naming a field that has no place."""
    change = fields.spec_change(body, verb="create")
    name = body.get("name")
    if not isinstance(name, str):
        raise Unprocessable("name: required, the workflow's name")
    workflow_id = workflow_id_for(name)
    spec = change.apply({})
    fields.check_strategy(body, spec)
    notes = {k: v for k, v in _annotation_change(workflow_id, body).items() if v is not None}
    metadata: dict[str, Any] = {"name": workflow_id}
    if notes:
        metadata["annotations"] = notes
    if "workflows" not in spec:
        if spec.get("suspend") is False:
            raise Unprocessable(
                "status: a workflow created without a graph is inactive until an update "
                "gives it workflows"
            )
        spec["suspend"] = True
        spec["workflows"] = {"provision": AWAITING_GRAPH}
        metadata["annotations"] = {**notes, GRAPH_ANNOTATION: "none"}
    ordered = {f: spec[f] for f in fields.SPEC_ORDER if f in spec}
    return {"apiVersion": "reconciler/v1", "kind": "Workflow", "metadata": metadata,
            "spec": ordered}  # fmt: skip


@routes.post(
    "/api/workflows",
    "Workflow dashboard: create a workflow (a Git commit)",
    role="editor",
    body=json_body(shapes.DashboardCreateRequest),
    answers={201: Answer("committed", shapes.DashboardCreateAnswer)},
    errors=(401, 403, 409, 413, 422, 503),
)
async def create_workflow(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    body = await read_json(request)
    document = _created_document(body)
    name = document["metadata"]["name"]
    _notifications_reach_somewhere(view, name, body, document["spec"])
    if f"Workflow/{name}" in view.desired():
        raise Conflict(f"workflow {name!r} exists; update it with PUT /api/workflows/{name}")
    outcome = await request.app[WRITES].create(
        store=view.store, caller=caller, kind="Workflow", name=name, document=document
    )
    view.trigger(reason="api write")
    spec = document["spec"]
    created = shapes.DashboardCreateAnswer(
        id=name,
        name=body["name"],
        description=str(spec.get("description") or ""),
        status="inactive" if spec.get("suspend") else "active",
        priority=str(spec.get("priority") or "medium"),
        creator=caller.name,
        created_at=stamp(outcome.task.created_at),
        commit=outcome.commit,
        branch=outcome.branch,
        task_id=outcome.task.id,
    )
    return answer(request, created, status=201)


@routes.put(
    _WID,
    "Workflow dashboard: update a workflow (a Git commit)",
    role="editor",
    body=json_body(shapes.DashboardUpdateRequest, required=False),
    answers={200: Answer("committed", shapes.DashboardUpdateAnswer)},
    errors=_WRITE_ERRORS,
)
async def update_workflow(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    state = _workflow(request)
    body = await read_json(request)
    change = fields.spec_change(body, verb="update")
    notes = _annotation_change(state.name, body)
    spec = change.apply(state.spec)
    fields.check_strategy(body, spec)
    _notifications_reach_somewhere(view, state.name, body, spec)
    adds_graph = "workflows" in change.fields
    if _awaits_graph(state) and change.fields.get("suspend") is False and not adds_graph:
        raise Unprocessable(
            f"status: workflow {state.name!r} has no graph yet; give workflows in the same "
            "update to make it active"
        )

    def edit(document: dict[str, Any]) -> dict[str, Any]:
        spec = document.get("spec")
        changed = {**document, "spec": change.apply(spec if isinstance(spec, dict) else {})}
        metadata = document.get("metadata")
        if notes and isinstance(metadata, dict):
            kept = dict(metadata.get("annotations") or {})
            kept.update(notes)
            annotations = {k: v for k, v in kept.items() if v is not None}
            changed["metadata"] = {**metadata, "annotations": annotations}
            if not annotations:
                del changed["metadata"]["annotations"]
        return changed

    outcome = await request.app[WRITES].update(
        store=view.store, caller=caller, kind="Workflow", name=state.name, change=edit
    )
    view.trigger(reason="api write")
    updated = shapes.DashboardUpdateAnswer(
        id=state.name,
        name=body.get("name", _display_name(state)),
        description=str(spec.get("description") or ""),
        status="inactive" if spec.get("suspend") else "active",
        priority=str(spec.get("priority") or "medium"),
        updated_at=stamp(outcome.task.updated_at),
        commit=outcome.commit,
        branch=outcome.branch,
        task_id=outcome.task.id,
    )
    return answer(request, updated)


@routes.delete(
    _WID,
    "Workflow dashboard: delete a workflow (a Git commit)",
    role="editor",
    answers={200: Answer("committed", shapes.DashboardDeleteAnswer)},
    errors=(401, 403, 404, 409, 503),
)
async def delete_workflow(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    state = _workflow(request)
    outcome = await request.app[WRITES].delete(
        store=view.store, caller=caller, kind="Workflow", name=state.name
    )
    view.trigger(reason="api write")
    deleted = shapes.DashboardDeleteAnswer(
        success=True,
        message="Workflow deleted successfully",
        commit=outcome.commit,
        branch=outcome.branch,
        task_id=outcome.task.id,
    )
    return answer(request, deleted)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
