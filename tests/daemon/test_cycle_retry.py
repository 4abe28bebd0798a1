"""A cycle that fails is retried: the state store locked by another process for a while.

Another process (a backup, an operator's sqlite3 shell) holds the write lock on
``state.db`` longer than the daemon's busy timeout: the cycle that must record a new
revision fails, the daemon says so and stays up, and once the lock is gone the retry
applies the revision.
"""

from __future__ import annotations

import sqlite3

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import read_status, wait_for


def test_a_failed_cycle_is_retried_once_the_fault_is_gone(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    head = remote.tip("main")
    # No poll tick to hide behind: the push is noticed by the local ref watch, and after the
    # failure only the daemon's own retry runs a cycle again.
    daemon = start_daemon(poll="1h")
    wait_for(
        "first run done",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml"))
            and s["observed_revision"] == head
            and s["phase"] == "Ready"
        ),
    )
    wait_for("store migrated", daemon.store_ready)
    blocker = sqlite3.connect(daemon.state_dir / "state.db", timeout=30, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held until we see the failure
        pushed = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=2)}, "r2")
        failed = wait_for(
            "the cycle failure reported",
            lambda: daemon.records("reconcile cycle failed; retrying"),
            timeout=60,
        )
        assert "locked" in str(failed[0])
        assert daemon.alive()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    run = wait_for(
        "the retry ran the push",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml"))
            and s["observed_revision"] == pushed
            and s["phase"] == "Ready"
            and s
        ),
        timeout=60,
    )
    assert [e["revision"] for e in run["last_executions"]] == [pushed, head]
    assert len(daemon.executions("Workflow", "smoke")) == 2
