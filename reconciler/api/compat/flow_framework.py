"""The flow framework's workflow API (reference: flow-framework-create-workflow.txt).

``/_plugins/_flow_framework/workflow``: create (JSON, or YAML by Content-Type), update,
get, delete, ``_provision``, ``_deprovision``, ``_status``, ``_steps`` and ``_search``,
with that API's field names and shapes over our Workflows.

Ids: a template becomes one Workflow object and its ``workflow_id`` is the Workflow's
name. The template's name is free text, so the id is that name as a DNS label with a
random suffix, as that API generates ids: a create never replaces another workflow, and
the Workflow file (``workflows/<id>.yaml``) says which template it holds. Create, update
and delete are Git commits through :mod:`reconciler.api.writes` authored by the caller's
token name (editor); provision and deprovision start runs through the daemon view
(operator); reads need viewer. A template is read back from the last validated revision,
so a workflow just created answers 404 until the daemon has loaded its commit.

Drafts (``?validation=none``, or any value but ``all``, on create): a template the repo
would reject is not committed, since one invalid file would stop the whole repo from
being applied. It is kept in the daemon's state store instead (one key of its value
table), credentials already taken out, and served by get, ``_status`` (NOT_STARTED) and
``_search``; it can be updated and deleted, and an update that validates commits it and
drops the draft. A draft cannot be provisioned. A template that validates is committed
whatever ``validation`` says.

Secrets: each literal connector credential goes to the secret store under a fresh name
once the commit (or draft) naming it is saved, and only the name reaches Git or the
state store; a value given at provision time for a credential ``${{ param }}`` goes
there too, and the run gets the secret's name. Every such name starts with the workflow's
id and a dot; DELETE removes those secrets from the secrets dir with the workflow (at once
for a draft or a commit to the watched branch; a review branch leaves them for its merge).

Provisioning state and ``resources_created`` come from
:mod:`reconciler.daemon.provisioning` over the store (see
:mod:`~reconciler.api.compat.flow_framework_records`, which also keeps the drafts).
Update is refused (409) unless the state is NOT_STARTED, as that API refuses it;
provision is refused while PROVISIONING or COMPLETED (a FAILED one may run again).
Errors are our problem documents (the reference shows none of its own); a template or a
value that fails validation answers 400, as that API does (elsewhere in our API, 422).
Edges that ``previous_node_inputs`` imply are added to the stored template, as that API
adds them.
Deleting a Workflow from Git undoes what its last provision made (its delete chain).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from reconciler.api import project_access
from reconciler.api.auth import Caller
from reconciler.api.compat import flow_framework_records as ff_records
from reconciler.api.compat import flow_framework_requests as ff_requests
from reconciler.api.compat import flow_framework_search as ff_search
from reconciler.api.compat import flow_framework_shapes as shapes
from reconciler.api.compat import flow_framework_template as ff_template
from reconciler.api.compat.flow_framework_shapes import BASE, ID_PATTERN
from reconciler.api.documents import stamp
from reconciler.api.problems import BadRequest, Conflict, NotFound, Unavailable, Unprocessable
from reconciler.api.shapes.common import Scalar
from reconciler.api.shapes.registry import JSON, Answer, Body, RouteTable, json_body
from reconciler.api.state import VIEW, WRITES, answer, cached_json, json_response, require
from reconciler.api.state import json_body as read_json
from reconciler.api.view import DaemonView, ViewError
from reconciler.api.writes import WriteOutcome
from reconciler.core.diff import ObjectState
from reconciler.core.step_types import CATALOGUE, WORKFLOW_STEP_TYPES

_ONE = BASE + "/{workflow_id}"
_ID = {"workflow_id": ID_PATTERN}
APPLY_WAIT_S = 20.0
"""How long ``?provision=true`` (and ``_provision``) wait for the daemon to apply the
Workflow's commit before starting its provision graph."""

routes = RouteTable()
_TEMPLATE = Body({JSON: shapes.FlowTemplateRequest, "application/yaml": shapes.FlowTemplateRequest})
_SEARCH: dict[str, Any] = {
    "role": "viewer",
    "body": json_body(shapes.FlowSearchRequest, required=False),
    "answers": {200: Answer("the hits", shapes.FlowSearchAnswer)},
    "errors": (400, 401, 403, 413),
}
_SEARCH_SUMMARY = (
    "Flow framework: search templates (match_all, match, term, terms, prefix, ids, bool; "
    "from, size)"
)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _validation_is_400(handler: _Handler) -> _Handler:
    """That API answers 400 to a template or a value that fails validation, where the
    rest of ours answers 422: the same problem, with that API's status."""

    @functools.wraps(handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Unprocessable as exc:
            raise BadRequest(exc.detail, headers=exc.headers, extra=exc.extra) from exc

    return handle


# --- parts -------------------------------------------------------------------------------


def _committed(view: DaemonView, workflow_id: str) -> ObjectState | None:
    return view.desired().get(f"Workflow/{workflow_id}")


def _find(view: DaemonView, workflow_id: str) -> tuple[ObjectState | None, dict[str, Any] | None]:
    """The workflow in Git, or else its draft; 404 when neither."""
    state = _committed(view, workflow_id)
    if state is not None:
        return state, None
    draft = ff_records.drafts(view.store).get(workflow_id)
    if draft is None:
        raise NotFound(f"no workflow {workflow_id!r}")
    return None, draft


async def _store_secrets(
    view: DaemonView,
    found: list[ff_template.InlineSecret],
    *,
    written: WriteOutcome | None = None,
) -> None:
    """Put the values taken out of a template into the secret store, once what names them
    is saved (``written``: the commit that does)."""
    for secret in found:
        try:
            await asyncio.to_thread(
                view.store_secret, name=secret.name, value=secret.value, replace=True
            )
        except ViewError as exc:
            if written is None:
                raise
            raise Unavailable(
                f"commit {written.commit[:12]} names secret {secret.name!r}, which could not "
                f"be stored: {exc}; put the value there on the daemon host, or send the "
                "template again once the secret store takes writes"
            ) from exc


def _written(outcome: WriteOutcome) -> dict[str, Any]:
    return {"commit": outcome.commit, "branch": outcome.branch, "task_id": outcome.task.id}


async def _applied(view: DaemonView, workflow_id: str, document: Mapping[str, Any]) -> None:
    """Wait until the daemon runs ``document`` as Workflow ``workflow_id``."""
    deadline = time.monotonic() + APPLY_WAIT_S
    spec = document.get("spec")
    while True:
        state = _committed(view, workflow_id)
        recorded = view.store.get_object("Workflow", workflow_id)
        if (
            state is not None
            and recorded is not None
            and recorded.spec_hash == state.spec_hash
            and (spec is None or _same_graphs(state.spec, spec))
        ):
            return
        if time.monotonic() >= deadline:
            raise Conflict(
                f"workflow {workflow_id!r} is committed but the daemon has not applied it "
                f"within {APPLY_WAIT_S:.0f}s; call _provision once its object is Ready"
            )
        await asyncio.sleep(0.05)


def _same_graphs(applied: Mapping[str, Any], written: Mapping[str, Any]) -> bool:
    ours = applied.get("workflows") or {}
    theirs = written.get("workflows") or {}
    return all(
        [n.get("id") for n in (ours.get(k) or {}).get("nodes") or []]
        == [n.get("id") for n in (theirs.get(k) or {}).get("nodes") or []]
        for k in ff_template.GRAPHS
    )


async def _provision(
    request: web.Request, caller: Caller, workflow_id: str, params: Mapping[str, Any]
) -> str:
    """Start Workflow ``workflow_id``'s provision graph; its execution id."""
    view = request.app[VIEW]
    project_access.authorize_object(
        caller, "execute", f"Workflow/{workflow_id}", desired=view.desired()
    )
    state = _committed(view, workflow_id)
    if state is None:
        raise NotFound(f"no workflow {workflow_id!r}")
    current = ff_records.provisioning_state(view.store, workflow_id)
    if current in ("PROVISIONING", "COMPLETED"):
        raise Conflict(
            f"workflow {workflow_id!r} is {current}: it can be provisioned only while "
            "NOT_STARTED or FAILED (deprovision it first)"
        )
    ff_requests.check_declared(state.document, params)  # before any value is stored
    given: dict[str, Any] = {}
    secret_params = ff_template.credential_params(state.document)
    for name, value in params.items():
        if name in secret_params and isinstance(value, str) and value:
            secret = ff_template.param_secret_name(workflow_id, name)
            await _store_secrets(view, [ff_template.InlineSecret(name=secret, value=value)])
            given[name] = secret
        else:
            given[name] = value
    return view.start_workflow(name=workflow_id, params=given, requested_by=caller.name)


# --- routes: catalogue and search (before {workflow_id}) -----------------------------------


@routes.get(
    BASE + "/_steps",
    "Flow framework: the step types this daemon runs",
    role="viewer",
    query=shapes.StepsQuery,
    answers={200: Answer("the steps", shapes.FlowSteps)},
    errors=(400, 401, 403),
)
@_validation_is_400
async def get_steps(request: web.Request) -> web.Response:
    require(request, "viewer")
    implemented = request.app[VIEW].implemented_step_types()
    wanted = [name for name in WORKFLOW_STEP_TYPES if name in implemented]
    asked = request.query.get("workflow_step")
    if asked is not None:
        names = asked.split(",")
        unknown = [name for name in names if name not in WORKFLOW_STEP_TYPES]
        if unknown:
            raise BadRequest(
                f"workflow_step: no step type {unknown[0]!r} "
                f"(known: {', '.join(WORKFLOW_STEP_TYPES)})"
            )
        wanted = [name for name in wanted if name in names]

    async def build() -> dict[str, Any]:
        return {
            name: {
                "inputs": sorted(CATALOGUE[name].required),
                "optional_inputs": sorted(CATALOGUE[name].optional),
                "outputs": sorted(CATALOGUE[name].outputs),
                "required_plugins": [],  # that API's field; no step of ours needs a plugin
                "description": CATALOGUE[name].description,
            }
            for name in wanted
        }

    return await cached_json(request, build)


def _hits(view: DaemonView) -> list[ff_search.Hit]:
    hits = [
        ff_search.Hit(state.name, ff_template.to_template(state.document))
        for key, state in sorted(view.desired().items())
        if key.startswith("Workflow/")
    ]
    hits += [
        ff_search.Hit(workflow_id, draft["template"])
        for workflow_id, draft in sorted(ff_records.drafts(view.store).items())
    ]
    return hits


@routes.get(BASE + "/_search", _SEARCH_SUMMARY, **_SEARCH)
@routes.post(BASE + "/_search", _SEARCH_SUMMARY, **_SEARCH)
@_validation_is_400
async def search(request: web.Request) -> web.Response:
    require(request, "viewer")
    started = time.monotonic()
    body = await read_json(request)
    hits = _hits(request.app[VIEW])
    took = int((time.monotonic() - started) * 1000)
    found = ff_search.search(body, hits, took_ms=took)
    return answer(request, shapes.FlowSearchAnswer.model_validate(found))


# --- routes: one workflow ----------------------------------------------------------------


@routes.post(
    BASE,
    "Flow framework: create a workflow from a template (a Git commit, or a draft in the "
    "state store with validation=none)",
    description="Any other query parameter is a value for the template's ${{ name }} "
    "expression of that name, allowed with provision=true only.",
    role="editor",
    query=shapes.CreateQuery,
    open_query=True,
    body=_TEMPLATE,
    answers={201: Answer("created", shapes.FlowWritten)},
    errors=(400, 401, 403, 404, 409, 413, 503),
)
@_validation_is_400
async def create(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    provision = ff_requests.flag(request, "provision")
    validating = ff_requests.validating(request)
    params = ff_requests.substitutions(request, provision=provision)
    if provision and request.app[WRITES].mode == "branch":
        raise Conflict(
            "provision=true needs the workflow on the watched branch, but writes go to review "
            "branches (api.write_mode: branch); create it, merge it, then call _provision"
        )
    template = await ff_requests.template_body(request)
    ff_template.check_shape(template)
    template = ff_template.with_implied_edges(ff_template.own_fields(template))
    workflow_id = ff_template.new_workflow_id(str(template["name"]))
    scrubbed, found = ff_template.take_credentials(template, workflow_id=workflow_id)
    try:
        document = ff_template.to_document(scrubbed, workflow_id=workflow_id)
        ff_requests.check_declared(document, params)
        outcome = await request.app[WRITES].create(
            store=view.store, caller=caller, kind="Workflow", name=workflow_id, document=document
        )
    except Unprocessable as exc:
        if validating or provision:
            raise
        ff_requests.no_secret_values(scrubbed)
        ff_records.save_draft(
            view.store,
            workflow_id,
            {"template": scrubbed, "saved_by": caller.name, "problem": exc.detail,
             "saved_at": stamp(datetime.datetime.now(datetime.UTC))},
        )  # fmt: skip
        await _store_secrets(view, found)
        ff_records.note_written(view.store, workflow_id, by=caller.name, created=True)
        done = {"workflow_id": workflow_id, "draft": True, "problem": exc.detail}
        return json_response(request, done, status=201)
    await _store_secrets(view, found, written=outcome)
    ff_records.note_written(view.store, workflow_id, by=caller.name, created=True)
    view.trigger(reason="api write")
    done = {"workflow_id": workflow_id, **_written(outcome)}
    if provision:
        await _applied(view, workflow_id, document)
        done["execution_id"] = await _provision(request, caller, workflow_id, params)
    return json_response(request, done, status=201)


@routes.put(
    _ONE,
    "Flow framework: update a workflow not provisioned (a Git commit)",
    role="editor",
    patterns=_ID,
    query=shapes.UpdateQuery,
    body=_TEMPLATE,
    answers={200: Answer("updated", shapes.FlowWritten)},
    errors=(400, 401, 403, 404, 409, 413, 503),
)
@_validation_is_400
async def update(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]
    validating = ff_requests.validating(request)
    state, draft = _find(view, workflow_id)
    if state is not None:
        current = ff_records.provisioning_state(view.store, workflow_id)
        if current != "NOT_STARTED":
            raise Conflict(
                f"workflow {workflow_id!r} can not be updated unless its provisioning state "
                f"is NOT_STARTED (it is {current}); deprovision it first"
            )
    template = await ff_requests.template_body(request)
    ff_template.check_shape(template)
    template = ff_template.with_implied_edges(ff_template.own_fields(template))
    scrubbed, found = ff_template.take_credentials(template, workflow_id=workflow_id)
    try:
        document = ff_template.to_document(scrubbed, workflow_id=workflow_id)
        writes = request.app[WRITES]
        if state is None:  # a draft becomes a Workflow
            outcome = await writes.put(
                store=view.store,
                caller=caller,
                kind="Workflow",
                name=workflow_id,
                document=document,
            )
        else:
            outcome = await writes.update(
                store=view.store,
                caller=caller,
                kind="Workflow",
                name=workflow_id,
                change=lambda current: ff_template.merged(current, document),
            )
    except Unprocessable as exc:
        if draft is None or validating:
            raise
        ff_requests.no_secret_values(scrubbed)
        ff_records.save_draft(
            view.store, workflow_id, {**draft, "template": scrubbed, "problem": exc.detail}
        )
        await _store_secrets(view, found)
        ff_records.note_written(view.store, workflow_id, by=caller.name, created=False)
        done = {"workflow_id": workflow_id, "draft": True, "problem": exc.detail}
        return json_response(request, done)
    await _store_secrets(view, found, written=outcome)
    ff_records.note_written(view.store, workflow_id, by=caller.name, created=False)
    if draft is not None:
        ff_records.drop_draft(view.store, workflow_id)
    view.trigger(reason="api write")
    return json_response(request, {"workflow_id": workflow_id, **_written(outcome)})


@routes.get(
    _ONE,
    "Flow framework: one workflow's template",
    role="viewer",
    patterns=_ID,
    answers={200: Answer("the template", shapes.FlowWorkflow)},
    errors=(401, 403, 404),
)
@_validation_is_400
async def get_workflow(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]

    async def build() -> dict[str, Any]:
        state, draft = _find(view, workflow_id)
        times = ff_records.written(view.store, workflow_id)
        if draft is not None:
            draft_answer = {**draft["template"], **times}
            return {**draft_answer, "draft": True, "problem": draft.get("problem")}
        assert state is not None
        template = {**ff_template.to_template(state.document), **times}
        provisions = [
            r for r in ff_records.lifecycle(view.store, workflow_id) if r.action == "execute"
        ]
        if provisions:
            template["last_provisioned_time"] = ff_records.millis(
                provisions[0].started_at or provisions[0].created_at
            )
        return template

    return await cached_json(request, build)


@routes.delete(
    _ONE,
    "Flow framework: delete a workflow (a Git commit; a draft is dropped)",
    role="editor",
    patterns=_ID,
    answers={200: Answer("deleted", shapes.FlowDeleted)},
    errors=(401, 403, 404, 409, 503),
)
@_validation_is_400
async def delete(request: web.Request) -> web.Response:
    caller = require(request, "editor")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]
    done: dict[str, Any] = {
        "_index": ff_search.INDEX,
        "_id": workflow_id,
        "result": "deleted",
        "workflow_id": workflow_id,
    }
    if _committed(view, workflow_id) is None and ff_records.drop_draft(view.store, workflow_id):
        view.forget_secrets(prefix=f"{workflow_id}.")
        ff_records.forget_written(view.store, workflow_id)
        return json_response(request, done)
    writes = request.app[WRITES]
    outcome = await writes.delete(
        store=view.store, caller=caller, kind="Workflow", name=workflow_id
    )
    if writes.mode == "commit":
        # Its secrets go with it; on a review branch they wait until a merge removes it.
        view.forget_secrets(prefix=f"{workflow_id}.")
        ff_records.forget_written(view.store, workflow_id)
    view.trigger(reason="api write")
    return json_response(request, {**done, **_written(outcome)})


@routes.post(
    _ONE + "/_provision",
    "Flow framework: run the provision graph",
    description="Each query parameter is a value for the template's ${{ name }} expression "
    "of that name (as that API takes them); the fields of a JSON body are too. A name given "
    "both ways is a 400.",
    role="operator",
    patterns=_ID,
    open_query=True,
    body=json_body(dict[str, Scalar], required=False),
    answers={200: Answer("started", shapes.FlowRun)},
    errors=(400, 401, 403, 404, 409, 413, 503),
)
@_validation_is_400
async def provision(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]
    state, draft = _find(view, workflow_id)
    if draft is not None:
        raise Conflict(
            f"workflow {workflow_id!r} is a draft saved without validation "
            f"({draft.get('problem')}); update it with a template that validates first"
        )
    assert state is not None
    params = ff_requests.provision_params(request, await read_json(request))
    await _applied(view, workflow_id, {})
    execution_id = await _provision(request, caller, workflow_id, params)
    return answer(request, shapes.FlowRun(workflow_id=workflow_id, execution_id=execution_id))


@routes.post(
    _ONE + "/_deprovision",
    "Flow framework: undo what the last provision made",
    role="operator",
    patterns=_ID,
    answers={200: Answer("started", shapes.FlowRun)},
    errors=(401, 403, 404, 409, 503),
)
@_validation_is_400
async def deprovision(request: web.Request) -> web.Response:
    caller = require(request, "operator")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]
    _, draft = _find(view, workflow_id)
    if draft is not None:
        raise Conflict(f"workflow {workflow_id!r} is a draft: nothing was provisioned")
    project_access.authorize_object(
        caller, "execute", f"Workflow/{workflow_id}", desired=view.desired()
    )
    execution_id = view.deprovision_workflow(name=workflow_id, requested_by=caller.name)
    return answer(request, shapes.FlowRun(workflow_id=workflow_id, execution_id=execution_id))


@routes.get(
    _ONE + "/_status",
    "Flow framework: provisioning state and resources created",
    role="viewer",
    patterns=_ID,
    query=shapes.StatusQuery,
    answers={200: Answer("the status", shapes.FlowStatus)},
    errors=(400, 401, 403, 404),
)
@_validation_is_400
async def status(request: web.Request) -> web.Response:
    require(request, "viewer")
    view = request.app[VIEW]
    workflow_id = request.match_info["workflow_id"]
    every = ff_requests.flag(request, "all")

    async def build() -> dict[str, Any]:
        state, _ = _find(view, workflow_id)
        if state is None:  # a draft
            return ff_records.status_body(None, workflow_id, every=every)
        return ff_records.status_body(view.store, workflow_id, every=every)

    return await cached_json(request, build)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
