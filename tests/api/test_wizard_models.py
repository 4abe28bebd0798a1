"""The model wizards over real HTTP against a real daemon on a real Git remote: add a
cloud model (picked from the catalogue, or entered by hand), add a local (disk) model,
deploy a cloud model, scan a model, add workers; each trigger is a commit in the remote's
history authored by the caller's token name, and the wizard follows the reconcile of it
until the object is Ready (completed) or Stalled (failed)."""

from __future__ import annotations

import asyncio
import os
import pickle
from pathlib import Path

import yaml

from tests.api.conftest import API_SEED, StartApi
from tests.api.test_wizard_helpers import author, run_steps, wait_status

TAGS = [{"name": "Tag1", "color": "#000000"}, {"name": "Tag2", "color": "#000000"}]


async def test_add_a_cloud_model_from_the_catalogue_then_deploy_it(start_api: StartApi) -> None:
    api = await start_api()
    before = api.remote.tip()
    first = await run_steps(
        api,
        "/models/cloud-model-workflow",
        [{"workflow_total_steps": 6, "step_number": 1, "provider_type": "cloud_model"}],
    )
    assert first["status"] == "in_progress" and first["total_steps"] == 6
    assert first["workflow_type"] == "add-cloud-model" and api.remote.tip() == before
    answer = await run_steps(
        api,
        "/models/cloud-model-workflow",
        [
            {"workflow_total_steps": 6, "step_number": 1, "provider_type": "cloud_model"},
            {"step_number": 2, "provider_id": "openai"},
            {"step_number": 3, "cloud_model_id": "openai/gpt-4o-mini"},
            {
                "step_number": 4,
                "name": "abc",
                "tags": TAGS,
                "modality": "llm",
                "trigger_workflow": True,
            },
        ],
    )
    execution = answer["workflow_steps"]["workflow_execution_status"]
    assert execution["object"] == "Model/abc" and execution["branch"] == "main"
    assert api.remote.tip() == execution["commit"]
    assert author(api, execution["commit"]) == "editor-bot <editor-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("models/abc.yaml"))
    assert written["spec"] == {
        "display_name": "abc",
        "modality": "llm",
        "source": {
            "provider_type": "cloud_model",
            "provider": "openai",
            "uri": "openai/gpt-4o-mini",
        },
        "tags": TAGS,
    }
    done = await wait_status(api, answer["workflow_id"], "completed")
    assert done["workflow_steps"]["workflow_execution_status"]["phase"] == "Ready"

    # The deploy wizard of a cloud model: the credential step, no template, no cluster.
    deploy = await run_steps(
        api,
        "/models/deploy-workflow",
        [
            {"workflow_total_steps": 7, "step_number": 1, "trigger_workflow": False,
             "project_id": "research", "model_id": "abc"},
            {"step_number": 2, "trigger_workflow": False, "credential_id": "openai-prod"},
            {"step_number": 3, "trigger_workflow": False, "template_id": None},
            {"step_number": 4, "trigger_workflow": False, "endpoint_name": "test endpoint",
             "deploy_config": {"concurrent_requests": 10, "avg_sequence_length": 100,
                               "avg_context_length": 102}},
        ],
    )  # fmt: skip
    assert deploy["workflow_type"] == "deploy-cloud-model"
    # A null cluster_id on the final screen: the provider's own endpoint serves it (with a
    # cluster, a gateway there does: tests/api/test_wizard_cloud_gateway.py).
    final = {"workflow_id": deploy["workflow_id"], "step_number": 6, "trigger_workflow": True}
    triggered = await api.client.post(
        "/models/deploy-workflow", role="editor", json={**final, "cluster_id": None}
    )
    assert triggered.status == 200, triggered.text
    deploy = triggered.json()
    commit = deploy["workflow_steps"]["workflow_execution_status"]["commit"]
    assert author(api, commit).startswith("editor-bot ")
    spec = yaml.safe_load(api.remote.read("deployments/test-endpoint.yaml"))["spec"]
    assert spec["model"] == "abc" and spec["credential"] == "openai-prod"
    assert spec["project"] == "research" and "cluster" not in spec
    await wait_status(api, deploy["workflow_id"], "completed")

    # A cloud endpoint has no workers: add-worker says so, naming the field.
    refused = await api.client.post(
        "/endpoints/add-worker",
        role="editor",
        json={"workflow_total_steps": 5, "step_number": 1, "endpoint_id": "test-endpoint",
              "additional_concurrency": 10},
    )  # fmt: skip
    assert refused.status == 422 and refused.json()["detail"].startswith("endpoint_id:")


async def test_a_cloud_model_entered_by_hand_and_a_taken_name(start_api: StartApi) -> None:
    api = await start_api()
    steps = [
        {"workflow_total_steps": 6, "step_number": 1, "provider_type": "cloud_model"},
        {"step_number": 2, "provider_id": "anthropic"},
        {"step_number": 3, "cloud_model_id": None},
        {"step_number": 4, "name": "Claude Sonnet", "tags": TAGS, "modality": "llm",
         "uri": "anthropic/claude-3-5-sonnet-20241022", "trigger_workflow": True},
    ]  # fmt: skip
    answer = await run_steps(api, "/models/cloud-model-workflow", steps)
    source = yaml.safe_load(api.remote.read("models/claude-sonnet.yaml"))["spec"]["source"]
    assert source["uri"] == "anthropic/claude-3-5-sonnet-20241022"
    await wait_status(api, answer["workflow_id"], "completed")

    tip = api.remote.tip()
    again = await run_steps(api, "/models/cloud-model-workflow", steps[:3])
    taken = await api.client.post(
        "/models/cloud-model-workflow",
        role="editor",
        json={**steps[3], "workflow_id": again["workflow_id"]},
    )
    assert taken.status == 409 and taken.json()["detail"].startswith("name:")
    wrong_uri = await api.client.post(
        "/models/cloud-model-workflow",
        role="editor",
        json={**steps[3], "name": "other", "uri": "gpt-4", "workflow_id": again["workflow_id"]},
    )
    assert wrong_uri.status == 422 and wrong_uri.json()["detail"].startswith("uri:")
    assert api.remote.tip() == tip


def _evil_folder(root: Path) -> Path:
    """A model folder holding a pickle that would run a command when loaded."""

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {root / 'unpickled'}",))

    folder = root / "models" / "evil"
    folder.mkdir(parents=True)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


async def test_add_a_disk_model_it_is_scanned(start_api: StartApi, tmp_path: Path) -> None:
    api = await start_api()
    folder = tmp_path / "models" / "mini"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    answer = await run_steps(
        api,
        "/models/local-model-workflow",
        [
            {"workflow_total_steps": 6, "step_number": 1, "trigger_workflow": False,
             "modality": "embedding"},
            {"step_number": 2, "trigger_workflow": False, "provider_type": "disk"},
            {"step_number": 3, "trigger_workflow": False, "name": "Mini LM", "uri": str(folder),
             "author": "someone", "tags": [{"name": "embed", "color": "#66d1DF"}], "icon": None},
            {"step_number": 4, "trigger_workflow": True, "proprietary_credential_id": None},
        ],
    )  # fmt: skip
    commit = answer["workflow_steps"]["workflow_execution_status"]["commit"]
    assert author(api, commit).startswith("editor-bot ")
    spec = yaml.safe_load(api.remote.read("models/mini-lm.yaml"))["spec"]
    assert spec["source"] == {"provider_type": "disk", "uri": str(folder)}
    assert spec["display_name"] == "Mini LM" and spec["author"] == "someone"
    await wait_status(api, answer["workflow_id"], "completed")

    # Scanning it again: already required, so no commit; the scan result is reported.
    tip = api.remote.tip()
    scan = await run_steps(
        api,
        "/models/security-scan",
        [{"workflow_total_steps": 3, "step_number": 1, "trigger_workflow": True,
          "model_id": "mini-lm"}],
    )  # fmt: skip
    assert api.remote.tip() == tip
    assert "nothing to commit" in scan["workflow_steps"]["workflow_execution_status"]["note"]
    done = await wait_status(api, scan["workflow_id"], "completed")
    assert done["workflow_steps"]["security_scan_result"]["result"] == "clean"


async def test_security_scan_turns_the_scan_on_and_reports_findings(
    start_api: StartApi, tmp_path: Path
) -> None:
    folder = _evil_folder(tmp_path)
    model = (
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: evil}\n"
        f"spec: {{modality: embedding, security_scan: skip, "
        f"source: {{provider_type: disk, uri: {folder}}}}}\n"
    )
    api = await start_api(files={**API_SEED, "models.yaml": model})
    scan = await run_steps(
        api,
        "/models/security-scan",
        [{"workflow_total_steps": 3, "step_number": 1, "trigger_workflow": True,
          "model_id": "evil"}],
        role="admin",
    )  # fmt: skip
    commit = scan["workflow_steps"]["workflow_execution_status"]["commit"]
    assert author(api, commit) == "admin-bot <admin-bot@reconciler.api>"
    written = yaml.safe_load(api.remote.read("models.yaml"))
    assert written["spec"]["security_scan"] == "required"
    failed = await wait_status(api, scan["workflow_id"], "failed")
    assert "ScanFailed" in failed["reason"]
    result = failed["workflow_steps"]["security_scan_result"]
    assert result["result"] == "findings"
    assert not (tmp_path / "unpickled").exists()


DEPLOYMENTS = """\
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
---
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: pinned}
spec:
  model: mini
  cluster: local
  endpoint_name: pinned
  suspend: true
  workers: 1                  # pinned (a local Cluster runs one worker)
  deploy_config: {concurrent_requests: 10, avg_sequence_length: 100, avg_context_length: 102}
"""


async def test_add_worker_raises_the_concurrency_the_workers_are_sized_from(
    start_api: StartApi,
) -> None:
    api = await start_api(files={**API_SEED, "deployments.yaml": DEPLOYMENTS})
    answer = await run_steps(
        api,
        "/endpoints/add-worker",
        [
            {"workflow_total_steps": 5, "step_number": 1, "trigger_workflow": False,
             "endpoint_id": "chat", "additional_concurrency": 10},
            {"step_number": 3, "trigger_workflow": True},
        ],
    )  # fmt: skip
    commit = answer["workflow_steps"]["workflow_execution_status"]["commit"]
    assert author(api, commit).startswith("editor-bot ")
    documents = list(yaml.safe_load_all(api.remote.read("deployments.yaml")))
    chat = next(d for d in documents if d["metadata"]["name"] == "chat")
    pinned = next(d for d in documents if d["metadata"]["name"] == "pinned")
    assert chat["spec"]["deploy_config"]["concurrent_requests"] == 20
    assert pinned["spec"]["deploy_config"]["concurrent_requests"] == 10

    first = await run_steps(
        api,
        "/endpoints/add-worker",
        [{"workflow_total_steps": 5, "step_number": 1, "endpoint_id": "pinned",
          "additional_concurrency": 5}],
    )  # fmt: skip
    refused = await api.client.post(
        "/endpoints/add-worker",
        role="editor",
        json={"workflow_id": first["workflow_id"], "step_number": 3, "trigger_workflow": True},
    )
    assert refused.status == 422
    assert refused.json()["detail"].startswith("additional_concurrency:")
    assert api.remote.tip() == commit


async def test_two_triggers_of_one_draft_commit_once(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "deployments.yaml": DEPLOYMENTS})
    draft = await run_steps(
        api,
        "/endpoints/add-worker",
        [{"workflow_total_steps": 5, "step_number": 1, "endpoint_id": "chat",
          "additional_concurrency": 7}],
    )  # fmt: skip
    body = {"workflow_id": draft["workflow_id"], "step_number": 3, "trigger_workflow": True}
    replies = await asyncio.gather(
        api.client.post("/endpoints/add-worker", role="editor", json=body),
        api.client.post("/endpoints/add-worker", role="admin", json=body),
    )
    assert sorted(r.status for r in replies) == [200, 409], [r.text for r in replies]
    documents = list(yaml.safe_load_all(api.remote.read("deployments.yaml")))
    chat = next(d for d in documents if d["metadata"]["name"] == "chat")
    assert chat["spec"]["deploy_config"]["concurrent_requests"] == 17


async def test_write_mode_off_refuses_the_trigger_and_keeps_the_draft(
    start_api: StartApi,
) -> None:
    api = await start_api(files={**API_SEED, "deployments.yaml": DEPLOYMENTS}, write_mode="off")
    tip = api.remote.tip()
    draft = await run_steps(
        api,
        "/endpoints/add-worker",
        [{"workflow_total_steps": 5, "step_number": 1, "endpoint_id": "chat",
          "additional_concurrency": 7}],
    )  # fmt: skip
    body = {"workflow_id": draft["workflow_id"], "step_number": 3, "trigger_workflow": True}
    refused = await api.client.post("/endpoints/add-worker", role="editor", json=body)
    assert refused.status == 403 and "write_mode" in refused.json()["detail"]
    read = (await api.client.get(f"/workflows/{draft['workflow_id']}")).json()
    assert read["status"] == "in_progress" and read["current_step"] == 3
    assert api.remote.tip() == tip
