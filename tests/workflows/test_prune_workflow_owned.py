"""What a Workflow made is its own: the object reconciler never prunes it.

A real daemon (in this test's loop) on a kubernetes Cluster served by the API double,
whose fake kubelet marks pods ready. A Workflow's ``deploy_model`` node makes endpoint
``chat``; a Git Deployment of the same name comes and then leaves Git, which would prune
``chat`` (its delete chain undeploys the endpoint): the live Deployment and Service stay,
the prune runs no step, and the Workflow still lists what it made. Only the Workflow's
own deprovision removes them. The same holds for a Model a Workflow's ``add_model`` made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.daemon_view import DaemonAdapter
from reconciler.drivers.models import records
from tests.conftest import MakeGitRemote
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until
from tests.daemon.test_kubernetes_e2e import Cluster

CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu}
spec:
  driver: kubernetes
  namespace: models
  kubeconfig: {secret: gpu-kubeconfig}
  gpu: {type: nvidia-a100-80gb, count: 8}
"""

SHAPE = """\
  model: smol
  cluster: gpu
  template: vllm
  endpoint_name: chat endpoint
  workers: 2
  deploy_config: {concurrent_requests: 8, avg_sequence_length: 100, avg_context_length: 100}
"""

WORKFLOW = f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: serve}}
spec:
  trigger: on_change
  workflows:
    provision:
      nodes:
        - id: deploy_chat
          type: deploy_model
          user_inputs:
            deployment: chat
{"".join("            " + line.strip() + chr(10) for line in SHAPE.splitlines())}"""

DEPLOYMENT = f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat}}
spec:
{SHAPE}"""


def model(folder: Path) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: smol}}
spec:
  modality: llm
  source: {{provider_type: disk, uri: {folder}}}
  security_scan: skip
  parameters: 135M
  dtype: bfloat16
"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    yield made
    made.stop()


def live(cluster: Cluster) -> tuple[list[str], list[str]]:
    return (
        sorted(d.metadata.name for d in cluster.deployments()),
        sorted(s.metadata.name for s in cluster.services()),
    )


def phase(running: RunningDaemon, key: str) -> Any:
    return running.status(key).get("phase")


async def test_a_prune_leaves_what_a_workflow_made_to_the_workflow(
    tmp_path: Path, make_git_remote: MakeGitRemote, cluster: Cluster
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "gpu-kubeconfig").write_text(cluster.kubeconfig)
    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "config.json").write_text('{"num_hidden_layers": 2}\n')
    remote = make_git_remote(files={"cluster.yaml": CLUSTER, "model.yaml": model(folder)})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    store = running.daemon.store
    assert store is not None
    try:
        await wait_until("Model/smol Ready", lambda: phase(running, "Model/smol") == "Ready")
        remote.writer.commit_and_push({"workflow.yaml": WORKFLOW}, "a workflow serves chat")
        status = await wait_until(
            "the workflow provisioned",
            lambda: (s := running.status("Workflow/serve")).get("state") == "COMPLETED" and s,
        )
        assert [(r["step"], r["type"]) for r in status["resources_created"]] == [
            ("deploy_chat", "deploy_model")
        ]
        made = live(cluster)
        assert made[1] == ["chat"] and len(made[0]) == 1

        remote.writer.commit_and_push({"deployment.yaml": DEPLOYMENT}, "chat in Git too")
        await wait_until(
            "Deployment/chat Ready", lambda: phase(running, "Deployment/chat") == "Ready"
        )
        remote.writer.commit_and_push({"deployment.yaml": None}, "chat leaves Git")
        pruned = await wait_until(
            "the prune of Deployment/chat finished",
            lambda: (
                (r := store.list_executions(kind="Deployment", name="chat", limit=1))
                and r[0].action == "delete"
                and r[0].finished
                and r[0]
            ),
        )
        await wait_until("Deployment/chat forgotten", lambda: not running.status("Deployment/chat"))
        assert live(cluster) == made  # the workflow's endpoint is still there
        assert pruned.status == "succeeded"
        assert store.get_steps(pruned.id) == []  # the prune ran no step
        kept = running.status("Workflow/serve")
        assert kept["state"] == "COMPLETED"
        assert [r["step"] for r in kept["resources_created"]] == ["deploy_chat"]

        # The workflow's own deprovision removes what it made.
        view = DaemonAdapter(running.daemon)
        undone = view.deprovision_workflow(name="serve", requested_by="test")
        record = await wait_until(
            "the deprovision finished",
            lambda: (r := store.get_execution(undone)).finished and r,
        )
        assert record.status == "succeeded", record.error
        assert [s.type for s in store.get_steps(undone)] == ["undeploy_model"]
        assert live(cluster) == ([], [])
    finally:
        await running.stop()


def model_workflow(folder: Path) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: registers}}
spec:
  trigger: on_change
  workflows:
    provision:
      nodes:
        - id: add_smol
          type: add_model
          user_inputs:
            model: smol
            modality: llm
            source: {{provider_type: disk, uri: {folder}}}
"""


async def test_a_prune_leaves_a_model_a_workflow_added(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "config.json").write_text('{"num_hidden_layers": 2}\n')
    remote = make_git_remote(files={"workflow.yaml": model_workflow(folder)})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    store = running.daemon.store
    assert store is not None
    cache = tmp_path / "state" / "models"
    try:
        await wait_until(
            "the workflow provisioned",
            lambda: running.status("Workflow/registers").get("state") == "COMPLETED",
        )
        assert records.read_record(cache_dir=cache, model="smol") is not None
        remote.writer.commit_and_push({"model.yaml": model(folder)}, "smol in Git too")
        await wait_until("Model/smol Ready", lambda: phase(running, "Model/smol") == "Ready")
        remote.writer.commit_and_push({"model.yaml": None}, "smol leaves Git")
        await wait_until("Model/smol forgotten", lambda: not running.status("Model/smol"))
        assert records.read_record(cache_dir=cache, model="smol") is not None
        [pruned] = [
            r for r in store.list_executions(kind="Model", name="smol") if r.action == "delete"
        ]
        assert pruned.status == "succeeded" and store.get_steps(pruned.id) == []

        view = DaemonAdapter(running.daemon)
        undone = view.deprovision_workflow(name="registers", requested_by="test")
        record = await wait_until(
            "the deprovision finished", lambda: (r := store.get_execution(undone)).finished and r
        )
        assert record.status == "succeeded", record.error
        assert [s.type for s in store.get_steps(undone)] == ["remove_model"]
        assert records.read_record(cache_dir=cache, model="smol") is None
    finally:
        await running.stop()
