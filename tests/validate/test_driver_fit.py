"""What a Deployment asks of its Cluster's driver is checked up front, at the field, by
``validate`` and ``plan`` alike: ``workers: 2`` on a ``driver: local`` Cluster is taken (its
proxy spreads requests over the workers) and planned as two workers; what a driver cannot
give (the KV cache signal or KEDA on a local Cluster, a rollout gate on Kubernetes
without an ingress or a server that measures itself, autoscaling of a cloud model) is
refused saying why."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

TEMPLATE = Path(__file__).parents[2] / "state-repo-template"


def _deployment(workers: str, cluster: str = "local", extra: str = "") -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata:
  name: embeddings
spec:
  model: minilm
  cluster: {cluster}
  template: text-embeddings
  endpoint_name: embeddings
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 1, avg_context_length: 128}}
  workers: {workers}
{extra}"""


CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpus}
spec:
  driver: kubernetes
  kubeconfig: {secret: gpus-kubeconfig}
"""
MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: minilm}
spec:
  modality: embedding
  source: {provider_type: disk, uri: /srv/models/minilm}
"""


def _check(deployment: str) -> list[str]:
    sources = [
        SourceFile("clusters.yaml", CLUSTERS.encode()),
        SourceFile("models.yaml", MODEL.encode()),
        SourceFile("deployments.yaml", deployment.encode()),
    ]
    return [d.format() for d in validate_sources(sources).diagnostics]


AUTOSCALING = """\
  autoscaling:
    min_workers: 1
    max_workers: 3
    targets: {queue_depth: 2, kv_cache_usage: 0.8}
    engine: keda
    prometheus_url: http://prometheus:9090
"""


LOCAL_SCALING = "  autoscaling: {min_workers: 1, max_workers: 4, targets: {ttft_ms: 500}}\n"


@pytest.mark.parametrize(
    "deployment",
    [
        _deployment("1"),
        _deployment("null"),
        _deployment("2"),
        _deployment("2", cluster="gpus"),
        _deployment("null", extra="  rollout_gate: {traffic_percent: 20}\n"),
        _deployment("null", extra=LOCAL_SCALING),
    ],
    ids=["one worker", "sized", "two local workers", "kubernetes", "local gate", "local scaling"],
)
def test_what_the_driver_can_give_passes(deployment: str) -> None:
    assert _check(deployment) == []


def test_what_the_local_driver_cannot_measure_is_an_error_at_the_field() -> None:
    problems = _check(_deployment("null", extra=AUTOSCALING))
    assert [p.split(": error: ")[0] for p in problems] == [
        "deployments.yaml:15:47",
        "deployments.yaml:16:13",
        "deployments.yaml:17:21",
    ]
    assert "does not include the KV cache; remove kv_cache_usage" in problems[0]
    assert "engine is for kubernetes Clusters" in problems[1]
    assert "prometheus_url is for kubernetes Clusters" in problems[2]


GATE = "  rollout_gate: {}\n"
INGRESS = "  ingress_url: https://ml.example.com\n"


def _check_gate(deployment: str, *, ingress: bool) -> list[str]:
    clusters = CLUSTERS + INGRESS if ingress else CLUSTERS
    sources = [
        SourceFile("clusters.yaml", clusters.encode()),
        SourceFile("models.yaml", MODEL.encode()),
        SourceFile("deployments.yaml", deployment.encode()),
    ]
    return [d.format() for d in validate_sources(sources).diagnostics]


def test_a_rollout_gate_on_kubernetes_needs_the_clusters_ingress() -> None:
    vllm = _deployment("null", cluster="gpus", extra=GATE).replace("text-embeddings", "vllm")
    [problem] = _check_gate(vllm, ingress=False)
    assert problem.startswith("deployments.yaml:12:17: error: a rollout_gate on Cluster 'gpus'")
    assert "needs the Cluster's ingress_url" in problem
    assert _check_gate(vllm, ingress=True) == []


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("text-embeddings", "names no server metrics"),
        ("llama-cpp", "has llama.cpp metrics"),
    ],
)
def test_a_rollout_gate_on_kubernetes_needs_a_server_that_measures_itself(
    template: str, words: str
) -> None:
    deployment = _deployment("null", cluster="gpus", extra=GATE)
    [problem] = _check_gate(deployment.replace("text-embeddings", template), ingress=True)
    assert problem.startswith("deployments.yaml:12:17: error: DeploymentTemplate")
    assert words in problem and "only vllm servers expose" in problem


def test_a_cloud_model_is_scaled_by_its_provider() -> None:
    cloud = _deployment("null", extra=AUTOSCALING.replace("kv_cache_usage: 0.8", "ttft_ms: 9"))
    cloud = cloud.replace("  cluster: local\n", "").replace("  workers: null\n", "")
    problems = _check(cloud)
    assert any("scaled by its provider" in p and "autoscaling" in p for p in problems), problems


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_plan_shows_two_local_workers_and_refuses_what_the_driver_cannot_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "specs"
    shutil.copytree(TEMPLATE, repo, ignore=shutil.ignore_patterns(".*"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    deployment = repo / "deployments" / "embeddings.yaml"
    original = deployment.read_text()
    deployment.write_text(original.replace("workers: 1", "workers: 2"))
    monkeypatch.chdir(repo)
    assert main(["plan", "--base", "main"]) == 2  # changes present
    assert "2 worker(s)" in capsys.readouterr().out

    scaled = original.replace(
        "workers: 1",
        "autoscaling: {min_workers: 1, max_workers: 2, targets: {kv_cache_usage: 0.5}}",
    )
    deployment.write_text(scaled)
    assert main(["plan", "--base", "main"]) == 1
    assert "does not include the KV cache" in capsys.readouterr().err
    assert main(["validate", "deployments/embeddings.yaml"]) == 1
    assert "does not include the KV cache" in capsys.readouterr().out
