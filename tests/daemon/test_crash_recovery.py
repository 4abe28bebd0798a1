"""kill -9 at several points of a running chain, then a restart: nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import read_status, wait_for

NODES = 4


def _steps_done(daemon, execution_id: str) -> int:
    return sum(1 for s in daemon.steps(execution_id) if s["status"] == "done")


@pytest.mark.parametrize("kill_after_done", [0, 1, 3])
def test_kill_9_mid_chain_then_restart_resumes_without_loss_or_doubling(
    remote: GitRemote, start_daemon: StartDaemon, kill_after_done: int
) -> None:
    head = remote.writer.commit_and_push(
        {"workflows.yaml": workflow(delay="400ms", nodes=NODES, round_=7)}, "slow chain"
    )
    daemon = start_daemon()
    execution = wait_for("execution", lambda: daemon.executions("Workflow", "smoke"))[0]["id"]
    wait_for(
        f"{kill_after_done} steps done and the next running",
        lambda: (
            _steps_done(daemon, execution) == kill_after_done
            and any(s["status"] == "running" for s in daemon.steps(execution))
        ),
        every=0.02,
    )
    before = {s["node_id"]: (s["status"], s["finished_at"]) for s in daemon.steps(execution)}
    daemon.kill9()

    restarted = start_daemon()
    status = wait_for(
        "workflow finished after restart",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml"))
            and s["observed_revision"] == head
            and s["phase"] == "Ready"
            and s
        ),
        timeout=30,
    )
    executions = restarted.executions("Workflow", "smoke")
    assert [e["id"] for e in executions] == [execution]  # resumed, not started again
    assert executions[0]["status"] == "succeeded"
    steps = restarted.steps(execution)
    assert [s["status"] for s in steps] == ["done"] * NODES
    for step in steps:
        old_status, old_finished = before[step["node_id"]]
        if old_status == "done":  # finished before the kill: kept as it was, not run again
            assert step["finished_at"] == old_finished
            assert step["attempts"] == 1
    assert status["last_executions"][0]["id"] == execution
