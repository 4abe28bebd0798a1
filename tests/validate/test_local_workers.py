"""What a Deployment asks of its Cluster's driver is checked up front: ``workers: 2`` on
a ``driver: local`` Cluster is refused by ``validate`` and ``plan`` alike, at the field,
saying why, instead of a "2 worker(s)" plan the local driver then refuses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

TEMPLATE = Path(__file__).parents[2] / "state-repo-template"
WHY = "the local driver runs one worker per endpoint"


def _deployment(workers: str, cluster: str = "local") -> str:
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
"""


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


def test_two_workers_on_the_local_driver_is_an_error_at_the_field() -> None:
    assert _check(_deployment("2")) == [
        "deployments.yaml:11:12: error: workers: 2 on Cluster 'local', whose driver is "
        f"local: {WHY} (no load balancer in front of local servers); set workers: 1, or "
        "deploy to a kubernetes Cluster (Deployment/embeddings)"
    ]


@pytest.mark.parametrize(
    "deployment",
    [_deployment("1"), _deployment("null"), _deployment("2", cluster="gpus")],
    ids=["one worker", "sized", "kubernetes"],
)
def test_what_the_driver_can_give_passes(deployment: str) -> None:
    assert _check(deployment) == []


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_plan_refuses_it_too_instead_of_planning_two_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "specs"
    shutil.copytree(TEMPLATE, repo, ignore=shutil.ignore_patterns(".*"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    deployment = repo / "deployments" / "embeddings.yaml"
    deployment.write_text(deployment.read_text().replace("workers: 1", "workers: 2"))
    monkeypatch.chdir(repo)
    assert main(["plan", "--base", "main"]) == 1
    captured = capsys.readouterr()
    assert "2 worker(s)" not in captured.out
    assert "deployments/embeddings.yaml:21:12: error: workers: 2 on Cluster 'local'" in (
        captured.err
    )
    assert WHY in captured.err
    assert main(["validate", "deployments/embeddings.yaml"]) == 1
    assert WHY in capsys.readouterr().out
