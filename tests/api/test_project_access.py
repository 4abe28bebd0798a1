"""Project permissions over real HTTP: two Projects, each with its own roles, and tokens
that hold roles in one, the other or neither, against a real daemon on a real Git remote.

research keeps the seed's roles (admin: full, data-scientist: execute and edit, viewer:
view); billing has its own (owner: full, analyst: execute). alice (editor, group
ml-team) is a data-scientist in research and an analyst in billing; bob (editor) is an
admin of research only; carol (operator, ml-team) is a data-scientist in research.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.conftest import API_SEED, Reply, RunningDaemon, StartApi, wait_until

PEOPLE = {"alice": "tok-alice-41c9e0", "bob": "tok-bob-7aa2d5", "carol": "tok-carol-e0b913"}
PROJECTS = """\
apiVersion: reconciler/v1
kind: Project
metadata: {name: research}
spec:
  description: Research endpoints
  permissions:
    - {role: admin, access: full}
    - {role: data-scientist, access: [execute, edit]}
    - {role: viewer, access: view}
---
apiVersion: reconciler/v1
kind: Project
metadata: {name: billing}
spec:
  permissions:
    - {role: owner, access: full}
    - {role: analyst, access: [execute]}
"""
MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt-4o-mini}
spec:
  modality: llm
  source: {provider_type: cloud_model, provider: openai, uri: openai/gpt-4o-mini}
"""
LOAD = {"concurrent_requests": 10, "avg_sequence_length": 100, "avg_context_length": 102}


def _deployment(name: str, project: str, endpoint: str = "chat") -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"project": project, "model": "gpt-4o-mini", "credential": "openai-prod",
                 "endpoint_name": endpoint, "deploy_config": LOAD},
    }  # fmt: skip


def _workflow(name: str, project: str, *, steps: int = 2, delay: str = "10ms") -> str:
    nodes = "\n".join(
        f"        - {{id: s{i}, type: noop, user_inputs: {{delay: {delay}}}}}" for i in range(steps)
    )
    edges = "\n".join(f"        - {{source: s{i - 1}, dest: s{i}}}" for i in range(1, steps))
    return (
        f"apiVersion: reconciler/v1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n"
        f"  project: {project}\n  trigger: manual\n  workflows:\n    provision:\n"
        f"      nodes:\n{nodes}\n      edges:\n{edges}\n"
    )


SEED = {
    **API_SEED,
    "projects.yaml": PROJECTS,
    "models.yaml": MODEL,
    "deployments.yaml": yaml.safe_dump_all(
        [_deployment("chat-r", "research"), _deployment("chat-b", "billing")]
    ),
    "train.yaml": _workflow("train-r", "research") + "---\n" + _workflow("train-b", "billing"),
    "slow-b.yaml": _workflow("slow-b", "billing", steps=40, delay="250ms"),
}


def _token(name: str, role: str, *groups: str) -> dict[str, Any]:
    digest = hashlib.sha256(PEOPLE[name].encode()).hexdigest()
    return {"name": name, "role": role, "sha256": digest, "groups": list(groups)}


ACCESS: dict[str, Any] = {
    "tokens": [
        _token("alice", "editor", "ml-team"),
        _token("bob", "editor"),
        _token("carol", "operator", "ml-team"),
    ],
    "project_roles": {
        "research": {"data-scientist": {"groups": ["ml-team"]}, "admin": {"users": ["bob"]}},
        "billing": {"analyst": {"users": ["alice"]}},
    },
}


async def _start(start_api: StartApi) -> RunningDaemon:
    return await start_api(files=SEED, api_extra=ACCESS)


async def _as(api: RunningDaemon, who: str, method: str, path: str, **kwargs: Any) -> Reply:
    return await api.client.request(method, path, token=PEOPLE[who], **kwargs)


def _refusal(reply: Reply, *, project: str, action: str) -> str:
    assert reply.status == 403, reply.text
    body = reply.json()
    assert body["project"] == project and body["action"] == action, body
    detail: str = body["detail"]
    assert repr(project) in detail
    return detail


async def _put(api: RunningDaemon, who: str, document: dict[str, Any]) -> Reply:
    path = f"/api/v1/objects/{document['kind']}/{document['metadata']['name']}"
    return await _as(api, who, "PUT", path, json=document)


async def test_writes_need_a_role_of_the_objects_project(start_api: StartApi) -> None:
    api = await _start(start_api)
    tip = api.remote.tip()

    # alice, data-scientist in research: she edits, but neither deploys nor deletes there.
    new_r = await _put(api, "alice", _deployment("new-r", "research"))
    detail = _refusal(new_r, project="research", action="deploy")
    assert "data-scientist (execute, edit)" in detail and "admin (full)" in detail
    assert new_r.json()["roles_held"] == ["data-scientist"]
    assert new_r.json()["roles_granting"] == ["admin"]
    gone = await _as(api, "alice", "DELETE", "/api/v1/objects/Deployment/chat-r")
    _refusal(gone, project="research", action="delete")
    # analyst in billing grants execute only; a role of research counts for nothing there.
    edit_b = await _put(api, "alice", _deployment("chat-b", "billing", endpoint="renamed"))
    detail = _refusal(edit_b, project="billing", action="edit")
    assert "analyst (execute)" in detail and "owner (full)" in detail
    # moving an object out of research is a delete there.
    moved = await _put(api, "alice", _deployment("chat-r", "billing"))
    _refusal(moved, project="research", action="delete")
    # the Project's own document needs every action.
    project = next(yaml.safe_load_all(PROJECTS))
    project["spec"]["description"] = "changed"
    own = await _put(api, "alice", project)
    assert "may not change Project 'research'" in _refusal(own, project="research", action="full")
    # editor-bot holds no role anywhere: refused in a Project with permissions.
    nobody = await api.client.put(
        "/api/v1/objects/Deployment/new-r", role="editor", json=_deployment("new-r", "research")
    )
    assert "holds no role there" in _refusal(nobody, project="research", action="deploy")
    assert api.remote.tip() == tip, "a refused write committed something"

    edited = await _put(api, "alice", _deployment("chat-r", "research", endpoint="renamed"))
    assert edited.status == 202, edited.text
    # bob, admin of research: he deploys there, but cannot move it into billing.
    created = await _put(api, "bob", _deployment("new-r", "research"))
    assert created.status == 202, created.text
    into_b = await _put(api, "bob", _deployment("new-r", "billing"))
    assert "holds no role there" in _refusal(into_b, project="billing", action="deploy")
    # objects of no project follow the token role alone
    model = yaml.safe_load(MODEL)
    model["spec"]["display_name"] = "mini"
    assert (await api.client.put(
        "/api/v1/objects/Model/gpt-4o-mini", role="editor", json=model)).status == 202  # fmt: skip
    # bob may change research's permissions (full); the next write is judged by them.
    project["spec"]["permissions"][1]["access"] = ["execute", "edit", "deploy"]
    assert (await _put(api, "bob", project)).status == 202
    now = await _put(api, "alice", _deployment("other-r", "research"))
    assert now.status == 202, now.text
    # an admin token may do anything in every project
    removed = await api.client.delete("/api/v1/objects/Deployment/chat-b", role="admin")
    assert removed.status == 202, removed.text


async def _ready(api: RunningDaemon, key: str) -> None:
    async def probe() -> bool:
        reply = await api.client.get(f"/api/v1/objects/{key}")
        return reply.status == 200 and reply.json().get("phase") == "Ready"

    await wait_until(f"{key} Ready", probe)


async def test_actions_need_execute_in_the_workflows_project(start_api: StartApi) -> None:
    api = await _start(start_api)
    for name in ("train-r", "train-b", "slow-b"):
        await _ready(api, f"Workflow/{name}")

    started = await _as(api, "alice", "POST", "/api/v1/workflows/train-b/executions")
    assert started.status == 201, started.text
    refused = await _as(api, "bob", "POST", "/api/v1/workflows/train-b/executions")
    detail = _refusal(refused, project="billing", action="execute")
    assert "holds no role there" in detail
    assert "needs role owner (full) or analyst (execute) there" in detail
    # carol: operator with a research role runs research's workflows, writes nothing.
    assert (await _as(api, "carol", "POST", "/api/v1/workflows/train-r/executions")).status == 201
    carol_put = await _put(api, "carol", _deployment("chat-r", "research", endpoint="x"))
    assert carol_put.status == 403 and "needs 'editor'" in carol_put.json()["detail"]

    # every surface that starts or stops a run asks the same question
    surfaces = [
        ("/api/v1/workflows/train-b/deprovision", None),
        ("/api/workflows/train-b/execute", {}),
        ("/_plugins/_flow_framework/workflow/train-b/_provision", None),
        ("/_plugins/_flow_framework/workflow/train-b/_deprovision", None),
        ("/api/workflows/train-b/endpoint", {"request": {"action_type": "kickoff"}}),
    ]
    for path, body in surfaces:
        reply = await _as(api, "bob", "POST", path, json=body)
        _refusal(reply, project="billing", action="execute")

    slow = await api.client.post("/api/v1/workflows/slow-b/executions", role="admin")
    assert slow.status == 201, slow.text
    run = slow.json()["id"]
    not_bob = await _as(api, "bob", "POST", f"/api/v1/executions/{run}/cancel")
    _refusal(not_bob, project="billing", action="execute")
    not_bob = await _as(api, "bob", "POST", f"/api/workflows/slow-b/executions/{run}/cancel")
    _refusal(not_bob, project="billing", action="execute")
    assert (await _as(api, "alice", "POST", f"/api/v1/executions/{run}/cancel")).status == 202


async def test_compat_writes_are_judged_by_the_project_they_write(start_api: StartApi) -> None:
    api = await _start(start_api)
    tip = api.remote.tip()
    config = {"name": "gpt-b", "project": "billing", "credential": "openai-prod",
              "endpoint_name": "chat-b2", "deploy_config": LOAD}  # fmt: skip
    deploy = await _as(api, "alice", "POST", "/deploy",
                       json={"model_id": "gpt-4o-mini", "config": config})  # fmt: skip
    _refusal(deploy, project="billing", action="deploy")
    steps = [
        {"workflow_total_steps": 7, "step_number": 1, "trigger_workflow": False,
         "project_id": "billing", "model_id": "gpt-4o-mini"},
        {"step_number": 2, "trigger_workflow": False, "credential_id": "openai-prod"},
        {"step_number": 4, "trigger_workflow": True, "endpoint_name": "wizard endpoint",
         "deploy_config": LOAD},
    ]  # fmt: skip
    workflow_id: str | None = None
    for step in steps:
        body = {**step, **({"workflow_id": workflow_id} if workflow_id else {})}
        reply = await _as(api, "alice", "POST", "/models/deploy-workflow", json=body)
        if step["trigger_workflow"]:
            _refusal(reply, project="billing", action="deploy")
        else:
            assert reply.status == 200, reply.text
            workflow_id = reply.json()["workflow_id"]
    # the dashboard's and the flow framework's writes of a billing Workflow
    update = await _as(api, "bob", "PUT", "/api/workflows/train-b", json={"description": "x"})
    _refusal(update, project="billing", action="edit")
    for path in ("/api/workflows/train-b", "/_plugins/_flow_framework/workflow/train-b"):
        _refusal(await _as(api, "bob", "DELETE", path), project="billing", action="delete")
    assert api.remote.tip() == tip, "a refused write committed something"
    deployed = await _as(
        api,
        "alice",
        "POST",
        "/deploy",
        json={"model_id": "gpt-4o-mini", "config": {**config, "project": "research"}},
    )
    _refusal(deployed, project="research", action="deploy")
    bob = await _as(
        api,
        "bob",
        "POST",
        "/deploy",
        json={"model_id": "gpt-4o-mini", "config": {**config, "project": "research"}},
    )
    assert bob.status == 202, bob.text


@pytest.mark.parametrize("grant", ["users", "groups"])
async def test_a_reload_grants_and_revokes_at_once(
    start_api: StartApi, grant: str, tmp_path: Path
) -> None:
    api = await _start(start_api)
    await _ready(api, "Workflow/train-b")
    path = api.daemon._config_file
    assert path is not None
    data = yaml.safe_load(Path(path).read_text())
    if grant == "users":
        data["api"]["project_roles"]["billing"]["owner"] = {"users": ["bob"]}
    else:
        data["api"]["tokens"][-2]["groups"] = ["finance"]  # bob's entry
        data["api"]["project_roles"]["billing"]["owner"] = {"groups": ["finance"]}
    Path(path).write_text(yaml.safe_dump(data))
    api.daemon.request_reload()
    started = await _as(api, "bob", "POST", "/api/v1/workflows/train-b/executions")
    assert started.status == 201, started.text

    del data["api"]["project_roles"]["billing"]["owner"]
    Path(path).write_text(yaml.safe_dump(data))
    api.daemon.request_reload()
    again = await _as(api, "bob", "POST", "/api/v1/workflows/train-b/executions")
    _refusal(again, project="billing", action="execute")
