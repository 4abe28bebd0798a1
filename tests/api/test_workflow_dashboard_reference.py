"""The workflow dashboard document's own example bodies (workflow-dashboard-api.md), sent
verbatim over real HTTP to a real daemon on a real Git remote, and what each field then
changes: create and update take environmentStrategy, traceLevel, environments and
options; the detail reads them back with creator and createdAt from the Git history of
the workflow's file; a run retries, keeps step logs, notifies and targets a cluster as
those fields say; config carries computeProfile, resources and the notifications in the
document's shape."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.api.conftest import API_SEED, RunningDaemon, StartApi, wait_until
from tests.conftest import git

# --- the document's example bodies, verbatim ------------------------------------------

CREATE_BODY = {
    "name": "New ML Training Pipeline",
    "description": "Handles distributed training across multiple GPU nodes",
    "priority": "medium",
    "environmentStrategy": "time",
    "traceLevel": "med",
    "environments": {"awsVirginia": True, "dgxCloudCalifornia": False},
    "options": {"enableNotifications": False, "enableLogging": True, "enableRetry": False},
}
UPDATE_BODY = {
    "name": "Updated ML Training Pipeline",
    "description": "Updated description for the workflow",
    "priority": "high",
    "options": {"enableNotifications": True, "enableLogging": True, "enableRetry": True},
}
EXECUTE_BODY = {
    "environment": "production",
    "parameters": {"datasetPath": "s3://datasets/imagenet", "batchSize": 64, "epochs": 10},
}
CREATE_ANSWER_KEYS = {"id", "name", "description", "status", "priority", "creator", "createdAt"}
UPDATE_ANSWER_KEYS = {"id", "name", "description", "status", "priority", "updatedAt"}
DETAIL_KEYS = {
    "id", "name", "description", "status", "priority", "creator", "createdAt", "lastRun",
    "environments", "tags", "steps", "config",
}  # fmt: skip
CONFIG_KEYS = {
    "timeout", "retries", "retryDelay", "computeProfile", "resources", "notifications",
    "notificationEvents",
}  # fmt: skip


class Hook:
    """A webhook receiver on loopback: keeps each event it is sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(await request.json())
        return web.Response(status=204)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/events", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    yield receiver
    await runner.cleanup()


async def _task_done(api: RunningDaemon, task_id: str) -> None:
    async def probe() -> bool:
        task: dict[str, Any] = (await api.client.get(f"/api/v1/tasks/{task_id}")).json()
        assert task["status"] != "failed", task
        return task["status"] == "done"

    await wait_until(f"write task {task_id} done", probe)


def _utc(iso: str) -> str:
    when = datetime.datetime.fromisoformat(iso).astimezone(datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_the_documents_create_and_update_bodies_work_unchanged(
    start_api: StartApi, hook: Hook
) -> None:
    api = await start_api(config={"notifications": {"defaults": {"webhook": hook.url}}})
    client = api.client
    created = await client.post("/api/workflows", role="editor", json=CREATE_BODY)
    assert created.status == 201, created.text
    answer = created.json()
    assert set(answer) >= CREATE_ANSWER_KEYS
    assert {k: answer[k] for k in ("id", "name", "description", "status", "priority")} == {
        "id": "new-ml-training-pipeline",
        "name": CREATE_BODY["name"],
        "description": CREATE_BODY["description"],
        "status": "inactive",
        "priority": "medium",
    }
    wid = answer["id"]
    spec = yaml.safe_load(api.remote.read(f"workflows/{wid}.yaml"))["spec"]
    assert spec["environments"] == ["awsVirginia"]
    assert spec["environment_strategy"] == "time"
    assert spec["config"] == {
        "logs": {"level": "warning", "enabled": True},
        "notifications": {"enabled": False},
        "retry_enabled": False,
    }
    await _task_done(api, answer["taskId"])

    async def detail() -> dict[str, Any] | None:
        reply = await client.get(f"/api/workflows/{wid}")
        return reply.json() if reply.status == 200 else None

    shown = await wait_until("the new workflow's detail", detail)
    assert set(shown) >= DETAIL_KEYS and set(shown["config"]) >= CONFIG_KEYS
    first_commit = answer["commit"]
    authored = git(api.remote.path, "log", "-1", "--format=%aI", first_commit)
    assert shown["creator"] == "editor-bot" and shown["createdAt"] == _utc(authored)
    assert shown["status"] == "inactive" and shown["environments"] == ["awsVirginia"]
    assert shown["environmentStrategy"] == "time" and shown["traceLevel"] == "med"
    assert shown["options"] == CREATE_BODY["options"]
    config = shown["config"]
    assert config["retries"] == 0  # enableRetry: false
    assert config["notifications"] == {"email": False, "slack": False, "webhook": False}
    assert config["notificationEvents"] == ["complete", "fail"]
    assert config["computeProfile"] == "None"
    assert config["resources"] == {"cpu": "not requested", "memory": "not requested",
                                   "gpu": "none"}  # fmt: skip

    updated = await client.put(f"/api/workflows/{wid}", role="admin", json=UPDATE_BODY)
    assert updated.status == 200, updated.text
    answer = updated.json()
    assert set(answer) >= UPDATE_ANSWER_KEYS
    assert {k: answer[k] for k in ("id", "name", "description", "priority")} == {
        "id": wid,
        "name": UPDATE_BODY["name"],
        "description": UPDATE_BODY["description"],
        "priority": "high",
    }
    spec = yaml.safe_load(api.remote.read(f"workflows/{wid}.yaml"))["spec"]
    assert spec["config"] == {
        "logs": {"level": "warning", "enabled": True},
        "notifications": {"enabled": True},
        "retry_enabled": True,
        "retries": 3,
    }
    await _task_done(api, answer["taskId"])
    shown = await wait_until(
        "the update read back",
        lambda: _when(detail(), lambda d: d["name"] == UPDATE_BODY["name"]),
    )
    assert shown["options"] == UPDATE_BODY["options"] and shown["priority"] == "high"
    assert shown["config"]["retries"] == 3
    assert shown["config"]["notifications"] == {"email": False, "slack": False, "webhook": True}
    # Still the commit that added the file, not the update's (by admin-bot).
    assert shown["creator"] == "editor-bot" and shown["createdAt"] == _utc(authored)


async def _when(reply: Any, accept: Any) -> Any:
    found = await reply
    return found if found is not None and accept(found) else None


async def test_refused_values_name_their_field_and_commit_nothing(start_api: StartApi) -> None:
    api = await start_api()
    before = api.remote.tip()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**CREATE_BODY, "environmentStrategy": "cost"},
         "environmentStrategy 'cost' is not a strategy: one of ordered, round_robin, time"),
        ({**CREATE_BODY, "traceLevel": "verbose"},
         "traceLevel 'verbose' is not a trace level: one of low, med, high"),
        ({**CREATE_BODY, "options": {"enableMagic": True}}, "options.enableMagic: not an option"),
        ({**CREATE_BODY, "options": {"enableRetry": "yes"}}, "options.enableRetry must be true"),
        ({**CREATE_BODY, "environments": {"awsVirginia": False}},
         "environmentStrategy: the workflow has no environments to pick among"),
        ({**CREATE_BODY, "environments": "awsVirginia"}, "environments must be a list"),
        ({**CREATE_BODY, "options": {"enableNotifications": True}},
         "options.enableNotifications: workflow 'new-ml-training-pipeline' names no "
         "notification channel"),
        ({**CREATE_BODY, "colour": "red"}, "field 'colour' has no place in a Workflow spec"),
    ]  # fmt: skip
    for body, words in cases:
        reply = await api.client.post("/api/workflows", role="editor", json=body)
        assert reply.status == 422 and words in reply.json()["detail"], (body, reply.text)
    put = await api.client.put(
        "/api/workflows/train", role="editor", json={"traceLevel": "extreme"}
    )
    assert put.status == 422 and "traceLevel 'extreme'" in put.json()["detail"]
    assert api.remote.tip() == before


# --- a run does what the fields say -----------------------------------------------------

CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu-prod, labels: {reconciler/environment: production}}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu-stage, labels: {reconciler/environment: staging}}
spec: {driver: local}
"""


def _training(url: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: image-training}}
spec:
  description: Image classification training
  trigger: manual
  environments: [staging, production]
  user_params: {{datasetPath: "", batchSize: 1, epochs: 1}}
  config:
    retry_delay: 10ms
    retry_enabled: false
    notifications: {{enabled: false, webhook: "{url}", events: [complete, fail]}}
  workflows:
    provision:
      nodes:
        - {{id: prepare, type: noop, user_inputs: {{delay: 10ms}}}}
        - id: train
          type: fail
          user_inputs: {{message: GPU memory allocation failed, until_attempt: 2}}
      edges:
        - {{source: prepare, dest: train}}
"""


async def _run(api: RunningDaemon) -> dict[str, Any]:
    """Execute image-training with the document's body once the daemon has applied its
    latest spec (before that, execute answers 409); the finished execution."""

    async def started() -> dict[str, Any] | None:
        reply = await api.client.post(
            "/api/workflows/image-training/execute", role="operator", json=EXECUTE_BODY
        )
        assert reply.status in (201, 409), reply.text
        return reply.json() if reply.status == 201 else None

    execution_id = (await wait_until("a run to start", started))["executionId"]

    async def finished() -> dict[str, Any] | None:
        reply = await api.client.get(f"/api/workflows/image-training/executions/{execution_id}")
        body: dict[str, Any] = reply.json()
        return body if body["status"] != "running" else None

    return await wait_until("the run to finish", finished)


async def _update(api: RunningDaemon, body: dict[str, Any]) -> None:
    reply = await api.client.put("/api/workflows/image-training", role="editor", json=body)
    assert reply.status == 200, reply.text
    await _task_done(api, reply.json()["taskId"])


def _levels(execution: dict[str, Any], step: str) -> list[str]:
    found = next(s for s in execution["stepExecutions"] if s["name"] == step)
    return [entry["level"] for entry in found["logs"]]


async def test_a_run_retries_logs_notifies_and_targets_as_the_fields_say(
    start_api: StartApi, hook: Hook
) -> None:
    files = {**API_SEED, "clusters-gpu.yaml": CLUSTERS, "training.yaml": _training(hook.url)}
    api = await start_api(files=files)
    first = await _run(api)
    assert first["status"] == "failed"  # no retry: the first failure stands
    assert first["environment"] == "production" and first["cluster"] == "gpu-prod"
    assert first["parameters"] == EXECUTE_BODY["parameters"]
    assert hook.events == []  # notifications disabled

    await _update(api, UPDATE_BODY)
    second = await _run(api)
    assert second["status"] == "completed" and second["cluster"] == "gpu-prod"
    assert _levels(second, "train") == ["error", "info", "info"]
    await wait_until("the complete event", lambda: _events(hook))
    assert [(e["event"], e["execution"]["id"]) for e in hook.events] == [
        ("complete", second["id"])
    ]

    await _update(api, {"traceLevel": "low"})
    third = await _run(api)
    assert third["status"] == "completed"
    assert _levels(third, "train") == ["error"] and _levels(third, "prepare") == []
    await _update(api, {"options": {"enableLogging": False}})
    fourth = await _run(api)
    assert fourth["status"] == "completed"
    assert all(s["logs"] == [] for s in fourth["stepExecutions"])
    listed = (await api.client.get("/api/workflows/image-training/executions")).json()
    assert [e["cluster"] for e in listed["executions"]] == ["gpu-prod"] * 4


async def _events(hook: Hook) -> bool:
    return bool(hook.events)


# --- config: compute profile and resources --------------------------------------------

COMPUTE = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: a100s}
spec:
  driver: kubernetes
  kubeconfig: {secret: a100s-kubeconfig}
  gpu: {type: nvidia-a100-80gb, count: 8}
---
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {name: two-gpus}
spec:
  modality: llm
  runtime: {command: ["serve", "{model_path}", "{port}"], port: 8000}
  resources: {gpus_per_worker: 2, cpu: "8", memory: 32Gi}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: local-llm}
spec:
  modality: llm
  suspend: true
  source: {provider_type: disk, uri: /srv/models/local-llm}
---
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: local-llm
  cluster: a100s
  template: two-gpus
  endpoint_name: chat
  workers: 3
  suspend: true
  deploy_config: {concurrent_requests: 4, avg_sequence_length: 100, avg_context_length: 100}
---
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: eval-on-gpus}
spec:
  trigger: manual
  user_params: {endpoint: chat}
  workflows:
    provision:
      nodes:
        - {id: wait, type: wait_ready, user_inputs: {deployment: "${{ endpoint }}"}}
        - id: job
          type: k8s_job
          user_inputs: {cluster: a100s, image: ghcr.io/example/eval:1, gpus: 2}
      edges:
        - {source: wait, dest: job}
"""


async def test_config_derives_compute_from_the_graph(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "compute.yaml": COMPUTE})

    async def detail() -> dict[str, Any] | None:
        reply = await api.client.get("/api/workflows/eval-on-gpus")
        return reply.json() if reply.status == 200 else None

    shown = await wait_until("the detail", detail)
    assert shown["config"]["computeProfile"] == "GPU-Optimized"
    # 3 workers x (8 cores, 32 GiB, 2 GPUs) of the Deployment, + the job's 2 GPUs.
    assert shown["config"]["resources"] == {
        "cpu": "24 cores",
        "memory": "96 GiB",
        "gpu": "8x nvidia-a100-80gb",
    }
    smoke = (await api.client.get("/api/workflows/smoke")).json()
    assert smoke["config"]["computeProfile"] == "None"
