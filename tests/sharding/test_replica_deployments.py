"""Deployments on kubernetes Clusters pinned to shards of two replicas: each replica
serves its clusters' Deployments from its own copy of their Model, and only the holder
of the Model's shard publishes the Model's status (two real daemon processes; the
Clusters are namespaces of an API double with a fake kubelet)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from reconciler.core import shards
from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import read_status, wait_for
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.kubelet import FakeKubelet
from tests.sharding.conftest import Home
from tests.sharding.replica_kit import Fleet, Recorder


@pytest.fixture
def gpu() -> Iterator[tuple[ApiServerDouble, client.ApiClient]]:
    double = ApiServerDouble(token="gpu-token-41c0").start()
    configuration = client.Configuration()
    loaded = yaml.safe_load(double.kubeconfig())
    kube_config.KubeConfigLoader(config_dict=loaded).load_and_set(configuration)
    api = client.ApiClient(configuration)
    kubelet = FakeKubelet(api, double=double).start()
    yield double, api
    kubelet.stop()
    api.close()
    double.stop()


def specs(model: Path) -> dict[str, str]:
    files = {
        "model.yaml": f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: smol}}
spec:
  modality: llm
  source: {{provider_type: disk, uri: {model}}}
  security_scan: skip
  parameters: 135M
  dtype: bfloat16
"""
    }
    for shard in (0, 1):
        files[f"cluster-{shard}.yaml"] = f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: gpu-{shard}}}
spec:
  driver: kubernetes
  namespace: models-{shard}
  kubeconfig: {{secret: gpu-kubeconfig}}
  gpu: {{type: nvidia-a100-80gb, count: 8}}
  shard: {shard}
"""
        files[f"chat-{shard}.yaml"] = "---\n".join(
            f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat-{shard}-{i}}}
spec:
  model: smol
  cluster: gpu-{shard}
  template: vllm
  endpoint_name: chat {shard} {i}
  workers: 1
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 64, avg_context_length: 64}}
"""
            for i in range(3)
        )
    return files


@pytest.fixture
def remote(make_git_remote: MakeGitRemote) -> GitRemote:
    return make_git_remote(files={"README.md": "specs\n"})


def test_each_replica_serves_its_clusters_from_its_own_copy_of_the_model(
    home: Home,
    remote: GitRemote,
    tmp_path: Path,
    gpu: tuple[ApiServerDouble, client.ApiClient],
) -> None:
    double, api = gpu
    model = tmp_path / "smol"
    model.mkdir()
    (model / "config.json").write_text('{"num_hidden_layers": 2}\n')
    recorder = Recorder(hold_s=0.0)
    fleet = Fleet(home=home, remote=remote.path, tmp=tmp_path, recorder=recorder)
    try:
        for identity in ("r-0", "r-1"):
            fleet.start(identity)
            (tmp_path / identity / "secrets" / "gpu-kubeconfig").write_text(double.kubeconfig())
        wait_for(
            "two shards each",
            lambda: fleet.working("r-0", {0, 2}) and fleet.working("r-1", {1, 3}),
            timeout=120,  # two daemons start first: slow on a loaded machine
        )
        remote.writer.commit_and_push(specs(model), "two clusters, a model, six deployments")
        names = [f"chat-{s}-{i}" for s in (0, 1) for i in range(3)]

        def all_ready() -> bool:
            for name in names:
                status = read_status(remote.path, f"status/deployments/{name}.yaml")
                if not status or status.get("phase") != "Ready":
                    return False
            return True

        wait_for("every Deployment Ready", all_ready, timeout=90)
        apps = client.AppsV1Api(api)
        for shard in (0, 1):
            items = apps.list_namespaced_deployment(f"models-{shard}").items
            assert len(items) == 3
        for shard, identity in ((0, "r-0"), (1, "r-1")):
            db = tmp_path / identity / "state" / "state.db"
            conn = sqlite3.connect(db)
            try:
                rows = dict(conn.execute("SELECT kind || '/' || name, phase FROM objects"))
            finally:
                conn.close()
            assert "Model/smol" in rows  # its own copy, applied here:
            conn = sqlite3.connect(db)
            try:
                [(model_runs,)] = conn.execute(
                    "SELECT count(*) FROM executions WHERE kind = 'Model' AND status = 'succeeded'"
                ).fetchall()
            finally:
                conn.close()
            assert model_runs == 1
            mine = {n for n in names if n.startswith(f"chat-{shard}-")}
            assert {k.split("/")[1] for k in rows if k.startswith("Deployment/")} == mine
        model_status = read_status(remote.path, "status/models/smol.yaml")
        assert model_status is not None and model_status["phase"] == "Ready"
        owner = {0: "r-0", 1: "r-1", 2: "r-0", 3: "r-1"}[shards.stable_shard("Model/smol", 4)]
        for identity in ("r-0", "r-1"):  # a status document is kept only where published
            published = model_memo(tmp_path / identity / "state" / "state.db").get("status")
            assert (published is not None) == (identity == owner), identity
    finally:
        fleet.stop()
        recorder.stop()


def model_memo(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        [(text,)] = conn.execute(
            "SELECT status FROM objects WHERE kind = 'Model' AND name = 'smol'"
        ).fetchall()
    finally:
        conn.close()
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
