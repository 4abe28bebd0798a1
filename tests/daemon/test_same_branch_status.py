"""Status in a status/ folder of the watched branch: the daemon ignores its own commits.

"Nothing happened" is shown by what did happen: the daemon ran several cycles after its
own status commit reached the branch (one STATUS= per cycle on the notify socket), none of
them planned a revision made of status only, and a real spec push afterwards is planned
and run, so the daemon was listening all along.
"""

from __future__ import annotations

import subprocess
from typing import Any

from tests.conftest import GitRemote, WorkClone, git
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import DaemonProcess, NotifySocket, read_status, wait_for


def _cycles(notify: NotifySocket) -> int:
    """Cycles finished so far: each one sends a STATUS= line (the first with READY=1)."""
    return sum(any(line.startswith("STATUS=") for line in m.splitlines()) for m in notify.drain())


def _wait_cycles(notify: NotifySocket, count: int) -> None:
    start = _cycles(notify)
    wait_for(f"{count} more cycles", lambda: _cycles(notify) >= start + count, every=0.05)


def _planned(daemon: DaemonProcess) -> list[str]:
    return [str(r.get("revision")) for r in daemon.records("revision loaded")]


def _push_spec(writer: WorkClone, files: dict[str, Any], message: str) -> str:
    """Commit a spec change on top of the daemon's status commits, retrying a lost race."""
    for _ in range(30):
        writer.pull()
        writer.write(files)
        sha = writer.commit(message)
        pushed = subprocess.run(
            ["git", "push", "--quiet", "origin", "HEAD:refs/heads/main"],
            cwd=writer.path,
            capture_output=True,
            check=False,
        )
        if pushed.returncode == 0:
            return sha
    raise AssertionError("the spec push kept losing to the daemon's status commits")


def _status(remote: GitRemote, path: str) -> dict[str, Any] | None:
    return read_status(remote.path, f"status/{path}", branch="main")


def test_own_status_commits_trigger_nothing(
    remote: GitRemote, start_daemon: StartDaemon, notify_socket: NotifySocket
) -> None:
    spec_head = remote.tip("main")
    daemon = start_daemon(status_branch="main", status_path="status/", notify=notify_socket)
    wait_for(
        "status on main",
        lambda: (
            (s := _status(remote, "source.yaml")) and s.get("last_applied_revision") == spec_head
        ),
    )
    wait_for(
        "workflow done",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["phase"] == "Ready",
    )
    own_commit = remote.tip("main")
    assert own_commit != spec_head  # the daemon committed status on the watched branch
    assert git(remote.path, "diff", "--name-only", spec_head, own_commit).split() != []
    assert all(
        p.startswith("status/")
        for p in git(remote.path, "diff", "--name-only", spec_head, own_commit).split()
    )

    _wait_cycles(notify_socket, 3)  # each fetched the branch holding our status commit

    assert len(daemon.executions("Workflow", "smoke")) == 1
    assert set(_planned(daemon)) == {spec_head}  # no sync took in a status-only revision
    source = _status(remote, "source.yaml")
    assert source is not None and source["last_seen_revision"] == spec_head

    # The daemon still reacts to a spec change pushed on top of its status commits.
    second = _push_spec(remote.writer, {"workflows.yaml": workflow(round_=2)}, "round 2")
    wait_for(
        "the spec push ran",
        lambda: (
            (s := _status(remote, "workflows/smoke.yaml"))
            and s["observed_revision"] == second
            and s["phase"] == "Ready"
        ),
    )
    _wait_cycles(notify_socket, 3)
    assert len(daemon.executions("Workflow", "smoke")) == 2
    assert set(_planned(daemon)) == {spec_head, second}
    source = _status(remote, "source.yaml")
    assert source is not None and source["last_seen_revision"] == second
