"""A daemon killed while a local Deployment's chain runs resumes that chain on restart.

The deploy chain waits on a server that does not answer yet (it listens only once a
gate file exists); the daemon is killed with -9 mid-step and started again. The
restarted daemon reads the repo before the chain resumes, so the chain finds its
Cluster and ends Ready: no Stalled "no driver", no undeploy of an endpoint that is
still desired, no second deploy, and the worker started before the kill is the one
that serves (adopted, not restarted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.clusters import local_processes as procs
from tests.clusters.local.conftest import SERVER
from tests.conftest import GitRemote
from tests.daemon.backlog import deployment, model
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import DaemonProcess, read_status, wait_for

GATED_SERVER = (
    "import os, sys, time\nwhile not os.path.exists(sys.argv[2]):\n    time.sleep(0.05)\n"
)
STATUS = "status/deployments/tiny.yaml"


def _specs(script: Path, gate: Path, model_dir: Path) -> dict[str, str]:
    template = f"""\
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {{name: gated-server}}
spec:
  modality: embedding
  runtime:
    command: ["{sys.executable}", "{script}", "{{port}}", "{gate}"]
    health_path: /health
"""
    documents = [
        template,
        model("tiny", uri=str(model_dir)),
        deployment("tiny", model="tiny", template="gated-server"),
    ]
    return {"tiny.yaml": "---\n".join(documents)}


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    # the daemon leaves local endpoints serving when it stops: stop what the test made
    for identity, _ in procs.marked_with_prefix(f"{state / 'local'}::"):
        asyncio.run(procs.stop_group(identity, grace_s=5))


def _workers(state_dir: Path) -> list[procs.ProcessIdentity]:
    marker = f"{state_dir / 'local'}::tiny::worker::"
    return sorted(identity for identity, _ in procs.marked_with_prefix(marker))


@dataclasses.dataclass
class Killed:
    """A daemon killed with -9 while its deploy chain waited on the gated server."""

    execution: str
    worker: procs.ProcessIdentity
    gate: Path


def _kill_mid_deploy(
    start_daemon: StartDaemon, remote: GitRemote, tmp_path: Path, state_dir: Path
) -> Killed:
    script, gate, model_dir = tmp_path / "gated.py", tmp_path / "gate", tmp_path / "model"
    script.write_text(GATED_SERVER + SERVER)
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    daemon = start_daemon(resync="1h")
    remote.writer.commit_and_push(_specs(script, gate, model_dir), "a gated endpoint")

    def deploying() -> str | None:
        runs = daemon.executions("Deployment", "tiny")
        if not runs or not _workers(state_dir):
            return None
        steps = daemon.steps(runs[0]["id"])
        return runs[0]["id"] if any(s["status"] == "running" for s in steps) else None

    execution = wait_for("the deploy chain waiting on the server", deploying, timeout=90)
    [worker] = _workers(state_dir)
    daemon.kill9()
    return Killed(execution, worker, gate)


def _restart(start_daemon: StartDaemon) -> DaemonProcess:
    restarted = start_daemon(resync="1h")
    wait_for(
        "the restarted daemon up",
        lambda: "resumed interrupted chains" in restarted.log_text(),
        timeout=60,
    )
    return restarted


def _ready(remote: GitRemote) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        "Deployment/tiny Ready",
        lambda: (s := read_status(remote.path, STATUS)) and s.get("phase") == "Ready" and s,
        timeout=90,
    )
    return status


def test_a_chain_interrupted_by_kill_9_resumes_against_the_repo_not_an_empty_state(
    state_dir: Path, start_daemon: StartDaemon, remote: GitRemote, tmp_path: Path
) -> None:
    # state_dir comes first: its clean-up runs after the daemons are stopped
    killed = _kill_mid_deploy(start_daemon, remote, tmp_path, state_dir)
    restarted = _restart(start_daemon)
    killed.gate.write_text("open")
    status = _ready(remote)
    runs = restarted.executions("Deployment", "tiny")
    assert [(r["id"], r["status"]) for r in runs] == [(killed.execution, "succeeded")], runs
    assert _workers(state_dir) == [killed.worker]  # adopted, never stopped and started again
    assert "no driver" not in restarted.log_text()
    assert status["ready_workers"] == 1


def test_a_repo_that_fails_validation_at_the_restart_deletes_nothing(
    state_dir: Path, start_daemon: StartDaemon, remote: GitRemote, tmp_path: Path
) -> None:
    """No revision validates at the restart: the resumed chain ends as it may, but nothing
    is planned against the empty desired state (no undeploy); the fix deploys as before."""
    killed = _kill_mid_deploy(start_daemon, remote, tmp_path, state_dir)
    remote.writer.commit_and_push({"broken.yaml": "kind: [unclosed\n"}, "a broken push")
    restarted = _restart(start_daemon)
    killed.gate.write_text("open")
    wait_for(
        "the resumed chain ended",
        lambda: all(
            r["status"] not in ("pending", "running")
            for r in restarted.executions("Deployment", "tiny")
        ),
        timeout=90,
    )
    runs = restarted.executions("Deployment", "tiny")
    assert [r["id"] for r in runs] == [killed.execution], [dict(r) for r in runs]
    assert _workers(state_dir) == [killed.worker]
    remote.writer.commit_and_push({"broken.yaml": None}, "the fix")
    _ready(remote)
    assert _workers(state_dir) == [killed.worker]
    assert all(r["action"] != "delete" for r in restarted.executions("Deployment", "tiny"))
