"""1,000 Deployments pushed in one commit, through the real daemon, to a kubernetes Cluster
(goal: all Ready and their status committed in <= 30 s; daemon peak RSS <= 250 MB).

The Cluster is the in-test API double (tests/k8s), whose fake kubelet marks pods ready; the
daemon is a ``reconciler run`` subprocess on a bare remote on disk, the double's kubeconfig
in its secrets folder. A first push brings the Cluster and a disk Model to Ready; the
timed push then adds N Deployments (``workers: 1``, built-in ``vllm`` template) in one
commit. Timed from the push's return until the status branch holds N Deployment files
with ``phase: Ready``; the daemon's peak RSS is its VmHWM at that moment. The double and
the kubelet run in this process, so they share the machine's cores with the daemon. The
API requests the double answered in that time (the daemon's and the kubelet's; a watch
counts once it ends) and the 1-minute load average are reported beside the figures.
Usage: .venv/bin/python bench/bench_k8s_deployments.py [--deployments 1000] [--limit 600]
(``BENCH_CONCURRENCY=N`` sets the daemon's clusters.max_concurrent_steps, default 8;
``BENCH_KEEP_DIR=DIR`` keeps the remote, state dir and daemon log there.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.config import kube_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.k8s.apiserver_double import ApiServerDouble
from tests.k8s.kubelet import FakeKubelet

STATUS_BRANCH = "reconciler/status"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode().strip()


def push(clone: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (clone / name).write_text(text)
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", message)
    git(clone, "push", "--quiet", "origin", "HEAD:main")


def base_specs(model: Path) -> dict[str, str]:
    return {
        "cluster.yaml": """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu}
spec:
  driver: kubernetes
  namespace: bench
  kubeconfig: {secret: gpu-kubeconfig}
  gpu: {type: nvidia-h100, count: 1000}
""",
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
""",
    }


def deployments(count: int) -> str:
    docs = [
        f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat-{index:04d}}}
spec:
  model: smol
  cluster: gpu
  template: vllm
  endpoint_name: chat {index}
  workers: 1
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 64, avg_context_length: 64}}
"""
        for index in range(count)
    ]
    return "---\n".join(docs)


def ready_count(remote: Path, folder: str) -> int:
    """Status files under ``folder`` on the status branch that say ``phase: Ready``."""
    done = subprocess.run(
        [
            "git",
            "--git-dir",
            str(remote),
            "grep",
            "-l",
            "^phase: Ready$",
            STATUS_BRANCH,
            "--",
            folder,
        ],
        capture_output=True,
        check=False,
    )
    return len(done.stdout.splitlines())


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(what: str, probe: object, *, limit: float) -> float:
    assert callable(probe)
    began = time.monotonic()
    while not probe():
        if time.monotonic() - began > limit:
            raise SystemExit(f"timed out after {limit:g}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - began


def run(count: int, limit: float) -> dict[str, object]:
    double = ApiServerDouble().start()
    configuration = client.Configuration()
    kube_config.KubeConfigLoader(config_dict=yaml.safe_load(double.kubeconfig())).load_and_set(
        configuration
    )
    api = client.ApiClient(configuration)
    kubelet = FakeKubelet(api, double=double, watch_timeout_s=20).start()
    keep = os.environ.get("BENCH_KEEP_DIR")
    with (
        contextlib.nullcontext(keep)
        if keep
        else tempfile.TemporaryDirectory(prefix="bench-k8s-") as scratch
    ):
        work = Path(scratch)
        remote, clone, state = work / "remote.git", work / "clone", work / "state"
        secrets, model = work / "secrets", work / "smol"
        for folder in (clone, secrets, model):
            folder.mkdir()
        (secrets / "gpu-kubeconfig").write_text(double.kubeconfig())
        (model / "config.json").write_text('{"num_hidden_layers": 2}\n')
        git(work, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        git(clone, "init", "--quiet", "--initial-branch=main")
        git(clone, "remote", "add", "origin", str(remote))
        push(clone, base_specs(model), "Cluster and Model")
        config = work / "reconciler.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "repo": {"url": str(remote), "branch": "main", "poll_interval": "200ms"},
                    "resync_interval": "1h",
                    "state_dir": str(state),
                    "secrets_dir": str(secrets),
                    "api": {"listen": "127.0.0.1:0"},
                    "logging": {"level": "warning"},
                    "clusters": {
                        "max_concurrent_steps": int(os.environ.get("BENCH_CONCURRENCY", "8"))
                    },
                }
            )
        )
        log = (work / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **GIT_ENV},
        )
        try:
            wait("the Model Ready", lambda: ready_count(remote, "status/models") == 1, limit=120)
            (clone / "deployments.yaml").write_text(deployments(count))
            git(clone, "add", "-A")
            git(clone, "commit", "--quiet", "-m", f"{count} Deployments")
            load_before = os.getloadavg()[0]
            daemon_cpu_before = cpu_s(daemon.pid)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            double_cpu_before = usage.ru_utime + usage.ru_stime
            requests_before = len(double.requests)
            git(clone, "push", "--quiet", "origin", "HEAD:main")
            elapsed = wait(
                f"{count} Deployments Ready",
                lambda: ready_count(remote, "status/deployments") == count,
                limit=limit,
            )
            rss = peak_rss_mib(daemon.pid)
            load_after = os.getloadavg()[0]
            requests = len(double.requests) - requests_before
            daemon_cpu = cpu_s(daemon.pid)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            double_cpu = usage.ru_utime + usage.ru_stime
            # every Deployment really is on the cluster, as the kubelet saw it
            applied = len(client.AppsV1Api(api).list_namespaced_deployment("bench").items)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            log.close()
            kubelet.stop()
            api.close()
            double.stop()
    return {
        "deployments": count,
        "seconds_to_all_ready_and_committed": round(elapsed, 2),
        "daemon_peak_rss_mib": round(rss, 1),
        "deployments_on_cluster": applied,
        "kubelet_errors": kubelet.errors[:5],
        "cores": os.cpu_count(),
        "daemon_cpu_s": round(daemon_cpu, 1),
        "daemon_cpu_s_from_push": round(daemon_cpu - daemon_cpu_before, 1),
        "double_and_kubelet_cpu_s": round(double_cpu, 1),
        "double_and_kubelet_cpu_s_from_push": round(double_cpu - double_cpu_before, 1),
        "api_requests_answered": requests,
        "load_average_1m_at_push_and_at_end": [round(load_before, 2), round(load_after, 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--limit", type=float, default=600.0, help="give up after (seconds)")
    args = parser.parse_args()
    result = run(args.deployments, args.limit)
    print(json.dumps(result, indent=2))
    goal = result["seconds_to_all_ready_and_committed"] <= 30  # type: ignore[operator]
    memory = result["daemon_peak_rss_mib"] <= 250 / 1.048576  # type: ignore[operator]
    print(
        f"time goal (<= 30 s): {'met' if goal else 'missed'}; "
        f"memory goal (<= 250 MB): {'met' if memory else 'missed'}"
    )


if __name__ == "__main__":
    main()
