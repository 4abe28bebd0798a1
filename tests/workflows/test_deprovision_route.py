"""POST /api/v1/workflows/{name}/deprovision over real HTTP to a real daemon.

Operator role; 202 with the execution (action ``deprovision``, trigger ``api``); 409 when
nothing is provisioned or a run is going, 404 for an unknown Workflow, 422 for a body.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import RunningDaemon, StartApi, start_api, wait_until

__all__ = ["start_api"]  # the fixture, imported so these tests can use it

PROVISIONED = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: made}
spec:
  trigger: on_change
  workflows:
    provision:
      nodes:
        - {id: build, type: noop}
    deprovision:
      nodes:
        - {id: tear_down, type: noop}
"""


async def _state(api: RunningDaemon, name: str, state: str) -> dict[str, Any] | None:
    reply = await api.client.get(f"/api/v1/objects/Workflow/{name}")
    body: dict[str, Any] = reply.json() if reply.status == 200 else {}
    status = body.get("status") or {}
    return body if status.get("state") == state else None


async def test_deprovision_route(start_api: StartApi) -> None:
    api = await start_api(files={"made.yaml": PROVISIONED})
    await wait_until("made COMPLETED", lambda: _state(api, "made", "COMPLETED"))

    viewer = await api.client.post("/api/v1/workflows/made/deprovision", role="viewer")
    assert viewer.status == 403
    path = "/api/v1/workflows/made/deprovision"
    body = await api.client.post(path, role="operator", json={"x": 1})
    assert body.status == 422 and "'x'" in body.json()["detail"]
    missing = await api.client.post("/api/v1/workflows/absent/deprovision", role="operator")
    assert missing.status == 404

    reply = await api.client.post("/api/v1/workflows/made/deprovision", role="operator")
    assert reply.status == 202, reply.text
    started = reply.json()
    assert (started["action"], started["trigger"]) == ("deprovision", "api")
    assert reply.headers["Location"] == f"/api/v1/executions/{started['id']}"

    async def succeeded() -> dict[str, Any] | None:
        found = (await api.client.get(f"/api/v1/executions/{started['id']}")).json()
        return found if found["status"] == "succeeded" else None

    done = await wait_until("the deprovision succeeded", succeeded)
    assert [s["id"] for s in done["steps"]] == ["tear_down"]
    detail = await wait_until("made NOT_STARTED", lambda: _state(api, "made", "NOT_STARTED"))
    assert detail["status"]["resources_created"] == []

    again = await api.client.post("/api/v1/workflows/made/deprovision", role="operator")
    assert again.status == 409 and "nothing provisioned" in again.json()["detail"]
