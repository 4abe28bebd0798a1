"""Wizard steps out of order, fields of another step, roles, review branches, expiry of
an untriggered draft (by the drafts' clock, no waiting), and a draft kept across a
daemon restart; all over real HTTP against a real daemon."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from reconciler.api.app import ApiServer
from reconciler.api.compat.wizard_drafts import DEFAULT_TTL_S, WIZARD_DRAFTS
from reconciler.api.daemon_view import serving
from reconciler.daemon.config import load_config
from reconciler.daemon.service import Daemon
from reconciler.drivers.sd_notify import SystemdNotifier
from tests.api.conftest import API_SEED, ApiClient, StartApi, wait_until, write_api_config
from tests.api.test_wizard_helpers import author, run_steps
from tests.conftest import MakeGitRemote

CLOUD = "/models/cloud-model-workflow"
FIRST = {"workflow_total_steps": 6, "step_number": 1, "provider_type": "cloud_model"}


async def _refused(client: ApiClient, path: str, body: dict[str, Any], status: int = 422) -> str:
    reply = await client.post(path, role="editor", json=body)
    assert reply.status == status, reply.text
    detail: str = reply.json()["detail"]
    return detail


async def test_steps_out_of_order_and_fields_of_another_step(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    tip = api.remote.tip()
    no_total = await _refused(client, CLOUD, {"step_number": 1, "provider_type": "cloud_model"})
    assert no_total.startswith("workflow_total_steps:")
    assert (await _refused(client, CLOUD, {**FIRST, "step_number": 3})).startswith("step_number:")
    other = await _refused(client, CLOUD, {**FIRST, "name": "abc"})
    assert other.startswith("name:") and "step 4" in other
    assert (await _refused(client, CLOUD, {**FIRST, "colour": "red"})).startswith("colour:")
    assert (await _refused(client, CLOUD, {**FIRST, "step_number": 7})).startswith("step_number:")
    wrong_type = await _refused(client, CLOUD, {**FIRST, "provider_type": "hugging_face"})
    assert wrong_type.startswith("provider_type:")

    draft = await run_steps(api, CLOUD, [FIRST, {"step_number": 2, "provider_id": "openai"}])
    wid = draft["workflow_id"]
    skipped = await _refused(client, CLOUD, {"workflow_id": wid, "step_number": 4, "name": "x",
                                             "modality": "llm"})  # fmt: skip
    assert skipped.startswith("step_number:") and "cloud_model_id" in skipped
    back = await _refused(client, CLOUD, {"workflow_id": wid, "step_number": 1,
                                          "provider_type": "cloud_model"})  # fmt: skip
    assert back.startswith("step_number:")
    both = await _refused(client, CLOUD, {"workflow_id": wid, "workflow_total_steps": 6,
                                          "step_number": 3, "cloud_model_id": None})  # fmt: skip
    assert both.startswith("workflow_total_steps:")
    trigger_now = {"workflow_id": wid, "step_number": 2, "provider_id": "openai",
                   "trigger_workflow": True}  # fmt: skip
    early = await _refused(client, CLOUD, trigger_now)
    assert early.startswith("cloud_model_id:")
    bad_model = await _refused(client, CLOUD, {"workflow_id": wid, "step_number": 3,
                                               "cloud_model_id": "anthropic/claude"})  # fmt: skip
    assert bad_model.startswith("cloud_model_id:")
    missing = await _refused(client, CLOUD, {"workflow_id": wid, "step_number": 3})
    assert missing.startswith("cloud_model_id:")
    await _refused(client, CLOUD, {"workflow_id": "no-such-draft", "step_number": 2,
                                   "provider_id": "openai"}, status=404)  # fmt: skip
    other_flow = await _refused(
        client,
        "/models/security-scan",
        {"workflow_id": wid, "step_number": 1, "model_id": "x"},
        status=409,
    )
    assert other_flow.startswith("workflow_id:")
    # The draft is as the refused steps left it: step 2, nothing committed.
    read = (await client.get(f"/workflows/{wid}")).json()
    assert read["current_step"] == 2 and read["status"] == "in_progress"
    assert read["workflow_steps"] == {"provider_type": "cloud_model", "provider_id": "openai"}
    assert api.remote.tip() == tip


async def test_roles(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    for role, status in ((None, 401), ("viewer", 403), ("operator", 403)):
        reply = await client.post(CLOUD, role=role, json=FIRST)
        assert reply.status == status, (role, reply.text)
    bad = await client.post(CLOUD, token="not-a-token", json=FIRST)
    assert bad.status == 401
    draft = await run_steps(api, CLOUD, [FIRST], role="admin")
    assert (await client.get(f"/workflows/{draft['workflow_id']}", role=None)).status == 401
    assert (await client.get(f"/workflows/{draft['workflow_id']}")).status == 200
    assert (await client.get("/workflows/unknown")).status == 404


async def test_a_draft_never_triggered_expires(start_api: StartApi) -> None:
    api = await start_api()
    draft = await run_steps(api, CLOUD, [FIRST, {"step_number": 2, "provider_id": "openai"}])
    wid = draft["workflow_id"]
    drafts = api.server.app[WIZARD_DRAFTS]
    drafts.clock = lambda: time.time() + DEFAULT_TTL_S - 60
    assert (await api.client.get(f"/workflows/{wid}")).json()["status"] == "in_progress"
    drafts.clock = lambda: time.time() + DEFAULT_TTL_S + 60
    read = (await api.client.get(f"/workflows/{wid}")).json()
    assert read["status"] == "expired" and read["workflow_steps"] == {}
    assert "expired" in read["reason"]
    late = await _refused(api.client, CLOUD, {"workflow_id": wid, "step_number": 3,
                                              "cloud_model_id": None}, status=409)  # fmt: skip
    assert late.startswith("workflow_id:") and "expired" in late


async def test_a_triggered_draft_takes_no_more_steps_and_branch_mode_reviews(
    start_api: StartApi,
) -> None:
    api = await start_api(write_mode="branch")
    tip = api.remote.tip()
    answer = await run_steps(
        api,
        "/models/local-model-workflow",
        [
            {"workflow_total_steps": 6, "step_number": 1, "modality": "llm"},
            {"step_number": 2, "provider_type": "hugging_face"},
            {"step_number": 3, "name": "Microsoft phi local",
             "uri": "microsoft/Phi-3.5-mini-instruct", "author": "microsoft",
             "tags": [{"name": "text-generation", "color": "#66d1DF"}], "icon": None},
            {"step_number": 4, "trigger_workflow": True,
             "proprietary_credential_id": None},
        ],
    )  # fmt: skip
    execution = answer["workflow_steps"]["workflow_execution_status"]
    assert execution["branch"].startswith("reconciler/api/")
    assert execution["task_status"] == "review" and answer["status"] == "in_progress"
    assert api.remote.tip() == tip
    assert author(api, execution["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(
        api.remote.read("models/microsoft-phi-local.yaml", branch=execution["branch"])
    )
    assert written["spec"]["source"] == {
        "provider_type": "hugging_face",
        "uri": "microsoft/Phi-3.5-mini-instruct",
    }
    again = await _refused(
        api.client,
        "/models/local-model-workflow",
        {"workflow_id": answer["workflow_id"], "step_number": 4, "trigger_workflow": True},
        status=409,
    )
    assert again.startswith("workflow_id:") and "triggered" in again


async def test_deploy_a_local_model_on_a_review_branch(start_api: StartApi) -> None:
    model = (
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: mini}\n"
        "spec: {modality: llm, security_scan: skip, "
        "source: {provider_type: disk, uri: /nonexistent/mini}}\n"
    )
    api = await start_api(files={**API_SEED, "models.yaml": model}, write_mode="branch")
    config = {"concurrent_requests": 10, "avg_sequence_length": 100, "avg_context_length": 102,
              "per_session_tokens_per_sec": [100, 100], "ttft": [50, 1000],
              "e2e_latency": [100, 100]}  # fmt: skip
    first = {"workflow_total_steps": 6, "step_number": 1, "trigger_workflow": False,
             "project_id": "research", "model_id": "mini"}  # fmt: skip
    cloud_only = await _refused(api.client, "/models/deploy-workflow",
                                {**first, "credential_id": "openai-prod"})  # fmt: skip
    assert cloud_only.startswith("credential_id:")
    answer = await run_steps(
        api,
        "/models/deploy-workflow",
        [
            first,
            {"step_number": 2, "trigger_workflow": False, "template_id": "vllm"},
            {"step_number": 3, "trigger_workflow": False, "endpoint_name": "test endpoint",
             "deploy_config": config},
            {"step_number": 5, "trigger_workflow": True, "cluster_id": "local"},
        ],
    )  # fmt: skip
    assert answer["workflow_type"] == "deploy-local-model"
    execution = answer["workflow_steps"]["workflow_execution_status"]
    branch = execution["branch"]
    assert author(api, execution["commit"]).startswith("editor-bot ")
    spec = yaml.safe_load(api.remote.read("deployments/test-endpoint.yaml", branch=branch))["spec"]
    assert spec == {
        "project": "research",
        "model": "mini",
        "cluster": "local",
        "template": "vllm",
        "endpoint_name": "test endpoint",
        "deploy_config": config,
    }


@contextlib.asynccontextmanager
async def _daemon(config_path: Path) -> AsyncIterator[tuple[ApiClient, ApiServer]]:
    servers: list[ApiServer] = []

    @contextlib.asynccontextmanager
    async def recording(daemon: Daemon) -> AsyncIterator[ApiServer]:
        async with serving(daemon) as server:
            servers.append(server)
            yield server

    daemon = Daemon(load_config(config_path), serve=recording, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with aiohttp.ClientSession() as session:

            async def up() -> bool:
                if task.done():
                    task.result()
                return bool(servers) and daemon.ready

            await wait_until("the daemon up", up)
            yield ApiClient(f"http://127.0.0.1:{servers[0].port}", session), servers[0]
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=30)


async def test_a_draft_survives_a_daemon_restart(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(files=API_SEED)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")
    (secrets / "webhook-hmac").write_text("whsec-3f9a1c77e2\n")
    config = write_api_config(
        tmp_path / "reconciler.yaml",
        remote=remote.path,
        state_dir=tmp_path / "state",
        secrets_dir=secrets,
    )
    async with _daemon(config) as (client, _):
        reply = await client.post(CLOUD, role="editor", json=FIRST)
        assert reply.status == 200, reply.text
        wid = reply.json()["workflow_id"]
    async with _daemon(config) as (client, _):
        read = await client.get(f"/workflows/{wid}")
        assert read.status == 200 and read.json()["current_step"] == 1
        reply = await client.post(
            CLOUD, role="editor", json={"workflow_id": wid, "step_number": 2,
                                        "provider_id": "openai"}
        )  # fmt: skip
        assert reply.status == 200, reply.text
        assert reply.json()["workflow_steps"] == {
            "provider_type": "cloud_model",
            "provider_id": "openai",
        }
