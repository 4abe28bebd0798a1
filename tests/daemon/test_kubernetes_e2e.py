"""A Deployment on a kubernetes Cluster, end to end through a real daemon process.

The Cluster's kubeconfig secret (in the daemon's secrets folder) points at the API double,
whose fake kubelet marks pods ready. A push ends Ready with the applied resources; a
``kubectl scale``-like change by another field manager is reported as drift (field and
manager) and re-applied at the next resync; removing the spec prunes every object.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import DaemonProcess, condition, read_status, wait_for, write_config
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.kubelet import FakeKubelet

NAMESPACE = "models"
OWNER = "reconciler/deployment=chat"
DEPLOYMENT_STATUS = "status/deployments/chat.yaml"


class Cluster:
    """The API double, a client for the test's own moves, and the fake kubelet."""

    def __init__(self) -> None:
        self.double = ApiServerDouble().start()
        self.kubeconfig = self.double.kubeconfig()
        configuration = client.Configuration()
        loader = kube_config.KubeConfigLoader(config_dict=yaml.safe_load(self.kubeconfig))
        loader.load_and_set(configuration)
        self.api = client.ApiClient(configuration)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.kubelet = FakeKubelet(self.api, double=self.double).start()

    def deployments(self) -> list[client.V1Deployment]:
        return list(self.apps.list_namespaced_deployment(NAMESPACE, label_selector=OWNER).items)

    def services(self) -> list[client.V1Service]:
        return list(self.core.list_namespaced_service(NAMESPACE, label_selector=OWNER).items)

    def stop(self) -> None:
        self.kubelet.stop()
        self.api.close()
        self.double.stop()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    yield made
    made.stop()


def specs(model_folder: Path, *, workers: str = "workers: 2") -> dict[str, str]:
    return {
        "gpu-cluster.yaml": """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu}
spec:
  driver: kubernetes
  namespace: models
  kubeconfig: {secret: gpu-kubeconfig}
  gpu: {type: nvidia-a100-80gb, count: 8}
""",
        "models.yaml": f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: smol}}
spec:
  modality: llm
  source: {{provider_type: disk, uri: {model_folder}}}
  security_scan: skip
  parameters: 135M
  dtype: bfloat16
""",
        "deployments.yaml": """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: smol
  cluster: gpu
  template: vllm
  endpoint_name: chat endpoint
  WORKERS
  deploy_config: {concurrent_requests: 8, avg_sequence_length: 100, avg_context_length: 100}
""".replace("WORKERS", workers),
    }


def status_with(remote: GitRemote, wanted: Any) -> dict[str, Any] | None:
    status = read_status(remote.path, DEPLOYMENT_STATUS)
    return status if status and wanted(status) else None


def serve_chat(
    start_daemon: StartDaemon,
    remote: GitRemote,
    cluster: Cluster,
    tmp_path: Path,
    *,
    resync: str,
    workers: str = "workers: 2",
) -> tuple[DaemonProcess, Path]:
    """A daemon whose ``gpu`` Cluster is the API double, and the push of ``chat`` on it."""
    (tmp_path / "secrets" / "gpu-kubeconfig").write_text(cluster.kubeconfig)
    model = tmp_path / "smol"
    model.mkdir()
    (model / "config.json").write_text('{"num_hidden_layers": 2}\n')
    config = write_config(
        tmp_path / "reconciler.yaml",
        remote=remote.path,
        state_dir=tmp_path / "state",
        secrets_dir=tmp_path / "secrets",
        resync=resync,
    )
    daemon = start_daemon(config_path=config)
    remote.writer.commit_and_push(specs(model, workers=workers), "Serve chat on the GPU cluster")
    return daemon, model


def test_kubernetes_deployment_ready_drift_reapplied_then_pruned(
    start_daemon: StartDaemon, remote: GitRemote, cluster: Cluster, tmp_path: Path
) -> None:
    daemon, model = serve_chat(start_daemon, remote, cluster, tmp_path, resync="3s")

    ready = wait_for(
        "the Deployment Ready",
        lambda: status_with(remote, lambda s: s.get("phase") == "Ready"),
        timeout=90,
    )
    [deployment] = cluster.deployments()
    assert ready["endpoint_url"] == f"http://chat.{NAMESPACE}.svc:8000/v1"
    assert (ready["workers"], ready["ready_workers"], ready["cluster"]) == (2, 2, "gpu")
    assert ready["resources"] == [
        {"kind": "Deployment", "namespace": NAMESPACE, "name": deployment.metadata.name},
        {"kind": "Service", "namespace": NAMESPACE, "name": "chat"},
    ]
    assert ready["sizing"]["gpu_type"] == "A100-80GB"
    assert deployment.spec.template.spec.containers[0].args[1] == str(model)

    # out of band, as `kubectl scale` does: another field manager takes spec.replicas
    cluster.apps.patch_namespaced_deployment(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-scale",
        _content_type="application/merge-patch+json",
    )
    # The watch reports the change (reapplied: false) and a chain re-applies it. When a
    # resync's apply overwrote it first, the watch reports it as re-applied itself.
    drifted = wait_for(
        "the drift reported and re-applied",
        lambda: status_with(remote, lambda s: any(d["reapplied"] for d in s.get("drift") or [])),
        timeout=60,
        every=0.05,
    )
    drifted_condition = condition(drifted, "Drifted")
    assert drifted_condition["status"] == "True" and "kubectl-scale" in drifted_condition["message"]
    [drift] = drifted["drift"]
    assert drift["field"] == f"Deployment/{deployment.metadata.name}.spec.replicas"
    assert (drift["manager"], drift["observed"], drift["expected"]) == ("kubectl-scale", "5", "2")
    [healed] = cluster.deployments()
    assert healed.spec.replicas == 2
    in_sync = wait_for(
        "a later resync with nothing drifted",
        lambda: status_with(remote, lambda s: s.get("phase") == "Ready" and not s.get("drift")),
        timeout=60,
    )
    assert condition(in_sync, "Drifted")["status"] == "False"

    remote.writer.commit_and_push({"deployments.yaml": None}, "Remove chat")
    wait_for(
        "the status file removed",
        lambda: read_status(remote.path, DEPLOYMENT_STATUS) is None,
        timeout=60,
    )
    assert cluster.deployments() == [] and cluster.services() == []
    assert daemon.alive()
    assert cluster.double.token not in daemon.log_text()


def test_the_cluster_autoscalers_moves_are_scale_events_in_status(
    start_daemon: StartDaemon, remote: GitRemote, cluster: Cluster, tmp_path: Path
) -> None:
    """With ``autoscaling`` the HPA owns replicas: its change (through the scale
    subresource) is no drift, and shows in the Deployment's status as a scale event."""
    autoscaling = "autoscaling: {min_workers: 2, max_workers: 5, targets: {queue_depth: 4}}"
    serve_chat(start_daemon, remote, cluster, tmp_path, resync="1h", workers=autoscaling)
    wait_for(
        "the Deployment Ready",
        lambda: status_with(remote, lambda s: s.get("phase") == "Ready"),
        timeout=90,
    )
    [deployment] = cluster.deployments()
    assert deployment.spec.replicas == 2
    cluster.apps.patch_namespaced_deployment_scale(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 4}},
        field_manager="horizontal-pod-autoscaler",
        _content_type="application/merge-patch+json",
    )
    scaled = wait_for(
        "the scale event in status",
        lambda: status_with(remote, lambda s: s.get("scale_events")),
        timeout=60,
    )
    [event] = scaled["scale_events"]
    assert (event["from_workers"], event["to_workers"]) == (2, 4)
    assert event["why"].startswith("horizontal-pod-autoscaler set replicas")
    assert scaled["workers"] == 4
    assert not scaled.get("drift")


GATED = """\
  rollout_gate: {traffic_percent: 25, window_s: 1, min_requests: 5}
  deploy_config: {concurrent_requests: CONCURRENT, avg_sequence_length: 100,
                  avg_context_length: 100, ttft: [50, 500]}
"""


class SlowServer:
    """What the new revision's vLLM server counts while the gate measures it: chat
    requests answered 2 s after they came (served by prometheus_client's own HTTP server,
    which the double's pod proxy reaches)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.registry = CollectorRegistry()
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "ttft",
            registry=self.registry,
            buckets=(0.1, 0.5, 1.0, 2.5, 5.0),
        )
        self.requests = Counter(
            "http_requests_total",
            "requests",
            ["method", "status", "handler"],
            registry=self.registry,
        )
        self.server, self.thread = start_http_server(0, "127.0.0.1", registry=self.registry)
        self.port = self.server.server_port

    def answered(self, count: int) -> None:
        for _ in range(count):
            self.requests.labels("POST", "2xx", "/v1/chat/completions").inc()
            self.ttft.observe(2.0)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_gated_revision_that_breaks_its_slo_is_rolled_back_and_says_so_in_status(
    start_daemon: StartDaemon, remote: GitRemote, cluster: Cluster, tmp_path: Path
) -> None:
    """On a Cluster with an ingress_url, a new revision takes the gate's share through a
    canary Ingress; its pods' metrics say it is slow; status in Git says rolled back."""
    cluster.kubelet.deployment_pods = True
    slow = SlowServer()
    cluster.double.serve_pods(
        namespace=NAMESPACE,
        labels={"reconciler/deployment": "chat"},
        url=f"http://127.0.0.1:{slow.port}",
    )
    try:
        gated = GATED.replace("CONCURRENT", "8")
        daemon, model = serve_chat(start_daemon, remote, cluster, tmp_path, resync="1h")
        files = specs(model)
        files["gpu-cluster.yaml"] += "  ingress_url: https://ml.example.com\n"
        base = files["deployments.yaml"].replace(
            "  deploy_config: {concurrent_requests: 8, avg_sequence_length: 100, "
            "avg_context_length: 100}\n",
            "",
        )
        remote.writer.commit_and_push(
            {**files, "deployments.yaml": base + gated}, "Gate chat's rollouts"
        )
        ready = wait_for(
            "the gated Deployment Ready",
            lambda: status_with(
                remote,
                lambda s: s.get("phase") == "Ready" and "ml.example.com" in s["endpoint_url"],
            ),
            timeout=90,
        )
        [old] = cluster.deployments()

        remote.writer.commit_and_push(
            {"deployments.yaml": base + GATED.replace("CONCURRENT", "16")},
            "More concurrent requests: a new revision",
        )

        def measured() -> dict[str, Any] | None:
            slow.answered(5)  # the canary's share keeps arriving while it is measured
            return status_with(remote, lambda s: (s.get("rollout") or {}).get("verdict"))

        rolled = wait_for("the gate's verdict in status", measured, timeout=90, every=0.2)
        report = rolled["rollout"]
        assert report["verdict"] == "rolled_back", report
        assert report["traffic_percent"] == 25 and report["ttft_p90_ms"] > 500
        assert "RolloutFailed" in condition(rolled, "Ready")["message"]
        assert rolled["endpoint_url"] == ready["endpoint_url"]
        [still] = cluster.deployments()
        assert still.metadata.name == old.metadata.name
        assert [s.metadata.name for s in cluster.services()] == ["chat"]
        assert daemon.alive()
    finally:
        slow.stop()
