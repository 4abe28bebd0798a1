"""The workflow dashboard's API (workflow-dashboard-api.md) over real HTTP: list with
filters and paging, get, execute with environment and parameters, executions with step
logs, cancel; camelCase fields as that API has them."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import API_SEED, RunningDaemon, StartApi, wait_until

DASHBOARD_WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: nightly}
spec:
  description: Nightly GPU evaluation
  priority: high
  tags: [eval]
  environments: [staging, production]
  trigger: manual
  config: {retries: 1, retry_delay: 5s}
  user_params: {environment: none, batch: 8}
  workflows:
    provision:
      nodes:
        - {id: fetch, type: noop, user_inputs: {delay: 10ms}}
        - {id: score, type: noop, user_inputs: {delay: 10ms}}
      edges:
        - {source: fetch, dest: score}
"""


async def _ready(api: RunningDaemon, name: str) -> None:
    async def probe() -> bool:
        reply = await api.client.get(f"/api/v1/objects/Workflow/{name}")
        return reply.status == 200 and reply.json()["phase"] == "Ready"

    await wait_until(f"Workflow/{name} Ready", probe)


async def test_list_filters_and_pages(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "nightly.yaml": DASHBOARD_WORKFLOW})
    client = api.client
    listed = (await client.get("/api/workflows")).json()
    assert listed["total"] == 4 and listed["page"] == 1 and listed["pageSize"] == 10
    names = [w["name"] for w in listed["workflows"]]
    assert names == ["nightly", "slow", "smoke", "train"]
    high = (await client.get("/api/workflows?priority=high")).json()["workflows"]
    assert [w["id"] for w in high] == ["nightly"] and high[0]["status"] == "active"
    found = (await client.get("/api/workflows?search=gpu%20EVAL")).json()["workflows"]
    assert [w["id"] for w in found] == ["nightly"]
    page2 = (await client.get("/api/workflows?page=2&pageSize=3")).json()
    assert [w["name"] for w in page2["workflows"]] == ["train"] and page2["total"] == 4
    assert (await client.get("/api/workflows?status=inactive")).json()["workflows"] == []
    assert (await client.get("/api/workflows?pageSize=0")).status == 400


async def test_execute_then_read_the_execution_with_step_logs(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "nightly.yaml": DASHBOARD_WORKFLOW})
    client = api.client
    await _ready(api, "nightly")
    detail = (await client.get("/api/workflows/nightly")).json()
    assert detail["description"] == "Nightly GPU evaluation"
    assert detail["environments"] == ["staging", "production"] and detail["tags"] == ["eval"]
    assert [s["name"] for s in detail["steps"]] == ["fetch", "score"]
    assert detail["config"]["retries"] == 1 and detail["config"]["retryDelay"] == "5s"
    assert detail["creator"] == "Test Writer"

    wrong_env = await client.post(
        "/api/workflows/nightly/execute", role="operator", json={"environment": "qa"}
    )
    assert wrong_env.status == 422 and "environment" in wrong_env.json()["detail"]
    started = await client.post(
        "/api/workflows/nightly/execute",
        role="operator",
        json={"environment": "staging", "parameters": {"batch": 64}},
    )
    assert started.status == 201, started.text
    answer = started.json()
    assert answer["workflowId"] == "nightly" and answer["status"] == "running"
    execution_id = answer["executionId"]

    async def completed() -> dict[str, Any] | None:
        reply = await client.get(f"/api/workflows/nightly/executions/{execution_id}")
        body: dict[str, Any] = reply.json()
        return body if body["status"] == "completed" else None

    done = await wait_until("the dashboard run to complete", completed)
    assert done["parameters"] == {"environment": "staging", "batch": 64}
    assert done["executor"] == "operator-bot" and done["environment"] == "staging"
    steps = done["stepExecutions"]
    assert [s["name"] for s in steps] == ["fetch", "score"]
    assert all(s["status"] == "completed" for s in steps)
    assert steps[0]["logs"][0]["level"] == "info" and "waiting" in steps[0]["logs"][0]["message"]

    history = (await client.get("/api/workflows/nightly/executions?status=completed")).json()
    assert [e["id"] for e in history["executions"]] == [execution_id] and history["total"] == 1
    assert (await client.get("/api/workflows/nightly/executions?status=failed")).json()[
        "total"
    ] == 0
    assert (await client.get("/api/workflows/nightly/executions/nope")).status == 404
    assert (await client.get("/api/workflows/absent")).status == 404
    late = await client.post(
        f"/api/workflows/nightly/executions/{execution_id}/cancel", role="operator"
    )
    assert late.status == 409


async def test_cancel_a_running_dashboard_execution(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    await _ready(api, "slow")
    answer = (await client.post("/api/workflows/slow/execute", role="operator", json={})).json()
    execution_id = answer["executionId"]
    viewer = await client.post(
        f"/api/workflows/slow/executions/{execution_id}/cancel", role="viewer"
    )
    assert viewer.status == 403
    reply = await client.post(
        f"/api/workflows/slow/executions/{execution_id}/cancel", role="operator"
    )
    answer = reply.json()
    detail = answer.pop("detail")
    assert reply.status == 200 and answer == {
        "success": True,
        "message": "Execution cancellation requested",
        "executionId": execution_id,
        "status": "cancelling",
    }
    assert detail.startswith("interrupting s0 (noop)")  # what the cancel does now

    async def cancelled() -> bool:
        body = (await client.get(f"/api/workflows/slow/executions/{execution_id}")).json()
        return body["status"] == "cancelled"

    await wait_until("the run to be cancelled", cancelled)
    other = await client.post(
        f"/api/workflows/train/executions/{execution_id}/cancel", role="operator"
    )
    assert other.status == 404
