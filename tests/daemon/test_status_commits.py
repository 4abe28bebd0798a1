"""Status commits are coalesced: a quick run makes at most two (started, finished).

Beside a backlog (Models that stall, Deployments waiting on them), a push of a Workflow
whose three steps take about a second in all is followed on the status branch: at most
two commits touch its status file between the push and its Ready status at that
revision, and each commit message names each object it moved and its phase, once.
"""

from __future__ import annotations

from tests.conftest import GitRemote, git
from tests.daemon.backlog import backlog_files
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import STATUS_BRANCH, read_status, wait_for

STATUS_FILE = "status/workflows/quick.yaml"


def _status_tip(remote: GitRemote) -> str:
    return git(remote.path, "rev-parse", STATUS_BRANCH)


def test_a_quick_run_makes_at_most_two_status_commits(
    start_daemon: StartDaemon, remote: GitRemote
) -> None:
    remote.writer.commit_and_push(backlog_files(models=300, deployments=1000), "a backlog")
    head = remote.tip()
    start_daemon()
    wait_for(
        "the backlog taken in",
        lambda: (
            (s := read_status(remote.path, "status/source.yaml"))
            and s.get("last_applied_revision") == head
            and read_status(remote.path, "status/deployments/backlog-d999.yaml")
        ),
        timeout=180,
    )
    before = _status_tip(remote)
    pushed = remote.writer.commit_and_push(
        {"quick.yaml": workflow("quick", delay="330ms", nodes=3)}, "a one-second workflow"
    )
    done = wait_for(
        "the workflow Ready at the push",
        lambda: (
            (s := read_status(remote.path, STATUS_FILE))
            and s.get("observed_revision") == pushed
            and s.get("phase") == "Ready"
            and s
        ),
        timeout=60,
        every=0.05,
    )
    assert done["last_executions"][0]["status"] == "succeeded"
    after = _status_tip(remote)
    commits = git(
        remote.path, "log", "--format=%H", f"{before}..{after}", "--", STATUS_FILE
    ).split()
    assert 1 <= len(commits) <= 2, commits
    for commit in commits:
        message = git(remote.path, "log", "-1", "--format=%B", commit)
        named = [line for line in message.splitlines() if "Workflow/quick" in line]
        assert len(named) == 1, message  # the object and its phase, once
    last = git(remote.path, "log", "-1", "--format=%B", commits[0])
    assert "Workflow/quick: Ready" in last, last
