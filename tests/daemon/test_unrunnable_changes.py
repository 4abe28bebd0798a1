"""Changes nothing can run yet are planned once per spec, not once per push.

A build without some step type (here ``k8s_job``, left out of this test's daemon: every
workflow step type has an implementation in a full build) leaves those objects
NoChainYet. The daemon keeps that verdict and leaves them out of later plans while
neither their spec nor anything they refer to moved; a change of either plans them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.steps import jobs
from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import read_status
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until

CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {{name: local, labels: {{round: "{round}"}}}}
spec: {{driver: local}}
"""

JOB = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: needs-a-job}}
spec:
  trigger: on_change
  workflows:
    provision:
      nodes:
        - id: train
          type: k8s_job
          user_inputs: {{cluster: local, command: [echo, "{tag}"]}}
"""

RUNNABLE = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: runs}}
spec:
  trigger: on_change
  user_params: {{round: {round}}}
  workflows:
    provision:
      nodes:
        - {{id: only, type: noop}}
"""


def _files(*, cluster: int = 0, tag: str = "1", runnable: int = 0) -> dict[str, str]:
    return {
        "cluster.yaml": CLUSTER.format(round=cluster),
        "job.yaml": JOB.format(tag=tag),
        "runs.yaml": RUNNABLE.format(round=runnable),
    }


async def _planned_at(running: RunningDaemon, revision: str) -> int:
    """How many changes the cycle of ``revision`` planned, once it ran."""

    def report() -> int | None:
        reconciler = running.daemon.reconciler
        assert reconciler is not None
        last = reconciler.last_loaded
        if last is None or last.revision != revision or not last.loaded:
            return None
        return last.planned + 1  # +1: a truthy value for wait_until

    return await wait_until(f"the cycle of {revision}", report) - 1


async def _published(remote: GitRemote, name: str, revision: str) -> dict[str, Any]:
    """Workflow ``name``'s status file on the status branch once it names ``revision``."""
    return await wait_until(
        f"{name} observed at {revision}",
        lambda: (s := read_status(remote.path, f"status/workflows/{name}.yaml"))
        and s.get("observed_revision") == revision
        and s,
    )


def _ready_reason(status: dict[str, Any]) -> object:
    conditions = status.get("conditions") or []
    assert isinstance(conditions, list)
    return next(c["reason"] for c in conditions if c["type"] == "Ready")


async def test_an_unrunnable_change_is_planned_again_only_when_it_or_its_referents_move(
    make_git_remote: MakeGitRemote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "register_job_steps", lambda registry, **_: None)
    remote = make_git_remote(files=_files())
    first = remote.tip()
    assert first is not None
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        status = await _published(remote, "needs-a-job", first)
        assert _ready_reason(status) == "NoChainYet"
        assert "k8s_job" in str(status)

        # Another object moves: the unrunnable job is not planned again, and keeps its
        # verdict and observed revision.
        second = remote.writer.commit_and_push(_files(runnable=1), "runs: round 1")
        planned = await _planned_at(running, second)
        await _published(remote, "runs", second)
        job = read_status(remote.path, "status/workflows/needs-a-job.yaml")
        assert job is not None
        assert job["observed_revision"] == first
        assert _ready_reason(job) == "NoChainYet"
        assert planned == 1, "only the changed workflow is planned"

        # The cluster it refers to moves: the job is planned again (still unrunnable).
        third = remote.writer.commit_and_push(_files(cluster=1, runnable=1), "cluster label")
        assert await _planned_at(running, third) >= 2

        # Its own spec moves: planned, and observed at that revision.
        fourth = remote.writer.commit_and_push(_files(cluster=1, tag="2", runnable=1), "tag")
        assert await _planned_at(running, fourth) >= 1
        assert _ready_reason(await _published(remote, "needs-a-job", fourth)) == "NoChainYet"

        # Nothing of it moves again: left out once more.
        fifth = remote.writer.commit_and_push(_files(cluster=1, tag="2", runnable=2), "round 2")
        assert await _planned_at(running, fifth) == 1
    finally:
        await running.stop()
