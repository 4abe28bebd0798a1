"""The inference deployment tasks API (inference-deployment-tasks.md) over real HTTP against
a real daemon on a real Git remote: a deploy commits a Deployment authored by the caller
and its task follows the reconcile to done (or failed); a delete commits its removal;
status by task id and by model id; 404s; fields with no place in a Deployment are 422."""

from __future__ import annotations

from typing import Any

import yaml

from tests.api.conftest import API_SEED, SECRET_VALUES, RunningDaemon, StartApi, wait_until
from tests.conftest import git

MODELS = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt-4o-mini}
spec:
  modality: llm
  source: {provider_type: cloud_model, provider: openai, uri: openai/gpt-4o-mini}
---
apiVersion: reconciler/v1
kind: Credential
metadata: {name: missing-key}
spec: {provider: openai, secret: no-such-secret}
"""
SEED = {**API_SEED, "models.yaml": MODELS}
LOAD = {"concurrent_requests": 10, "avg_sequence_length": 100, "avg_context_length": 102}
CONFIG = {"name": "gpt-mini", "project": "research", "credential": "openai-prod",
          "endpoint_name": "chat", "deploy_config": LOAD}  # fmt: skip


def _author(api: RunningDaemon, commit: str) -> str:
    return git(api.remote.path, "log", "-1", "--format=%an <%ae>", commit)


async def _final(api: RunningDaemon, path: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        reply = await api.client.get(path)
        assert reply.status == 200, reply.text
        body: dict[str, Any] = reply.json()
        assert body["status"] in ("pending", "processing", "done", "failed"), body
        return body if body["status"] in ("done", "failed") else None

    found: dict[str, Any] = await wait_until(f"{path} to finish", probe)
    return found


async def test_deploy_then_delete_through_git(start_api: StartApi) -> None:
    api = await start_api(files=SEED)
    client = api.client
    before = api.remote.tip()
    reply = await client.post(
        "/deploy", role="editor", json={"model_id": "gpt-4o-mini", "config": CONFIG}
    )
    assert reply.status == 202, reply.text
    task = reply.json()
    assert task["model_id"] == "gpt-4o-mini" and task["status"] in ("pending", "processing")
    meta = task["metadata"]
    assert meta["deployment"] == "gpt-mini" and meta["path"] == "deployments/gpt-mini.yaml"
    assert api.remote.tip() == meta["commit"]
    assert git(api.remote.path, "rev-parse", f"{meta['commit']}^") == before
    assert _author(api, meta["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("deployments/gpt-mini.yaml"))
    assert written["kind"] == "Deployment" and written["spec"] == {"model": "gpt-4o-mini", **{
        k: v for k, v in CONFIG.items() if k != "name"}}  # fmt: skip

    done = await _final(api, f"/deploy/{task['task_id']}")
    assert done["status"] == "done", done
    assert done["metadata"]["endpoint_url"].startswith("https://")
    by_model = (await client.get("/deploy-status/gpt-4o-mini")).json()
    assert by_model["task_id"] == task["task_id"] and by_model["status"] == "done"
    deployment = (await client.get("/api/v1/objects/Deployment/gpt-mini")).json()
    assert deployment["phase"] == "Ready"

    removal = await client.post("/delete", role="editor", json={"model_id": "gpt-4o-mini"})
    assert removal.status == 202, removal.text
    gone = removal.json()
    assert gone["metadata"]["deployment"] == "gpt-mini"
    assert "deployments/gpt-mini.yaml" not in api.remote.paths()
    assert _author(api, gone["metadata"]["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    finished = await _final(api, f"/delete/{gone['task_id']}")
    assert finished["status"] == "done", finished
    assert (await client.get("/delete-status/gpt-4o-mini")).json()["task_id"] == gone["task_id"]
    assert (await client.get("/api/v1/objects/Deployment/gpt-mini")).status == 404
    again = await client.post("/delete", role="editor", json={"model_id": "gpt-4o-mini"})
    assert again.status == 404
    assert not [v for r in client.replies for v in SECRET_VALUES if v in r.text]


async def test_a_deployment_that_stalls_fails_its_task(start_api: StartApi) -> None:
    api = await start_api(files=SEED)
    config = {**CONFIG, "name": "no-key", "credential": "missing-key"}
    reply = await api.client.post(
        "/deploy", role="admin", json={"model_id": "gpt-4o-mini", "config": config}
    )
    assert reply.status == 202, reply.text
    assert (
        _author(api, reply.json()["metadata"]["commit"]) == "admin-bot <admin-bot@reconciler.api>"
    )
    failed = await _final(api, f"/deploy/{reply.json()['task_id']}")
    assert failed["status"] == "failed" and "no-such-secret" in failed["metadata"]["error"]


async def test_refusals_name_the_field_and_commit_nothing(start_api: StartApi) -> None:
    api = await start_api(files=SEED)
    client = api.client
    before = api.remote.tip()
    body = {"model_id": "gpt-4o-mini", "config": CONFIG}
    for role in ("viewer", "operator"):
        assert (await client.post("/deploy", role=role, json=body)).status == 403
        assert (await client.post("/delete", role=role, json=body)).status == 403
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"model_id": "gpt-4o-mini", "config": {**CONFIG, "param": "value"}}, 422, "config.param"),
        ({**body, "replicas": 2}, 422, "'replicas'"),
        ({"model_id": "gpt-4o-mini", "config": {"name": "x"}}, 422, "config.deploy_config"),
        ({"model_id": "nope", "config": CONFIG}, 404, "no Model 'nope'"),
        ({"config": CONFIG}, 422, "model_id"),
        ({"model_id": "gpt-4o-mini", "config": [1]}, 422, "config"),
        ({"model_id": "gpt-4o-mini", "config": {**CONFIG, "name": "../x"}}, 422, "config.name"),
        ({"model_id": "gpt-4o-mini", "config": {**CONFIG, "name": "A b"}}, 422, "config.name"),
    ]
    for sent, status, words in cases:
        reply = await client.post("/deploy", role="editor", json=sent)
        assert reply.status == status and words in reply.json()["detail"], reply.text
    bad_load = {**CONFIG, "deploy_config": {"concurrent_requests": -1}}
    invalid = await client.post(
        "/deploy", role="editor", json={"model_id": "gpt-4o-mini", "config": bad_load}
    )
    assert invalid.status == 422 and "nothing was committed" in invalid.json()["detail"]
    nothing = await client.post("/delete", role="editor", json={"model_id": "gpt-4o-mini"})
    assert nothing.status == 404
    extra = await client.post("/delete", role="editor", json={"model_id": "x", "force": True})
    assert extra.status == 422 and "'force'" in extra.json()["detail"]
    for path in ("/deploy/nope", "/delete/nope", "/deploy-status/nope", "/delete-status/nope"):
        assert (await client.get(path)).status == 404, path
    huge = b'{"model_id": "' + b"a" * (1 << 20) + b'"}'
    oversized = await client.post(
        "/deploy", role="editor", data=huge, headers={"Content-Type": "application/json"}
    )
    assert oversized.status == 413
    assert api.remote.tip() == before
