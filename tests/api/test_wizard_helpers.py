"""Helpers of the wizard tests: run a wizard's steps, follow it, read its commit."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import RunningDaemon, wait_until
from tests.conftest import git


def author(api: RunningDaemon, revision: str) -> str:
    return git(api.remote.path, "log", "-1", "--format=%an <%ae>", revision)


async def run_steps(
    api: RunningDaemon, path: str, steps: list[dict[str, Any]], *, role: str = "editor"
) -> dict[str, Any]:
    """Post each step in turn (the first gets no workflow_id, the others the one it
    answered); every step must answer 200; the last answer."""
    workflow_id: str | None = None
    answer: dict[str, Any] = {}
    for step in steps:
        body = dict(step)
        if workflow_id is not None:
            body["workflow_id"] = workflow_id
        reply = await api.client.post(path, role=role, json=body)
        assert reply.status == 200, reply.text
        answer = reply.json()
        assert answer["current_step"] == step["step_number"]
        workflow_id = answer["workflow_id"]
    return answer


async def wait_status(api: RunningDaemon, workflow_id: str, status: str) -> dict[str, Any]:
    """GET /workflows/{id} until its status is ``status`` (never another final one)."""

    seen: list[dict[str, Any]] = []

    async def probe() -> dict[str, Any] | None:
        reply = await api.client.get(f"/workflows/{workflow_id}")
        assert reply.status == 200, reply.text
        body: dict[str, Any] = reply.json()
        seen[:] = [body]
        if body["status"] != status:
            assert body["status"] == "in_progress", body
            return None
        return body

    try:
        found: dict[str, Any] = await wait_until(f"wizard {workflow_id} {status}", probe,
                                                 timeout=60)  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the wizard last read: {seen}") from None
    return found
