"""The remote going away and coming back, and another writer on the status branch."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from tests.conftest import GitRemote, git
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import NotifySocket, read_status, wait_for


def test_remote_disappears_then_returns_and_nothing_is_lost(
    remote: GitRemote, start_daemon: StartDaemon, notify_socket: NotifySocket
) -> None:
    daemon = start_daemon(notify=notify_socket)
    wait_for("ready", lambda: notify_socket.seen("READY=1"))
    head = remote.writer.commit_and_push(
        {"workflows.yaml": workflow(delay="700ms", nodes=3, round_=5)}, "slow run"
    )
    wait_for(
        "chain running",
        lambda: any(
            e["revision"] == head and e["status"] == "running"
            for e in daemon.executions("Workflow", "smoke")
        ),
    )
    hidden = remote.path.with_name("away.git")
    shutil.move(remote.path, hidden)
    wait_for(
        "source unavailable reported",
        lambda: any("source unavailable" in m for m in notify_socket.drain()),
        timeout=20,
    )
    wait_for(
        "chain finished while away",
        lambda: any(
            e["revision"] == head and e["status"] == "succeeded"
            for e in daemon.executions("Workflow", "smoke")
        ),
    )
    assert daemon.alive()
    shutil.move(hidden, remote.path)
    status = wait_for(
        "status pushed after return",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml"))
            and s["observed_revision"] == head
            and s["phase"] == "Ready"
            and s
        ),
        timeout=20,
    )
    assert status["last_executions"][0]["revision"] == head
    source = wait_for(
        "source ready again",
        lambda: (
            (s := read_status(remote.path, "status/source.yaml")) and s["phase"] == "Ready" and s
        ),
    )
    assert source["last_applied_revision"] == head


def _push_note(clone: Path, index: int) -> str:
    """Commit one note on the status branch and push it, rebasing until it lands."""
    name = f"notes/{index}.txt"
    (clone / "notes").mkdir(exist_ok=True)
    (clone / name).write_text(f"note {index}\n")
    git(clone, "add", name)
    git(clone, "commit", "--quiet", "-m", f"note {index}")
    for _ in range(30):
        pushed = subprocess.run(
            ["git", "push", "--quiet", "origin", "HEAD:reconciler/status"],
            cwd=clone,
            capture_output=True,
            check=False,
        )
        if pushed.returncode == 0:
            return name
        git(clone, "pull", "--quiet", "--rebase", "origin", "reconciler/status")
    raise AssertionError("the other writer never managed to push")


def test_another_writer_on_the_status_branch_keeps_both_writes(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    start_daemon()
    wait_for("status branch exists", lambda: remote.tip("reconciler/status"))
    other = remote.clone("other").path
    git(other, "fetch", "--quiet", "origin", "reconciler/status")
    git(other, "checkout", "--quiet", "-B", "reconciler/status", "FETCH_HEAD")
    written: list[str] = []
    writer = threading.Thread(target=lambda: written.extend(_push_note(other, i) for i in range(8)))
    writer.start()
    last = ""
    for round_ in range(2, 5):
        last = remote.writer.commit_and_push(
            {"workflows.yaml": workflow(round_=round_)}, f"r{round_}"
        )
    writer.join(timeout=60)
    wait_for(
        "daemon status for the last push",
        lambda: (
            (s := read_status(remote.path, "status/workflows/smoke.yaml"))
            and s["observed_revision"] == last
            and s["phase"] == "Ready"
        ),
    )
    paths = remote.paths("reconciler/status")
    assert len(written) == 8
    assert set(written) <= paths
    assert {"status/source.yaml", "status/workflows/smoke.yaml"} <= paths
