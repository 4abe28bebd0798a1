"""Status in a status/ folder of the watched branch: the daemon ignores its own commits."""

from __future__ import annotations

import time

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import read_status, wait_for


def test_own_status_commits_trigger_nothing(remote: GitRemote, start_daemon: StartDaemon) -> None:
    spec_head = remote.tip("main")
    daemon = start_daemon(status_branch="main", status_path="status/")

    def source() -> dict | None:
        return read_status(remote.path, "status/source.yaml", branch="main")

    wait_for(
        "status on main", lambda: (s := source()) and s.get("last_applied_revision") == spec_head
    )
    wait_for(
        "workflow done",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml", branch="main"))
            and s["phase"] == "Succeeded"
        ),
    )
    tip = remote.tip("main")
    assert tip != spec_head  # the daemon committed status on the watched branch
    time.sleep(2.0)  # several poll intervals: no reaction to our own commits
    assert len(daemon.executions("Workflow", "smoke")) == 1
    status = source()
    assert status is not None and status["last_seen_revision"] == spec_head
    assert (
        remote.tip("main") == tip
        or read_status(remote.path, "status/source.yaml", branch="main") == status
    )
