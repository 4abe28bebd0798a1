"""Workflow dashboard create (POST /api/workflows) over real HTTP against a real daemon on a
real Git remote: each create is a commit authored by the caller; a workflow created
without a graph is listed inactive and cannot run until an update gives it one; fields our
Workflow has no place for are a 422 naming them, and nothing is committed then (the
reference document's own bodies: test_workflow_dashboard_reference.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from tests.api.conftest import RunningDaemon, StartApi, wait_until
from tests.conftest import git

GRAPH = {
    "provision": {
        "nodes": [
            {"id": "prepare", "type": "noop", "user_inputs": {"delay": "10ms"}},
            {"id": "train", "type": "noop", "user_inputs": {"delay": "${{ pause }}"}},
        ],
        "edges": [{"source": "prepare", "dest": "train"}],
    }
}


def _author(api: RunningDaemon, commit: str) -> str:
    return git(api.remote.path, "log", "-1", "--format=%an <%ae>", commit)


async def _task_done(api: RunningDaemon, task_id: str) -> None:
    async def probe() -> bool:
        task: dict[str, Any] = (await api.client.get(f"/api/v1/tasks/{task_id}")).json()
        assert task["status"] != "failed", task
        return task["status"] == "done"

    await wait_until(f"write task {task_id} done", probe)


async def _summary(api: RunningDaemon, workflow_id: str) -> dict[str, Any] | None:
    listed = (await api.client.get("/api/workflows?pageSize=100")).json()["workflows"]
    return next((w for w in listed if w["id"] == workflow_id), None)


async def test_create_without_a_graph_then_add_one(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    before = api.remote.tip()
    reply = await client.post(
        "/api/workflows",
        role="editor",
        json={
            "name": "New ML Training Pipeline",
            "description": "Handles distributed training across multiple GPU nodes",
            "priority": "medium",
            "environments": {"awsVirginia": True, "dgxCloudCalifornia": False},
        },
    )
    assert reply.status == 201, reply.text
    answer = reply.json()
    assert {k: answer[k] for k in ("id", "name", "status", "priority", "creator")} == {
        "id": "new-ml-training-pipeline",
        "name": "New ML Training Pipeline",
        "status": "inactive",
        "priority": "medium",
        "creator": "editor-bot",
    }
    assert answer["createdAt"].endswith("Z") and answer["commit"] == api.remote.tip()
    assert git(api.remote.path, "rev-parse", f"{answer['commit']}^") == before
    assert _author(api, answer["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("workflows/new-ml-training-pipeline.yaml"))
    assert written["metadata"]["annotations"] == {
        "reconciler/display-name": "New ML Training Pipeline",
        "reconciler/dashboard-graph": "none",
    }
    assert written["spec"]["suspend"] is True
    assert written["spec"]["environments"] == ["awsVirginia"]
    await _task_done(api, answer["taskId"])

    wid = "new-ml-training-pipeline"
    listed = await wait_until("the new workflow listed", lambda: _summary(api, wid))
    assert listed["status"] == "inactive" and listed["name"] == "New ML Training Pipeline"
    detail = (await client.get(f"/api/workflows/{wid}")).json()
    assert detail["steps"] == [] and detail["environments"] == ["awsVirginia"]
    refused = await client.post(f"/api/workflows/{wid}/execute", role="operator", json={})
    assert refused.status == 409 and "suspended" in refused.json()["detail"]
    active = await client.put(f"/api/workflows/{wid}", role="editor", json={"status": "active"})
    assert active.status == 422 and "workflows" in active.json()["detail"]

    updated = await client.put(
        f"/api/workflows/{wid}",
        role="admin",
        json={
            "name": "GPU training",
            "status": "active",
            "workflows": GRAPH,
            "user_params": {"pause": "10ms"},
        },
    )
    assert updated.status == 200, updated.text
    assert updated.json()["name"] == "GPU training" and updated.json()["status"] == "active"
    assert _author(api, updated.json()["commit"]) == "admin-bot <admin-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("workflows/new-ml-training-pipeline.yaml"))
    assert written["metadata"]["annotations"] == {"reconciler/display-name": "GPU training"}
    assert written["spec"]["suspend"] is False and written["spec"]["workflows"] == GRAPH
    await _task_done(api, updated.json()["taskId"])

    async def runnable() -> dict[str, Any] | None:
        reply = await client.post(f"/api/workflows/{wid}/execute", role="operator", json={})
        return reply.json() if reply.status == 201 else None

    started = await wait_until("the workflow to run once it has a graph", runnable)

    async def completed() -> bool:
        path = f"/api/workflows/{wid}/executions/{started['executionId']}"
        body = (await client.get(path)).json()
        return bool(body["status"] == "completed")

    await wait_until("the run to complete", completed)
    detail = (await client.get(f"/api/workflows/{wid}")).json()
    assert [s["name"] for s in detail["steps"]] == ["prepare", "train"]
    assert detail["name"] == "GPU training" and detail["status"] == "active"


async def test_create_with_a_graph_is_active(start_api: StartApi) -> None:
    api = await start_api()
    reply = await api.client.post(
        "/api/workflows",
        role="editor",
        json={
            "name": "nightly",
            "priority": "high",
            "tags": ["ml"],
            "workflows": GRAPH,
            "user_params": {"pause": "10ms"},
        },
    )
    assert reply.status == 201, reply.text
    assert reply.json()["status"] == "active" and reply.json()["name"] == "nightly"
    written = yaml.safe_load(api.remote.read("workflows/nightly.yaml"))
    assert "annotations" not in written["metadata"] and "suspend" not in written["spec"]
    await _task_done(api, reply.json()["taskId"])
    found = await wait_until("nightly listed", lambda: _summary(api, "nightly"))
    assert found["status"] == "active" and found["priority"] == "high"
    again = await api.client.post(
        "/api/workflows", role="editor", json={"name": "Nightly", "workflows": GRAPH}
    )
    assert again.status == 409


async def test_create_refusals_commit_nothing(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    before = api.remote.tip()
    odd = await client.post("/api/workflows", role="editor", json={"name": "x", "colour": "red"})
    assert odd.status == 422 and "'colour'" in odd.json()["detail"]
    for role in ("viewer", "operator"):
        assert (await client.post("/api/workflows", role=role, json={"name": "x"})).status == 403
    assert (await client.post("/api/workflows", role=None, json={"name": "x"})).status == 401
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "train"}, 409, "exists"),
        ({"name": "!!!"}, 422, "name"),
        ({"description": "no name"}, 422, "name"),
        ({"name": "x", "status": "active"}, 422, "status"),
        ({"name": "x", "priority": "urgent"}, 422, "priority"),
        ({"name": "x", "workflows": {"deprovision": {}}}, 422, "workflows"),
        ({"name": "x", "tags": "ml"}, 422, "tags"),
    ]
    for body, status, words in cases:
        reply = await client.post("/api/workflows", role="editor", json=body)
        assert reply.status == status and words in reply.json()["detail"], (body, reply.text)
    broken = {"provision": {"nodes": [{"id": "a", "type": "noop"}],
                            "edges": [{"source": "a", "dest": "nope"}]}}  # fmt: skip
    invalid = await client.post(
        "/api/workflows", role="editor", json={"name": "x", "workflows": broken}
    )
    assert invalid.status == 422 and "nothing was committed" in invalid.json()["detail"]
    huge = b'{"name": "x", "description": "' + b"a" * (1 << 20) + b'"}'
    oversized = await client.post(
        "/api/workflows", role="editor", data=huge, headers={"Content-Type": "application/json"}
    )
    assert oversized.status == 413
    assert api.remote.tip() == before


async def test_two_creates_of_one_name_at_once_make_one_workflow(start_api: StartApi) -> None:
    """Both pass the check against what the daemon has loaded; the Git write, serialized,
    makes the first and refuses the second (409) instead of replacing it."""
    api = await start_api()
    bodies = [
        {"name": "twin", "description": f"writer {n}", "workflows": GRAPH,
         "user_params": {"pause": "10ms"}}
        for n in (1, 2)
    ]  # fmt: skip
    replies = await asyncio.gather(
        *(api.client.post("/api/workflows", role="editor", json=body) for body in bodies)
    )
    assert sorted(r.status for r in replies) == [201, 409], [r.text for r in replies]
    (won,) = [r for r in replies if r.status == 201]
    (lost,) = [r for r in replies if r.status == 409]
    assert "Workflow/twin exists" in lost.json()["detail"]
    history = git(api.remote.path, "log", "--format=%H", "--", "workflows/twin.yaml").split()
    assert history == [won.json()["commit"]]
    written = yaml.safe_load(api.remote.read("workflows/twin.yaml"))
    winner = next(b for b in bodies if b["description"] == written["spec"]["description"])
    assert won.json()["name"] == winner["name"]
