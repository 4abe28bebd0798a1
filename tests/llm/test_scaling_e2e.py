"""Autoscaling and a gated rollout on the local cluster, end to end through a real daemon.

A daemon process serves a Deployment whose template runs a small server that takes 0.2 s
per request. A load generator against its endpoint makes the driver's autoscaler add
workers up to ``max_workers``; each scale event appears in the Deployment's status file
on the status branch as it happens (not at the next chain), and the workers go back to
``min_workers`` once the load stops. Then a push makes every answer take a second: the
new revision takes its share of the requests, breaks the ``ttft`` SLO of deploy_config,
and is rolled back while a client keeps sending requests; no request fails, the old
revision serves on, and the status says RolloutFailed with the measurements.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.clusters import local_processes as procs
from tests.clusters.local.conftest import SERVER
from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon, remote, start_daemon  # noqa: F401
from tests.daemon.harness import read_status, wait_for

STATUS = "status/deployments/chat.yaml"


def specs(script: Path, model: Path, *, sleep_s: float) -> dict[str, str]:
    return {
        "models.yaml": f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: tiny}}
spec:
  modality: llm
  source: {{provider_type: disk, uri: {model}}}
""",
        "templates.yaml": f"""\
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {{name: slow-server}}
spec:
  modality: llm
  runtime:
    command: ["{sys.executable}", "{script}", "{{port}}"]
    health_path: /health
    env: {{SLEEP_S: "{sleep_s}", GREETING: "sleeps {sleep_s}s"}}
""",
        "deployments.yaml": """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: tiny
  cluster: local
  template: slow-server
  endpoint_name: chat
  deploy_config:
    concurrent_requests: 2
    avg_sequence_length: 16
    avg_context_length: 16
    ttft: [1, 600]
  autoscaling:
    min_workers: 1
    max_workers: 3
    targets: {queue_depth: 1}
    scale_down_delay_s: 4
  rollout_gate: {traffic_percent: 30, window_s: 4, min_requests: 5}
""",
    }


class Load:
    """``clients`` threads, each sending one request after another until stopped."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[str] = []
        self.started: list[float] = []
        """When the request of each answer was sent (time.monotonic), in step with it."""
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=60) as response:
                    body = response.read().decode()
                with self.lock:
                    self.answers.append(body)
                    self.started.append(sent)
            except (urllib.error.URLError, OSError) as exc:
                with self.lock:
                    self.failures.append(repr(exc))

    def sent_after(self, moment: float) -> list[str]:
        """The answers to requests sent after ``moment``."""
        with self.lock:
            return [a for a, t in zip(self.answers, self.started, strict=True) if t > moment]

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def status(repo: GitRemote) -> dict[str, Any]:
    return read_status(repo.path, STATUS) or {}


@pytest.fixture
def endpoints_stopped(tmp_path: Path) -> Iterator[None]:
    """The daemon leaves local endpoints serving when it stops: stop what the test made
    (requested before the daemon, so this runs after it has stopped)."""
    yield
    for identity, _ in procs.marked_with_prefix(f"{tmp_path / 'state' / 'local'}::"):
        asyncio.run(procs.stop_group(identity, grace_s=5))


def test_load_scales_workers_and_a_slow_revision_is_rolled_back(
    endpoints_stopped: None,
    start_daemon: StartDaemon,  # noqa: F811
    remote: GitRemote,  # noqa: F811
    tmp_path: Path,
) -> None:
    script = tmp_path / "slow_server.py"
    script.write_text(SERVER)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("not really weights\n")
    daemon = start_daemon()
    remote.writer.commit_and_push(specs(script, model, sleep_s=0.2), "A slow chat endpoint")
    ready = wait_for(
        "the Deployment Ready",
        lambda: (found := status(remote)).get("phase") == "Ready" and found,
        timeout=120,
    )
    url = f"{ready['endpoint_url']}/whoami"
    assert ready["autoscaling"]["min_workers"] == 1 and ready["workers"] == 1
    marker = f"{(tmp_path / 'state' / 'local').resolve()}::chat::worker::"

    with Load(url, clients=10) as load:
        scaled = wait_for(
            "three workers in the status",
            lambda: (found := status(remote)).get("workers") == 3 and found,
            timeout=120,
        )
        wait_for("three worker processes", lambda: len(procs.marked_with_prefix(marker)) == 3)
    assert load.failures == []
    events = scaled["scale_events"]
    assert events[0]["from_workers"] == 1 and "waiting" in events[0]["why"]
    assert scaled["phase"] == "Ready", "a scale event is no drift and no redeploy"

    down = wait_for(
        "one worker again in the status",
        lambda: (found := status(remote)).get("workers") == 1 and found,
        timeout=120,
    )
    assert down["scale_events"][-1]["to_workers"] == 1
    wait_for("one worker process", lambda: len(procs.marked_with_prefix(marker)) == 1, timeout=60)

    with Load(url, clients=4) as load:
        remote.writer.commit_and_push(specs(script, model, sleep_s=1.5), "Every answer takes 1.5 s")
        stalled = wait_for(
            "the rollout rolled back",
            lambda: _reason(found := status(remote)) == "RolloutFailed" and found,
            timeout=180,
        )
        # the proxy stops sending to the candidate before its status can say so;
        # answers to requests sent before may still come back from it (drained)
        seen = time.monotonic()
        wait_for("answers sent after it", lambda: len(load.sent_after(seen)) > 20, timeout=60)
    assert load.failures == []
    assert any("sleeps 1.5s" in answer for answer in load.answers), "it took its share"
    assert all("sleeps 0.2s" in answer for answer in load.sent_after(seen))
    assert stalled["phase"] == "Stalled"
    assert stalled["endpoint_url"] == ready["endpoint_url"], "the old revision serves there"
    rollout = stalled["rollout"]
    assert rollout["verdict"] == "rolled_back" and rollout["slo"]["ttft_p90_ms"] == 600
    assert rollout["ttft_p90_ms"] >= 1500 and rollout["errors"] == 0
    assert any("time to first token" in reason for reason in rollout["reasons"])
    assert daemon.alive()


def _reason(found: dict[str, Any]) -> str | None:
    ready = [c for c in found.get("conditions") or [] if c.get("type") == "Ready"]
    return str(ready[0].get("reason")) if ready else None
