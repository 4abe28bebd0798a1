"""Sharded replicas: N Deployments over M kubernetes Clusters with 1, 2 and 4 replicas.

Each replica is a real ``reconciler run`` subprocess with ``sharding:`` (its own state
directory, the same bare remote on disk); the replicas coordinate through Leases in one
API double (the home cluster), and the Clusters are namespaces of a second API double,
whose fake kubelet marks pods ready. Clusters are pinned round robin to the shards
(``spec.shard``), so each shard holds the same number of Deployments. Per replica count:
a first push brings the Clusters and a disk Model to Ready once every shard is held; the
timed push adds the N Deployments in one commit, and the clock stops when the status
branch holds N Deployment files with ``phase: Ready``. Reported per run: that time, each
replica's peak RSS (VmHWM) and CPU seconds, the shard holders, and the speedup and
scaling efficiency against one replica (T1 / TN, and that divided by N). The doubles and
the kubelet run in this process, on the same cores as the replicas: on a machine with
fewer cores than replicas the replicas share them, which bounds what sharding can show.
Usage: .venv/bin/python bench/bench_sharding.py [--deployments 10000] [--clusters 20]
[--replicas 1,2,4] [--shards 4] [--limit 1800]
(``BENCH_KEEP_DIR=DIR`` keeps each run's remote, state dirs and logs under DIR.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.config import kube_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_k8s_deployments import (
    GIT_ENV,
    cpu_s,
    git,
    peak_rss_mib,
    push,
    ready_count,
    wait,
)
from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.kubelet import FakeKubelet

NAMESPACE = "reconciler"


def clusters(count: int, shards: int) -> str:
    return "---\n".join(
        f"""\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: gpu-{index:02d}}}
spec:
  driver: kubernetes
  namespace: bench-{index:02d}
  kubeconfig: {{secret: gpu-kubeconfig}}
  gpu: {{type: nvidia-h100, count: 1000}}
  shard: {index % shards}
"""
        for index in range(count)
    )


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


def deployments(count: int, cluster_count: int) -> dict[str, str]:
    """One file per cluster (a file holds at most load.max_file_bytes)."""
    files: dict[int, list[str]] = {}
    for index in range(count):
        cluster = index % cluster_count
        files.setdefault(cluster, []).append(
            f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat-{index:05d}}}
spec:
  model: smol
  cluster: gpu-{cluster:02d}
  template: vllm
  endpoint_name: chat {index}
  workers: 1
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 64, avg_context_length: 64}}
"""
        )
    return {f"deployments-{c:02d}.yaml": "---\n".join(docs) for c, docs in files.items()}


def holders(home: client.ApiClient) -> dict[str, str | None]:
    leases = client.CoordinationV1Api(home).list_namespaced_lease(NAMESPACE).items
    return {
        lease.metadata.name: lease.spec.holder_identity
        for lease in leases
        if "-shard-" in lease.metadata.name
    }


def replica_config(work: Path, identity: str, remote: Path, secrets: Path, shards: int) -> Path:
    path = work / f"{identity}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "repo": {"url": str(remote), "branch": "main", "poll_interval": "200ms"},
                "resync_interval": "1h",
                "state_dir": str(work / identity / "state"),
                "secrets_dir": str(secrets),
                "logging": {"level": "warning"},
                "sharding": {
                    "shards": shards,
                    "identity": identity,
                    "namespace": NAMESPACE,
                    "kubeconfig": {"secret": "home-kubeconfig"},
                },
            }
        )
    )
    return path


def run(count: int, cluster_count: int, replicas: int, shards: int, limit: float) -> dict[str, Any]:
    gpu = ApiServerDouble().start()
    home = ApiServerDouble(token="home-token-b7d2").start()

    def api_of(double: ApiServerDouble) -> client.ApiClient:
        configuration = client.Configuration()
        loaded = yaml.safe_load(double.kubeconfig())
        kube_config.KubeConfigLoader(config_dict=loaded).load_and_set(configuration)
        return client.ApiClient(configuration)

    gpu_api, home_api = api_of(gpu), api_of(home)
    client.CoreV1Api(home_api).create_namespace({"metadata": {"name": NAMESPACE}})
    kubelet = FakeKubelet(gpu_api, double=gpu, watch_timeout_s=20).start()
    keep = os.environ.get("BENCH_KEEP_DIR")
    if keep:
        Path(keep, f"replicas-{replicas}").mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    with (
        contextlib.nullcontext(str(Path(keep, f"replicas-{replicas}")))
        if keep
        else tempfile.TemporaryDirectory(prefix="bench-shards-") as scratch
    ):
        work = Path(scratch)
        remote, clone, secrets, folder = (
            work / "remote.git",
            work / "clone",
            work / "secrets",
            work / "smol",
        )
        for path in (clone, secrets, folder):
            path.mkdir()
        (secrets / "gpu-kubeconfig").write_text(gpu.kubeconfig())
        (secrets / "home-kubeconfig").write_text(home.kubeconfig())
        (folder / "config.json").write_text('{"num_hidden_layers": 2}\n')
        git(work, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        git(clone, "init", "--quiet", "--initial-branch=main")
        git(clone, "remote", "add", "origin", str(remote))
        push(
            clone,
            {"clusters.yaml": clusters(cluster_count, shards), "model.yaml": model(folder)},
            "Clusters and a Model",
        )
        try:
            for index in range(replicas):
                identity = f"reconciler-{index}"
                config = replica_config(work, identity, remote, secrets, shards)
                log = (work / f"{identity}.log").open("wb")
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "reconciler", "run", "--config", str(config)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, **GIT_ENV},
                    )
                )
            expected = {f"reconciler-{i % replicas}" for i in range(shards)}
            wait(
                "every shard held, by every replica",
                lambda: (
                    len(holders(home_api)) == shards and set(holders(home_api).values()) == expected
                ),
                limit=180,
            )
            wait(
                "the Clusters and the Model Ready",
                lambda: (
                    ready_count(remote, "status/models") == 1
                    and ready_count(remote, "status/clusters") == cluster_count
                ),
                limit=180,
            )
            for name, text in deployments(count, cluster_count).items():
                (clone / name).write_text(text)
            git(clone, "add", "-A")
            git(clone, "commit", "--quiet", "-m", f"{count} Deployments")
            cpu_before = [cpu_s(p.pid) for p in processes]
            load_before = os.getloadavg()[0]
            git(clone, "push", "--quiet", "origin", "HEAD:main")
            elapsed = wait(
                f"{count} Deployments Ready",
                lambda: ready_count(remote, "status/deployments") == count,
                limit=limit,
            )
            load_after = os.getloadavg()[0]
            rss = [round(peak_rss_mib(p.pid), 1) for p in processes]
            cpu = [
                round(cpu_s(p.pid) - before, 1)
                for p, before in zip(processes, cpu_before, strict=True)
            ]
            applied = sum(
                1 for _ in client.AppsV1Api(gpu_api).list_deployment_for_all_namespaces().items
            )
            held = holders(home_api)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=120)
            kubelet.stop()
            gpu_api.close()
            home_api.close()
            gpu.stop()
            home.stop()
    return {
        "replicas": replicas,
        "deployments": count,
        "clusters": cluster_count,
        "shards": shards,
        "seconds_to_all_ready_and_committed": round(elapsed, 1),
        "peak_rss_mib_per_replica": rss,
        "cpu_s_per_replica_from_push": cpu,
        "deployments_on_clusters": applied,
        "shard_holders": dict(sorted(held.items())),
        "load_average_1m_at_push_and_at_end": [round(load_before, 2), round(load_after, 2)],
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--replicas", default="1,2,4", help="replica counts, comma-separated")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--limit", type=float, default=1800.0, help="give up after (seconds)")
    args = parser.parse_args()
    results = []
    for replicas in (int(n) for n in args.replicas.split(",")):
        result = run(args.deployments, args.clusters, replicas, args.shards, args.limit)
        results.append(result)
        print(json.dumps(result), flush=True)
    base = results[0]["seconds_to_all_ready_and_committed"]
    for result in results:
        speedup = base / result["seconds_to_all_ready_and_committed"]
        relative = result["replicas"] / results[0]["replicas"]
        print(
            f"{result['replicas']} replicas: {result['seconds_to_all_ready_and_committed']} s, "
            f"speedup {speedup:.2f}x, scaling efficiency {speedup / relative:.0%}, "
            f"peak RSS per replica {result['peak_rss_mib_per_replica']} MiB"
        )


if __name__ == "__main__":
    main()
