"""Every route of the API, called over real HTTP against a real daemon, answers as the
OpenAPI document says: the client checks each answer (status, media type, body) and each
body the server accepted against the document, and this test fails unless it reached
every documented operation. Each route's declared role is the one it enforces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from typing import Any

import aiohttp

from reconciler.api import openapi
from tests.api.conftest import (
    API_SEED,
    TOKENS,
    WEBHOOK_SECRET,
    ApiClient,
    Reply,
    RunningDaemon,
    StartApi,
    wait_until,
)

MODELS = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt-4o-mini}
spec:
  modality: llm
  source: {provider_type: cloud_model, provider: openai, uri: openai/gpt-4o-mini}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: mini}
spec:
  modality: embedding
  security_scan: skip
  source: {provider_type: disk, uri: /nonexistent/models/mini}
---
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: mini
  cluster: local
  endpoint_name: chat
  suspend: true
  deploy_config: {concurrent_requests: 10, avg_sequence_length: 100, avg_context_length: 102}
"""
SEED = {**API_SEED, "models.yaml": MODELS}
LOAD = {"concurrent_requests": 10, "avg_sequence_length": 100, "avg_context_length": 102}
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: dev
    cluster: {server: "https://127.0.0.1:9"}
users:
  - name: admin
    user: {token: not-a-real-token}
contexts:
  - name: dev
    context: {cluster: dev, user: admin}
current-context: dev
"""
FLOW = "/_plugins/_flow_framework/workflow"
TEMPLATE = {
    "name": "route probe",
    "description": "one noop",
    "workflows": {"provision": {"nodes": [{"id": "only", "type": "noop"}]}},
}


def expect(reply: Reply, *statuses: int) -> Any:
    assert reply.status in statuses, (reply.status, reply.text[:500])
    media = reply.headers.get("Content-Type", "").split(";", 1)[0]
    return reply.json() if media.endswith("json") else None


async def _phase(api: RunningDaemon, key: str, phase: str) -> bool:
    reply = await api.client.get(f"/api/v1/objects/{key}")
    return reply.status == 200 and reply.json()["phase"] == phase


async def _finished(api: RunningDaemon, execution_id: str) -> bool:
    reply = await api.client.get(f"/api/v1/executions/{execution_id}")
    return reply.json()["status"] not in ("queued", "running")


async def _in_git(api: RunningDaemon, key: str, present: bool = True) -> bool:
    reply = await api.client.get(f"/api/v1/objects/{key}")
    return reply.status == 200 and reply.json()["in_git"] is present


async def _native(api: RunningDaemon) -> None:
    client = api.client
    expect(await client.get("/healthz", role=None), 200)
    expect(await client.get("/readyz", role=None), 200)
    expect(await client.get("/api/v1/openapi.json", role=None), 200)
    expect(await client.get("/metrics"), 200)
    expect(await client.get("/api/v1/status"), 200)
    expect(await client.get("/api/v1/objects?kind=Workflow&label=team=research&limit=2"), 200)
    await wait_until("Workflow/train Ready", lambda: _phase(api, "Workflow/train", "Ready"))
    expect(await client.get("/api/v1/objects/Workflow/train"), 200)
    expect(await client.get("/api/v1/objects/Workflow/train/explain"), 200)
    expect(await client.get("/api/v1/plan"), 200)
    expect(await client.get("/api/v1/steps"), 200)
    shards = expect(await client.get("/api/v1/shards"), 200)
    assert shards["enabled"] is False and shards["held_here"] == [0]  # one daemon, one shard
    expect(await client.post("/api/v1/sync", role="operator", json={}), 202)
    one = expect(
        await client.post(
            "/api/v1/sync", role="operator", json={"kind": "Workflow", "name": "train"}
        ),
        202,
    )
    assert one["object"] == "Workflow/train"

    run = expect(
        await client.post(
            "/api/v1/workflows/train/executions", role="operator", json={"params": {"epochs": 2}}
        ),
        201,
    )
    await wait_until("the run to finish", lambda: _finished(api, run["id"]))
    expect(await client.get(f"/api/v1/executions/{run['id']}?logs=false"), 200)
    expect(await client.get("/api/v1/executions?status=succeeded&status=failed&limit=5"), 200)
    expect(await client.post("/api/v1/workflows/train/deprovision", role="operator", json={}), 202)
    slow = expect(await client.post("/api/v1/workflows/slow/executions", role="operator"), 201)
    expect(await client.post(f"/api/v1/executions/{slow['id']}/cancel", role="operator"), 202)

    document = "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: extra}\nspec: {}\n"
    put = expect(
        await client.put(
            "/api/v1/objects/Project/extra",
            role="editor",
            data=document.encode(),
            headers={"Content-Type": "application/yaml"},
        ),
        202,
    )
    expect(await client.get(f"/api/v1/tasks/{put['task_id']}"), 200)
    expect(await client.delete("/api/v1/objects/Project/extra", role="editor"), 202)

    body = json.dumps({"ref": "refs/heads/main"}).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    expect(await client.post("/api/v1/webhooks/git", role=None, data=body, headers=headers), 202)


async def _dashboard(api: RunningDaemon) -> None:
    client = api.client
    expect(await client.get("/api/workflows?status=active&pageSize=5"), 200)
    expect(await client.get("/api/workflows/train"), 200)
    run = expect(
        await client.post(
            "/api/workflows/train/execute", role="operator", json={"parameters": {"epochs": 1}}
        ),
        201,
    )
    await wait_until("the run to finish", lambda: _finished(api, run["executionId"]))
    expect(await client.get("/api/workflows/train/executions?status=completed"), 200)
    expect(await client.get(f"/api/workflows/train/executions/{run['executionId']}"), 200)
    slow = expect(await client.post("/api/workflows/slow/execute", role="operator"), 201)
    cancel = f"/api/workflows/slow/executions/{slow['executionId']}/cancel"
    expect(await client.post(cancel, role="operator"), 200)
    created = expect(
        await client.post(
            "/api/workflows", role="editor", json={"name": "Route Probe", "priority": "low"}
        ),
        201,
    )
    await wait_until("the created workflow", lambda: _in_git(api, f"Workflow/{created['id']}"))
    where = f"/api/workflows/{created['id']}"
    expect(await client.put(where, role="editor", json={"description": "probed"}), 200)
    expect(await client.delete(where, role="editor"), 200)


async def _endpoint(api: RunningDaemon) -> None:
    client = api.client
    path = "/api/workflows/train/endpoint"
    for action in ("get-configuration", "get-mcp-tool-definitions"):
        expect(await client.post(path, json={"request": {"action_type": action}}), 200)
    assets = {"action_type": "get-asset-data", "get_asset_data_inputs": ["assets/none.txt"]}
    expect(await client.post(path, json={"request": assets}), 200)
    inputs = base64.b64encode(json.dumps({"epochs": 1}).encode()).decode()
    kickoff = {"action_type": "kickoff", "kickoff_inputs": inputs}
    expect(await client.post(path, role="operator", json={"request": kickoff}), 200)


async def _inference(api: RunningDaemon) -> None:
    client = api.client
    config = {"name": "gpt-mini", "credential": "openai-prod", "deploy_config": LOAD}
    deploy = expect(
        await client.post(
            "/deploy", role="editor", json={"model_id": "gpt-4o-mini", "config": config}
        ),
        202,
    )
    expect(await client.get(f"/deploy/{deploy['task_id']}"), 200)
    expect(await client.get("/deploy-status/gpt-4o-mini"), 200)
    await wait_until("the deployment in Git", lambda: _in_git(api, "Deployment/gpt-mini"))
    removed = expect(await client.post("/delete", role="editor", json={"model_id": "gpt-4o-mini"}),
                     202)  # fmt: skip
    expect(await client.get(f"/delete/{removed['task_id']}"), 200)
    expect(await client.get("/delete-status/gpt-4o-mini"), 200)


async def _wizard(api: RunningDaemon) -> None:
    client = api.client
    first = {"workflow_total_steps": 4, "step_number": 1}
    steps = [
        ("/models/cloud-model-workflow", {**first, "provider_type": "cloud_model"}),
        ("/models/local-model-workflow", {**first, "modality": "llm"}),
        ("/models/deploy-workflow", {**first, "model_id": "gpt-4o-mini"}),
        ("/models/security-scan", {**first, "model_id": "mini"}),
        ("/endpoints/add-worker", {**first, "endpoint_id": "chat", "additional_concurrency": 2}),
    ]
    drafts = [expect(await client.post(path, role="editor", json=body), 200)
              for path, body in steps]  # fmt: skip
    later = {"workflow_id": drafts[0]["workflow_id"], "step_number": 2, "provider_id": "openai"}
    expect(await client.post(steps[0][0], role="editor", json=later), 200)
    form = aiohttp.FormData()
    fields = {"workflow_total_steps": "3", "step_number": "1", "name": "Route Dev",
              "ingress_url": "https://127.0.0.1:10001", "trigger_workflow": "false"}  # fmt: skip
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("configuration_file", KUBECONFIG.encode(), filename="kubeconfig.yaml",
                   content_type="application/yaml")  # fmt: skip
    cluster = await _post_form(client, "/clusters/clusters", form)
    expect(cluster, 200)
    expect(await client.get(f"/workflows/{drafts[0]['workflow_id']}"), 200)


async def _post_form(client: ApiClient, path: str, form: aiohttp.FormData) -> Reply:
    headers = {"Authorization": f"Bearer {TOKENS['editor']}"}
    async with client.session.post(client.base + path, data=form, headers=headers) as response:
        reply = Reply(response.status, dict(response.headers), await response.text())
    client.replies.append(reply)
    client.answers.check(
        "POST",
        path,
        status=reply.status,
        content_type=reply.headers.get("Content-Type", ""),
        text=reply.text,
    )
    return reply


async def _flow_framework(api: RunningDaemon) -> None:
    client = api.client
    created = expect(await client.post(FLOW, role="editor", json=TEMPLATE), 201)
    key = f"Workflow/{created['workflow_id']}"
    one = f"{FLOW}/{created['workflow_id']}"
    await wait_until("the template loaded", lambda: _in_git(api, key))
    expect(await client.get(one), 200)
    expect(await client.put(one, role="editor", json={**TEMPLATE, "description": "two"}), 200)
    expect(await client.get(f"{FLOW}/_steps?workflow_step=noop"), 200)
    expect(await client.get(f"{FLOW}/_search"), 200)
    query = {"query": {"match": {"name": "route probe"}}, "size": 5}
    expect(await client.post(f"{FLOW}/_search", json=query), 200)
    run = expect(await client.post(f"{one}/_provision", role="operator", json={}), 200)
    await wait_until("the provision", lambda: _finished(api, run["execution_id"]))
    expect(await client.get(f"{one}/_status?all=true"), 200)

    async def deprovisioned() -> bool:
        # The PUT's spec change queues a run of its own, which may land after the
        # provision: the daemon then answers 409 ("wait for it or cancel it first").
        reply = await client.post(f"{one}/_deprovision", role="operator")
        return expect(reply, 200, 409) is not None and reply.status == 200

    await wait_until("the deprovision to be accepted", deprovisioned)
    expect(await client.delete(one, role="editor"), 200)


async def test_every_route_answers_as_the_document_says(start_api: StartApi) -> None:
    api = await start_api(files=SEED)
    await _native(api)
    await _dashboard(api)
    await _endpoint(api)
    await _inference(api)
    await _wizard(api)
    await _flow_framework(api)
    checked = api.client.answers
    reached = {(s.method, s.path) for s in checked.seen if 200 <= s.status < 300}
    missing = sorted(checked.operations() - reached)
    assert not missing, f"operations no call reached with a success: {missing}"


_BELOW = {"viewer": None, "operator": "viewer", "editor": "operator", "admin": "editor"}


async def test_each_route_enforces_its_declared_role(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    for route in openapi.declared():
        path = re.sub(r"\{kind\}", "Workflow", route.path)
        path = re.sub(r"\{[^}]+\}", "x", path)
        body = {} if route.method in ("POST", "PUT") else None
        if route.role is None:
            if route.method == "GET":
                expect(await client.request("GET", path, role=None), 200)
            continue
        below = _BELOW[route.role]
        reply = await client.request(route.method, path, role=below, json=body)
        wanted = 401 if below is None else 403
        assert reply.status == wanted, (route.method, route.path, reply.status, reply.text)
        granted = await client.request(route.method, path, role=route.role, json=body)
        assert granted.status not in (401, 403), (route.method, route.path, granted.text)
