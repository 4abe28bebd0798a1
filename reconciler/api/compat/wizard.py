"""The model wizards' API (reference: wizard-api.md): step payloads that become specs.

Each wizard is served where that API serves it: ``POST /models/cloud-model-workflow``,
``/models/local-model-workflow``, ``/models/deploy-workflow`` (the cloud or the local
deploy flow, by the Model's source), ``/models/security-scan``, ``/endpoints/add-worker``
and ``/clusters/clusters`` (a multipart form whose ``configuration_file``, a kubeconfig,
goes to the daemon's secret store and never to Git; the Cluster names the secret).
``GET /workflows/{workflow_id}`` reads a wizard back. The first step gives
``workflow_total_steps`` and is answered with the ``workflow_id`` later steps give; the
draft lives in the state store (:mod:`wizard_drafts`) and expires when never triggered.
The step that sets ``trigger_workflow`` commits the spec through
:mod:`reconciler.api.writes`, authored by the caller's token name, and the wizard then
reports the reconcile of that commit until the object is Ready (``completed``) or Stalled
(``failed``). Steps and fields are checked by :mod:`wizard_flows`; what each field means
in our specs is :mod:`wizard_specs`. Every step needs the editor role; reading, viewer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from reconciler.api.auth import Caller
from reconciler.api.compat import wizard_flows as flows
from reconciler.api.compat import wizard_forms
from reconciler.api.compat import wizard_shapes as shapes
from reconciler.api.compat import wizard_specs as specs
from reconciler.api.compat.wizard_drafts import (
    WIZARD_DRAFTS,
    Drafts,
    done_steps,
    gathered,
)
from reconciler.api.documents import status_of
from reconciler.api.problems import (
    Conflict,
    NotFound,
    Unprocessable,
)
from reconciler.api.shapes.common import RequestShape
from reconciler.api.shapes.registry import Answer, Body, Handler, RouteTable, json_body
from reconciler.api.state import VIEW, WRITES, answer, require
from reconciler.api.state import json_body as read_json
from reconciler.api.writes import follow_write
from reconciler.drivers.git_source import GitSourceError
from reconciler.engine.records import ApiTaskRecord

log = logging.getLogger("reconciler.api")

FAILED_PHASES = ("Stalled", "Failed")
"""Phases that end a wizard as ``failed`` once the object reached its commit."""
SHOWN_STATUS: Mapping[str, str] = {
    "in_progress": "in_progress",
    "committing": "in_progress",
    "committed": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
}

routes = RouteTable()
_STEP_ERRORS = (401, 403, 404, 409, 413, 422, 503)
_WORKFLOW = {200: Answer("the workflow", shapes.WizardWorkflow)}


def _step_route(path: str, summary: str, first: type[RequestShape]) -> Callable[[Handler], Handler]:
    """Declare one wizard's step route: its first step's body, or a later step's."""
    return routes.post(
        path,
        summary + "; the triggering step commits the spec",
        role="editor",
        body=json_body(first | shapes.WizardLaterStep),
        answers=_WORKFLOW,
        errors=_STEP_ERRORS,
    )
Prepare = Callable[[flows.Flow, dict[str, Any], Mapping[str, Any]], None]
"""Run on a step's fields once they are checked, before they are saved; given what the
draft held before this step."""


# --- progress and answers ----------------------------------------------------------------


async def _follow(request: web.Request, task: ApiTaskRecord) -> ApiTaskRecord:
    """Move a triggered wizard on from what the daemon reached with its commit."""
    if task.status != "committed":
        return task
    view, writer = request.app[VIEW], request.app[WRITES].writer
    store = view.store
    result = dict(task.result or {})
    kind, _, name = str(result.get("target")).partition("/")
    written = result.get("write")
    progress: dict[str, Any] = {"object": f"{kind}/{name}"}
    status = "committed"
    reason: str | None = None
    commit = None
    if isinstance(written, Mapping):
        commit = str(written.get("commit"))
        write_task = store.get_api_task(str(written.get("task_id")))
        if write_task is not None:
            write_task = await follow_write(write_task, view=view, writer=writer)
            progress.update(task_id=write_task.id, task_status=write_task.status)
            if write_task.status == "failed":
                status = "failed"
                reason = str((write_task.result or {}).get("error") or "the commit failed")
    # The object as it stands now, not as last published (a commit may still be coming).
    live = view.object_progress(f"{kind}/{name}")
    current = status_of(store.get_object(kind, name)) or {}
    phase = live.phase if live.phase is not None else current.get("phase")
    observed = live.observed_revision or current.get("observed_revision")
    progress.update(phase=phase, observed_revision=observed)
    if status == "committed" and phase in ("Ready", *FAILED_PHASES) and observed:
        reached = commit is None or progress.get("task_status") == "done"
        if reached and commit is not None and writer is not None:
            try:
                reached = await asyncio.to_thread(
                    writer.contains, str(observed), commit, branch=view.source().branch
                )
            except GitSourceError:
                reached = False
        if reached:
            status = "completed" if phase == "Ready" else "failed"
            if phase != "Ready":
                reason = live.failed or _condition_message(current) or f"{kind}/{name} is {phase}"
    if status == "committed" and progress == result.get("progress"):
        return task
    result.update(progress=progress, reason=reason)
    return store.update_api_task(task.id, status=status, result=result)


def _condition_message(status: Mapping[str, Any]) -> str | None:
    """Why an object failed: its Stalled condition, else its Ready condition (False)."""
    found = {
        (c.get("type"), c.get("status")): c
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    }
    condition = found.get(("Stalled", "True")) or found.get(("Ready", "False"))
    if condition is None:
        return None
    return f"{condition.get('reason')}: {condition.get('message')}"


def _answer(request: web.Request, task: ApiTaskRecord, message: str) -> web.Response:
    result = task.result or {}
    steps: dict[str, Any] = dict(result.get("data") or {})
    if task.payload.get("flow") == flows.ADD_CLUSTER.name and "configuration_file" in steps:
        steps["configuration_file"] = {"secret": steps["configuration_file"]}
    written = result.get("write")
    if isinstance(written, Mapping) or result.get("target"):
        steps["workflow_execution_status"] = {
            **dict(result.get("progress") or {"object": result.get("target")}),
            **(
                {"commit": written.get("commit"), "branch": written.get("branch")}
                if isinstance(written, Mapping)
                else {}
            ),
            **({"note": result["note"]} if result.get("note") else {}),
        }
    if task.payload.get("flow") == flows.SECURITY_SCAN.name and result.get("target"):
        kind, _, name = str(result["target"]).partition("/")
        current = request.app[VIEW].object_status(f"{kind}/{name}") or {}
        steps["security_scan_result"] = current.get("scan")
    body = shapes.WizardWorkflow(
        object="workflow.get",
        code=200,
        message=message,
        workflow_id=task.id,
        workflow_type=task.payload.get("flow"),
        status=SHOWN_STATUS.get(task.status, task.status),
        current_step=int(result.get("current_step") or 0),
        total_steps=int(task.payload.get("total_steps") or 0),
        reason=result.get("reason"),
        workflow_steps=shapes.WizardSteps.model_validate(steps),
    )
    return answer(request, body)


# --- one step ----------------------------------------------------------------------------


def _flow_of_new(flow: flows.Flow | None, fields: Mapping[str, Any], desired: specs.Desired
                 ) -> flows.Flow:  # fmt: skip
    if flow is not None:
        return flow
    if "model_id" not in fields:  # the deploy wizards: the Model says which one
        raise Unprocessable("model_id: the first deploy step names the Model to deploy")
    model = desired.get(f"Model/{fields['model_id']}") if isinstance(
        fields["model_id"], str) else None  # fmt: skip
    if model is None:
        raise NotFound(f"model_id: no Model {fields['model_id']!r} in the watched branch")
    return specs.deploy_flow(model)


async def _step(
    request: web.Request,
    body: Mapping[str, Any],
    *,
    flow: flows.Flow | None,
    prepare: Prepare | None = None,
) -> web.Response:
    caller = require(request, "editor")
    view, drafts = request.app[VIEW], request.app[WIZARD_DRAFTS]
    store = view.store
    drafts.expire_stale(store)
    step_request = flows.read_request(body)
    desired = view.desired()
    fields = dict(step_request.fields)
    task = None
    if step_request.workflow_id is not None:
        name = flow.name if flow is not None else "deploy-model"
        task = drafts.open_for_step(store, step_request.workflow_id, name)
        chosen = flows.FLOWS[str(task.payload["flow"])]
    else:
        chosen = _flow_of_new(flow, fields, desired)
    done = done_steps(task) if task else {}
    current = int((task.result or {}).get("current_step") or 0) if task else 0
    step = flows.check_step(chosen, step_request, done=done, current=current)
    so_far = {**(gathered(task) if task else {}), **fields}
    for field, value in fields.items():
        specs.check_value(chosen, field, value, gathered=so_far, desired=desired)
    if prepare is not None:
        prepare(chosen, fields, gathered(task) if task else {})
    if task is None:
        assert step_request.total_steps is not None
        task = drafts.create(store, flow=chosen.name, total_steps=step_request.total_steps,
                             by=caller.name)  # fmt: skip
    task = Drafts.save(store, task, step=step.number, fields=fields)
    if not step_request.trigger:
        return _answer(request, task, f"step {step.number} of {chosen.name} saved")
    task = await _trigger(request, caller, chosen, task)
    task = await _follow(request, task)
    return _answer(request, task, f"{chosen.name} triggered")


def _write_of(flow: flows.Flow, data: Mapping[str, Any], desired: specs.Desired) -> specs.Write:
    if flow is flows.ADD_CLOUD_MODEL:
        return specs.cloud_model(data, desired)
    if flow is flows.ADD_LOCAL_MODEL:
        return specs.local_model(data, desired)
    if flow in (flows.DEPLOY_CLOUD_MODEL, flows.DEPLOY_LOCAL_MODEL):
        return specs.deployment(data, desired)
    if flow is flows.SECURITY_SCAN:
        return specs.security_scan(data, desired)
    if flow is flows.ADD_WORKER:
        return specs.add_worker(data, desired)
    return specs.cluster(data, desired, secret=str(data["configuration_file"]))


async def _trigger(
    request: web.Request, caller: Caller, flow: flows.Flow, task: ApiTaskRecord
) -> ApiTaskRecord:
    view, writes = request.app[VIEW], request.app[WRITES]
    store = view.store
    data = gathered(task)
    missing = flows.missing_for_trigger(flow, data)
    if missing is not None:
        owner = flow.owner_of(missing)
        raise Unprocessable(
            f"{missing}: {flow.name} cannot be triggered before step "
            f"{owner.number if owner else '?'} gives {missing}"
        )
    # A reference may have gone from Git since its step; check all again.
    for field, value in data.items():
        if field in flows.COMMON_FIELDS or field == "configuration_file":
            continue
        specs.check_value(flow, field, value, gathered=data, desired=view.desired())
    write = _write_of(flow, data, view.desired())
    extra: dict[str, Any] = {"target": f"{write.kind}/{write.name}", "triggered_by": caller.name}
    # No await since this draft was found in_progress: marking it now makes a concurrent
    # trigger of the same draft a 409, so its change (more concurrency) is made once.
    store.update_api_task(task.id, status="committing", result=task.result)
    try:
        if write.document is not None:
            outcome = await writes.put(store=store, caller=caller, kind=write.kind,
                                       name=write.name, document=write.document)  # fmt: skip
            extra["write"] = outcome.json()
        elif write.change is not None:
            outcome = await writes.update(store=store, caller=caller, kind=write.kind,
                                          name=write.name, change=write.change)  # fmt: skip
            extra["write"] = outcome.json()
    except BaseException:
        store.update_api_task(task.id, status="in_progress", result=task.result)
        raise
    if write.note:
        extra["note"] = write.note
    view.trigger(reason="api wizard", resync=write.document is None and write.change is None)
    log.info(
        "wizard triggered",
        extra={"workflow": task.id, "flow": flow.name, "object": extra["target"],
               "by": caller.name},
    )  # fmt: skip
    step = int((task.result or {}).get("current_step") or 0)
    return Drafts.save(store, task, step=step, fields={}, status="committed", extra=extra)


# --- routes ------------------------------------------------------------------------------


@_step_route(
    "/models/cloud-model-workflow",
    "Wizard: a step of add-cloud-model",
    shapes.WizardCloudModelFirst,
)
async def cloud_model_workflow(request: web.Request) -> web.Response:
    return await _step(request, await read_json(request), flow=flows.ADD_CLOUD_MODEL)


@_step_route(
    "/models/local-model-workflow",
    "Wizard: a step of add-local-model",
    shapes.WizardLocalModelFirst,
)
async def local_model_workflow(request: web.Request) -> web.Response:
    return await _step(request, await read_json(request), flow=flows.ADD_LOCAL_MODEL)


@_step_route(
    "/models/deploy-workflow",
    "Wizard: a step of deploy-cloud-model or deploy-local-model (by the Model's source)",
    shapes.WizardDeployFirst,
)
async def deploy_workflow(request: web.Request) -> web.Response:
    return await _step(request, await read_json(request), flow=None)


@_step_route(
    "/models/security-scan",
    "Wizard: security-scan of a Model",
    shapes.WizardScanFirst,
)
async def security_scan(request: web.Request) -> web.Response:
    return await _step(request, await read_json(request), flow=flows.SECURITY_SCAN)


@_step_route(
    "/endpoints/add-worker",
    "Wizard: add-worker (more concurrency for a Deployment)",
    shapes.WizardAddWorkerFirst,
)
async def add_worker(request: web.Request) -> web.Response:
    return await _step(request, await read_json(request), flow=flows.ADD_WORKER)


@routes.post(
    "/clusters/clusters",
    "Wizard: add-cluster, a multipart form; the kubeconfig goes to the secret store, never "
    "to Git",
    role="editor",
    body=Body({"multipart/form-data": shapes.WizardClusterForm}),
    answers=_WORKFLOW,
    errors=_STEP_ERRORS,
)
async def add_cluster(request: web.Request) -> web.Response:
    require(request, "editor")
    body, kubeconfig = await wizard_forms.cluster_form(request)
    view = request.app[VIEW]

    def store_kubeconfig(
        flow: flows.Flow, fields: dict[str, Any], earlier: Mapping[str, Any]
    ) -> None:
        if "configuration_file" not in fields:
            return
        assert kubeconfig is not None
        text = wizard_forms.kubeconfig_text(kubeconfig)
        name = specs.label(str(fields.get("name") or ""), field="name")
        if f"Cluster/{name}" in view.desired():
            raise Conflict(f"name: a Cluster named {name!r} already exists")
        secret = f"{name}-kubeconfig"
        # A draft may send its file again (a retry); another draft may not take the name.
        view.store_secret(
            name=secret, value=text, replace=earlier.get("configuration_file") == secret
        )
        fields["configuration_file"] = secret

    return await _step(request, body, flow=flows.ADD_CLUSTER, prepare=store_kubeconfig)


@routes.get(
    "/workflows/{workflow_id}",
    "Wizard: a workflow's steps and, once triggered, its reconcile",
    role="viewer",
    answers=_WORKFLOW,
    errors=(401, 403, 404),
)
async def get_workflow(request: web.Request) -> web.Response:
    require(request, "viewer")
    view, drafts = request.app[VIEW], request.app[WIZARD_DRAFTS]
    task = drafts.find(view.store, request.match_info["workflow_id"])
    task = await _follow(request, task)
    return _answer(request, task, "workflow details")


def _forget_upload(app: web.Application, data: Mapping[str, Any]) -> None:
    """An expired add-cluster draft's kubeconfig leaves the secrets dir, unless a Cluster
    in Git names that secret (another draft of the same name and file was triggered)."""
    secret = data.get("configuration_file")
    if not isinstance(secret, str) or not secret:
        return
    view = app[VIEW]
    for state in view.desired().values():
        kubeconfig = state.spec.get("kubeconfig") if state.kind == "Cluster" else None
        if isinstance(kubeconfig, Mapping) and kubeconfig.get("secret") == secret:
            return
    view.forget_secrets(prefix=secret, exact=True)


def add_routes(app: web.Application, *, drafts: Drafts | None = None) -> None:
    chosen = drafts or Drafts()
    chosen.on_expired = functools.partial(_forget_upload, app)
    app[WIZARD_DRAFTS] = chosen
    routes.add_to(app)
