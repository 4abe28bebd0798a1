"""The deploy-cloud-model wizard of wizard-api.md, verbatim, ends in a gateway that works.

The document's own five bodies (only ``workflow_id`` is the one the first step
answered) name a project, a cloud model, a credential, a template (screen 3) and a
cluster (final screen); the repo holds objects of exactly those names: the template is a
gateway template and the cluster a local one. The wizard commits the Deployment, the real
daemon runs the gateway as a local process, and a chat completion sent to the
Deployment's endpoint reaches the loopback provider with the provider key, which the
caller never sees: not in any answer, log line, status file, file of the daemon's state
dir or commit of the remote.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.drivers.clusters.local import LocalClusterDriver
from tests.api.conftest import API_SEED, SECRET_VALUES, RunningDaemon, StartApi, wait_until
from tests.api.test_wizard_helpers import wait_status
from tests.conftest import git
from tests.gateway.fake_provider import FakeProvider, running

KEY = "sk-test-value-never-printed"  # the harness's secret openai-api-key
PROJECT_ID = "ffeb0cbe-8caa-461a-aacc-9b7422f44131"
MODEL_ID = "318dc142-cf44-407d-9b9d-baa47fe4a456"
CREDENTIAL_ID = "891f8697-8053-45cf-887f-f2d9cd8cb1ee"
TEMPLATE_ID = "891f8697-8053-45cf-887f-f2d9cd8cb1ed"
CLUSTER_ID = "538072a1-634b-4f8f-bd3b-d2fe6bfe7a50"

# Deploy Model > Deploy cloud model workflow, as the document gives it.
DOCUMENT_STEPS: list[dict[str, Any]] = [
    {"workflow_total_steps": 7, "step_number": 1, "trigger_workflow": False,
     "project_id": "ffeb0cbe-8caa-461a-aacc-9b7422f44131",
     "model_id": "318dc142-cf44-407d-9b9d-baa47fe4a456"},
    {"workflow_id": "0d9bd0d9-8f11-4a01-bda2-7bfab4735842", "step_number": 2,
     "trigger_workflow": False, "credential_id": "891f8697-8053-45cf-887f-f2d9cd8cb1ee"},
    {"workflow_id": "0d9bd0d9-8f11-4a01-bda2-7bfab4735842", "step_number": 3,
     "trigger_workflow": False, "template_id": "891f8697-8053-45cf-887f-f2d9cd8cb1ed"},
    {"workflow_id": "0d9bd0d9-8f11-4a01-bda2-7bfab4735842", "step_number": 4,
     "trigger_workflow": False, "endpoint_name": "test endpoint",
     "deploy_config": {"concurrent_requests": 10, "avg_sequence_length": 100,
                       "avg_context_length": 102}},
    {"workflow_id": "0d9bd0d9-8f11-4a01-bda2-7bfab4735842", "step_number": 6,
     "trigger_workflow": True, "cluster_id": "538072a1-634b-4f8f-bd3b-d2fe6bfe7a50"},
]  # fmt: skip


def _seed(provider: FakeProvider) -> dict[str, str]:
    gateway = copy.deepcopy(BUILTIN_TEMPLATES["cloud-gateway"])
    gateway["resources"] = {"gpus_per_worker": 0, "cpu": "500m", "memory": "128Mi"}
    documents = [
        {"kind": "Project", "metadata": {"name": PROJECT_ID},
         "spec": {"description": "the document's project"}},
        {"kind": "Model", "metadata": {"name": MODEL_ID},
         "spec": {"modality": "llm", "source": {"provider_type": "cloud_model",
                                                "provider": "openai",
                                                "uri": "openai/gpt-4o-mini"}}},
        {"kind": "Credential", "metadata": {"name": CREDENTIAL_ID},
         "spec": {"provider": "openai", "secret": "openai-api-key",
                  "base_url": provider.base_url}},
        {"kind": "DeploymentTemplate", "metadata": {"name": TEMPLATE_ID}, "spec": gateway},
        {"kind": "Cluster", "metadata": {"name": CLUSTER_ID}, "spec": {"driver": "local"}},
    ]  # fmt: skip
    for document in documents:
        document["apiVersion"] = "reconciler/v1"
    return {**API_SEED, "document-ids.yaml": yaml.safe_dump_all(documents)}


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async for started in running(KEY):
        yield started


async def _run_document(api: RunningDaemon) -> dict[str, Any]:
    workflow_id: str | None = None
    answer: dict[str, Any] = {}
    for step in DOCUMENT_STEPS:
        body = dict(step)
        if workflow_id is not None:
            body["workflow_id"] = workflow_id
        reply = await api.client.post("/models/deploy-workflow", role="editor", json=body)
        assert reply.status == 200, reply.text
        answer = reply.json()
        workflow_id = answer["workflow_id"]
    assert answer["workflow_type"] == "deploy-cloud-model"
    return await wait_status(api, str(workflow_id), "completed")


async def _chat(url: str, **extra: Any) -> tuple[int, str]:
    body = {"model": "test endpoint", "messages": [{"role": "user", "content": "hi"}], **extra}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer caller-x"}
        ) as reply,
    ):
        return reply.status, await reply.text() + str(dict(reply.headers))


async def test_the_documents_cloud_deploy_flow_serves_through_a_gateway(
    start_api: StartApi, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = await start_api(files=_seed(provider))
    try:
        done = await _run_document(api)
        spec = yaml.safe_load(api.remote.read("deployments/test-endpoint.yaml"))["spec"]
        assert spec == {
            "project": PROJECT_ID,
            "model": MODEL_ID,
            "credential": CREDENTIAL_ID,
            "template": TEMPLATE_ID,
            "cluster": CLUSTER_ID,
            "endpoint_name": "test endpoint",
            "deploy_config": DOCUMENT_STEPS[3]["deploy_config"],
        }
        assert done["workflow_steps"]["workflow_execution_status"]["phase"] == "Ready"
        detail = (await api.client.get("/api/v1/objects/Deployment/test-endpoint")).json()
        status = detail["status"]
        url = status["endpoint_url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert status["cluster"] == CLUSTER_ID and status["gateway"] == TEMPLATE_ID
        assert status["provider_model"] == "gpt-4o-mini"
        assert status["upstream_url"] == provider.base_url

        code, text = await _chat(url)
        assert code == 200 and "hello from the provider" in text, text
        (seen,) = provider.seen
        assert seen.authorization == f"Bearer {KEY}" and seen.body["model"] == "gpt-4o-mini"
        code, refused = await _chat(url, user="echo-key")
        assert code == 400
        for answer in (text, refused, *(r.text for r in api.client.replies)):
            assert KEY not in answer

        log_file = api.state_dir / "local" / "logs" / "test-endpoint.log"
        await wait_until("the gateway's request lines", lambda: _logged(log_file, 2))
        assert KEY not in log_file.read_text()
        assert KEY not in caplog.text
        at_rest = [
            p for p in api.state_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()
        ]
        assert at_rest == []  # the local driver keeps the secret's name, never its value
        await wait_until("the Deployment's Ready status file", lambda: _status_file(api))
        history = git(api.remote.path, "log", "--all", "-p", "--format=%H %an %s")
        assert "provider_model: gpt-4o-mini" in history  # the status files are in it
        assert KEY not in history
        for secret in SECRET_VALUES:
            assert secret not in history

        # The key is rotated in the secret store: the gateway holds the new one at once
        # (the secrets dir is watched, a resync deploys gateways again, the driver sees
        # the resolved key differ), with no change in Git.
        rotated = "sk-rotated-value-never-printed"
        provider.key = rotated
        (api.state_dir.parent / "secrets" / "openai-api-key").write_text(rotated + "\n")

        async def new_key_sent() -> bool:
            try:
                code, _ = await _chat(url)
            except aiohttp.ClientError:
                return False  # the moment the gateway restarts
            return code == 200 and provider.seen[-1].authorization == f"Bearer {rotated}"

        await wait_until("the rotated key in use", new_key_sent, timeout=60)
        at_rest = [
            p
            for p in api.state_dir.rglob("*")
            if p.is_file() and rotated.encode() in p.read_bytes()
        ]
        assert at_rest == []

        removed = await api.client.delete("/api/v1/objects/Deployment/test-endpoint", role="admin")
        assert removed.status == 202, removed.text
        await wait_until("the gateway stopped", lambda: _refused(url))
    finally:
        await LocalClusterDriver(state_dir=api.state_dir / "local").delete_endpoint("test-endpoint")


async def _status_file(api: RunningDaemon) -> bool:
    listed = git(api.remote.path, "ls-tree", "-r", "--name-only", "reconciler/status")
    path = "status/deployments/test-endpoint.yaml"
    if path not in listed.splitlines():
        return False
    return "phase: Ready" in git(api.remote.path, "show", f"reconciler/status:{path}")


async def _logged(path: Path, lines: int) -> bool:
    text = path.read_text() if path.exists() else ""
    return text.count("POST /v1/chat/completions") >= lines


async def _refused(url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/models", timeout=timeout),
        ):
            return False
    except aiohttp.ClientError:
        return True


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
spec: {modality: llm, security_scan: skip, source: {provider_type: disk, uri: /nowhere/mini}}
"""


async def _step(api: RunningDaemon, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    reply = await api.client.post("/models/deploy-workflow", role="editor", json=body)
    assert reply.status == status, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


async def test_the_template_must_fit_what_is_deployed(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "models.yaml": MODELS})
    tip = api.remote.tip()
    first = {"workflow_total_steps": 7, "step_number": 1, "model_id": "gpt-4o-mini"}
    wid = (await _step(api, first))["workflow_id"]
    await _step(api, {"workflow_id": wid, "step_number": 2, "credential_id": "openai-prod"})
    vllm = await _step(api, {"workflow_id": wid, "step_number": 3, "template_id": "vllm"}, 422)
    assert vllm["detail"].startswith("template_id: 'vllm' serves model files")
    await _step(api, {"workflow_id": wid, "step_number": 3, "template_id": "cloud-gateway"})
    no_cluster = await _step(
        api,
        {"workflow_id": wid, "step_number": 4, "trigger_workflow": True,
         "endpoint_name": "chat", "deploy_config": DOCUMENT_STEPS[3]["deploy_config"]},
        422,
    )  # fmt: skip
    assert no_cluster["detail"].startswith("cluster_id: a cloud model's template runs on a")

    local = {"workflow_total_steps": 6, "step_number": 1, "model_id": "mini"}
    wid = (await _step(api, local))["workflow_id"]
    gateway = {"workflow_id": wid, "step_number": 2, "template_id": "cloud-gateway"}
    refused = await _step(api, gateway, 422)
    assert refused["detail"] == (
        "template_id: 'cloud-gateway' is a cloud gateway: it serves cloud models"
    )
    assert api.remote.tip() == tip
