"""API tasks follow their own object, whatever else the daemon is doing.

Beside a backlog (Models that stall and Deployments waiting on them) and a workflow run
that takes a minute, a write through the native API and a ``/deploy`` of the inference
surface each complete as soon as their own object is applied (Ready), while that run
still goes on. A cancel through the API interrupts that run's 60-second step at once and
says what it is doing.
"""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import RunningDaemon, StartApi, wait_until
from tests.api.test_inference_tasks import CONFIG
from tests.api.test_inference_tasks import SEED as INFERENCE_SEED
from tests.daemon.backlog import backlog_files

LONG_RUN = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: long}
spec:
  trigger: manual
  workflows:
    provision:
      nodes:
        - {id: wait, type: noop, user_inputs: {delay: 60s}}
"""

PROJECT = {
    "apiVersion": "reconciler/v1",
    "kind": "Project",
    "metadata": {"name": "ml-platform"},
    "spec": {"description": "written through the API beside a long run"},
}

FILES = {
    **INFERENCE_SEED,
    "long.yaml": LONG_RUN,
    **backlog_files(models=300, deployments=1200),
}


async def _start_long_run(api: RunningDaemon) -> str:
    async def started() -> str | None:
        reply = await api.client.post("/api/v1/workflows/long/executions", role="operator")
        return reply.json()["id"] if reply.status == 201 else None

    execution_id: str = await wait_until("the long run started", started, timeout=60)

    async def running() -> bool:
        reply = await api.client.get(f"/api/v1/executions/{execution_id}")
        steps = reply.json().get("steps") or []
        return any(step.get("status") == "running" for step in steps)

    await wait_until("its 60 s step running", running, timeout=30)
    return execution_id


async def _status(api: RunningDaemon, execution_id: str) -> str:
    reply = await api.client.get(f"/api/v1/executions/{execution_id}")
    status: str = reply.json()["status"]
    return status


async def test_tasks_complete_while_an_unrelated_run_goes_on(start_api: StartApi) -> None:
    api = await start_api(files=FILES)
    long_run = await _start_long_run(api)

    put = await api.client.put("/api/v1/objects/Project/ml-platform", role="editor", json=PROJECT)
    assert put.status == 202, put.text
    write_task = put.json()["task_id"]

    async def written() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.client.get(f"/api/v1/tasks/{write_task}")).json()
        return body if body["status"] in ("done", "failed") else None

    done = await wait_until("the write task done", written, timeout=30)
    assert done["status"] == "done", done
    assert await _status(api, long_run) == "running"  # its completion never waited on it

    deploy = await api.client.post(
        "/deploy", role="editor", json={"model_id": "gpt-4o-mini", "config": CONFIG}
    )
    assert deploy.status == 202, deploy.text

    async def deployed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.client.get(f"/deploy/{deploy.json()['task_id']}")).json()
        return body if body["status"] in ("done", "failed") else None

    finished = await wait_until("the deploy task done", deployed, timeout=30)
    assert finished["status"] == "done", finished
    assert await _status(api, long_run) == "running"
    backlog = (await api.client.get("/api/v1/objects/Deployment/backlog-d7")).json()
    assert backlog["phase"] == "Pending"  # the backlog is still there, waiting


async def test_cancel_interrupts_a_60_s_step_at_once(start_api: StartApi) -> None:
    api = await start_api(files=FILES)
    long_run = await _start_long_run(api)

    asked = time.monotonic()
    reply = await api.client.post(f"/api/v1/executions/{long_run}/cancel", role="operator")
    assert reply.status == 202, reply.text
    answer = reply.json()
    assert answer["state"] == "cancelling" and answer["interrupting"] == ["wait (noop)"]
    assert "interrupting wait (noop)" in answer["message"]

    async def cancelled() -> bool:
        return await _status(api, long_run) == "cancelled"

    await wait_until("the run cancelled", cancelled, timeout=10)
    assert time.monotonic() - asked < 2.0
    record = (await api.client.get(f"/api/v1/executions/{long_run}")).json()
    [step] = record["steps"]
    assert step["status"] == "cancelled"
    assert "waiting 60s" in (step.get("log") or step.get("logs") or "")


async def test_a_sync_of_one_object_reruns_it_alone(start_api: StartApi) -> None:
    api = await start_api(files=FILES)
    model = "Model/backlog-m5"

    async def stalled() -> bool:
        body = (await api.client.get(f"/api/v1/objects/{model}")).json()
        return body.get("phase") == "Stalled"

    await wait_until("the backlog Model stalled", stalled, timeout=60)
    assert api.daemon.store is not None
    runs_before = {
        name: len(api.daemon.store.list_executions(kind="Model", name=name))
        for name in ("backlog-m5", "backlog-m6")
    }
    # Nothing in Git moved, so nothing looks at it again until asked.
    reply = await api.client.post(
        "/api/v1/sync", role="operator", json={"kind": "Model", "name": "backlog-m5"}
    )
    assert reply.status == 202 and reply.json()["object"] == model

    async def ran_again() -> bool:
        assert api.daemon.store is not None
        runs = api.daemon.store.list_executions(kind="Model", name="backlog-m5")
        return len(runs) == runs_before["backlog-m5"] + 1 and runs[0].finished

    await wait_until("the synced Model run again", ran_again, timeout=30)
    others = len(api.daemon.store.list_executions(kind="Model", name="backlog-m6"))
    assert others == runs_before["backlog-m6"]  # the rest of the backlog was left alone
