"""Drift is seen from watches, not at the next resync: Drifted and the repair start at once.

Kubernetes: a Deployment Ready on the API double; another field manager scales it (as
``kubectl scale`` does). The driver's namespace watch sees the event, the Deployment is
Drifted (field and manager named) and a repair chain (trigger ``drift``) starts within
2 s, with the resync an hour away; the live object is put back.

Local: the server of a Deployment on the local cluster is killed. Its exit is seen at
once (a pidfd, not the next probe): Drifted, the supervisor restarts it on the same port
and the repair chain starts within 2 s.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clusters.local.conftest import SERVER, get_json
from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.conftest import SEED, StartDaemon
from tests.daemon.harness import read_status, wait_for
from tests.daemon.inprocess import ManualClock, start_daemon, wait_until
from tests.daemon.test_kubernetes_e2e import DEPLOYMENT_STATUS, NAMESPACE, Cluster, serve_chat

REPAIR_WITHIN_S = 2.0


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    yield made
    made.stop()


def _drifted(status: dict[str, Any] | None) -> dict[str, Any] | None:
    found = [c for c in (status or {}).get("conditions") or [] if c.get("type") == "Drifted"]
    return found[0] if found and found[0].get("status") == "True" else None


def _drift_runs(rows: list[object]) -> list[object]:
    return [row for row in rows if row["trigger"] == "drift"]  # type: ignore[index]


def test_kubernetes_drift_is_repaired_from_the_watch_event(
    start_daemon: StartDaemon, remote: GitRemote, cluster: Cluster, tmp_path: Path
) -> None:
    daemon, _ = serve_chat(start_daemon, remote, cluster, tmp_path, resync="1h")
    wait_for(
        "the Deployment Ready",
        lambda: (s := read_status(remote.path, DEPLOYMENT_STATUS)) and s.get("phase") == "Ready",
        timeout=90,
    )
    [deployment] = cluster.deployments()
    assert _drift_runs(daemon.executions("Deployment", "chat")) == []

    changed = time.monotonic()
    cluster.apps.patch_namespaced_deployment(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-scale",
        _content_type="application/merge-patch+json",
    )
    wait_for(
        "a repair chain started by the drift",
        lambda: _drift_runs(daemon.executions("Deployment", "chat")),
        timeout=REPAIR_WITHIN_S * 5,
        every=0.02,
    )
    repair_started = time.monotonic() - changed
    assert repair_started <= REPAIR_WITHIN_S, f"repair started {repair_started:.2f}s after"
    drifted = wait_for(
        "Drifted in the status",
        lambda: _drifted(read_status(remote.path, DEPLOYMENT_STATUS)),
        timeout=30,
        every=0.05,
    )
    assert "kubectl-scale" in drifted["message"]
    wait_for(
        "the live Deployment put back",
        lambda: cluster.deployments()[0].spec.replicas == 2,
        timeout=30,
    )
    assert daemon.alive()


async def test_a_local_server_exit_is_drift_repaired_at_once(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    script = tmp_path / "tiny_server.py"
    script.write_text(SERVER)
    files = {
        **SEED,
        "tiny.yaml": f"""\
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {{name: tiny-server}}
spec:
  modality: embedding
  runtime: {{command: ["{sys.executable}", "{script}", "{{port}}"], health_path: /health}}
---
apiVersion: reconciler/v1
kind: Model
metadata: {{name: tiny}}
spec:
  modality: embedding
  source: {{provider_type: disk, uri: {tmp_path}}}
  security_scan: skip
---
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: tiny}}
spec:
  model: tiny
  cluster: local
  template: tiny-server
  endpoint_name: tiny
  deploy_config: {{concurrent_requests: 1, avg_sequence_length: 1, avg_context_length: 16}}
  workers: 1
""",
    }
    remote = make_git_remote(files=files)
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        await wait_until(
            "Deployment/tiny Ready",
            lambda: running.status("Deployment/tiny").get("phase") == "Ready",
            timeout=90,
        )
        url = running.status("Deployment/tiny")["endpoint_url"].removesuffix("/v1")
        before = await get_json(url + "/health")
        assert running.daemon.store is not None

        def drift_runs() -> list[object]:
            assert running.daemon.store is not None
            found = running.daemon.store.list_executions(kind="Deployment", name="tiny")
            return [r for r in found if r.trigger == "drift"]

        assert drift_runs() == []
        killed = time.monotonic()
        os.killpg(before["pid"], signal.SIGKILL)
        await wait_until("a repair chain", drift_runs, timeout=REPAIR_WITHIN_S * 5)
        assert time.monotonic() - killed <= REPAIR_WITHIN_S
        status = running.status("Deployment/tiny")
        assert "exited" in str(status.get("drift"))

        async def serving_again() -> bool:
            try:
                after = await get_json(url + "/health")
            except Exception:
                return False
            return bool(after["pid"] != before["pid"])

        await wait_until("the server back on its port", serving_again, timeout=30)
        await wait_until(
            "Ready again",
            lambda: running.status("Deployment/tiny").get("phase") == "Ready",
            timeout=30,
        )
        remote.writer.commit_and_push({"tiny.yaml": None}, "remove")
        await wait_until(
            "Deployment/tiny gone", lambda: running.status("Deployment/tiny") == {}, timeout=60
        )
    finally:
        await running.stop()
