"""StatusPublisher: one commit per batch, no work tree, and races with other writers survived."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers.git_source import (
    GitPushRejected,
    GitSource,
    RemoteUnavailable,
)
from reconciler.drivers.git_status import GitIdentity, StatusBranchLost, StatusPublisher

if TYPE_CHECKING:
    from conftest import GitRemote, MakeGitRemote

STATUS = "reconciler/status"


def git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, check=True, text=True
    ).stdout.strip()


def publisher(remote: GitRemote, tmp_path: Path, **options: object) -> StatusPublisher:
    return StatusPublisher(
        remote.url,
        workdir=tmp_path / "status-store",
        author=GitIdentity("Reconciler Bot", "bot@example.test"),
        backoff_s=0,
        **options,  # type: ignore[arg-type]
    )


def test_first_batch_creates_the_status_branch_as_an_orphan(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"models/a.yaml": "kind: Model\n"})
    main_before = remote.tip()

    sha = publisher(remote, tmp_path).publish(
        {"models/a.yaml": b"phase: Ready\n", "source.yaml": b"last_seen: x\n"},
        summary="Status for abc123",
    )

    assert sha is not None and remote.tip(STATUS) == sha
    assert remote.paths(STATUS) == {"models/a.yaml", "source.yaml"}
    assert remote.read("models/a.yaml", branch=STATUS) == b"phase: Ready\n"
    assert git_out(remote.path, "rev-list", "--parents", "-n1", sha) == sha  # no parent
    assert remote.tip() == main_before
    assert not (tmp_path / "status-store" / "index").exists()  # built in a throw-away index
    message = git_out(remote.path, "log", "-1", "--format=%B", sha)
    assert message.startswith("Status for abc123 (2 files)")
    assert "added models/a.yaml" in message
    assert git_out(remote.path, "log", "-1", "--format=%an <%ae>|%cn", sha) == (
        "Reconciler Bot <bot@example.test>|Reconciler Bot"
    )


def test_a_batch_that_changes_nothing_makes_no_commit(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    status = publisher(remote, tmp_path)
    first = status.publish({"models/a.yaml": b"phase: Ready\n"})

    assert status.publish({"models/a.yaml": b"phase: Ready\n"}) is None
    assert status.publish({"models/never-existed.yaml": None}) is None
    assert status.publish({}) is None
    assert remote.tip(STATUS) == first


def test_deleting_on_a_missing_branch_creates_nothing(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})

    assert publisher(remote, tmp_path).publish({"models/gone.yaml": None}) is None
    assert remote.tip(STATUS) is None


def test_updates_and_deletions_land_in_one_commit_on_the_previous_tip(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    status = publisher(remote, tmp_path)
    first = status.publish({"models/a.yaml": b"1", "models/b.yaml": b"1", "models/c.yaml": b"1"})

    second = status.publish({"models/a.yaml": b"2", "models/b.yaml": None})

    assert second is not None
    assert git_out(remote.path, "rev-parse", f"{second}^") == first
    assert remote.paths(STATUS) == {"models/a.yaml", "models/c.yaml"}
    assert remote.read("models/a.yaml", branch=STATUS) == b"2"
    body = git_out(remote.path, "log", "-1", "--format=%b", second)
    assert body.splitlines() == ["updated models/a.yaml", "deleted models/b.yaml"]


def test_another_writer_pushing_mid_publish_is_rebased_onto_and_both_writes_survive(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    attempts: list[int] = []
    other_commits: list[str] = []

    def other_writer_pushes_first(attempt: int) -> None:
        attempts.append(attempt)
        if attempt == 1:
            other = remote.clone("other", branch=STATUS)
            other_commits.append(
                other.commit_and_push(
                    {"models/theirs.yaml": "phase: Ready\n", "models/shared.yaml": "theirs\n"}
                )
            )

    status = publisher(remote, tmp_path, before_push=other_writer_pushes_first)
    publisher(remote, tmp_path / "seed").publish({"models/seed.yaml": b"seed\n"})

    sha = status.publish({"models/ours.yaml": b"phase: Failed\n", "models/shared.yaml": b"ours\n"})

    assert attempts == [1, 2]
    assert sha == remote.tip(STATUS)
    assert git_out(remote.path, "rev-parse", f"{sha}^") == other_commits[0]
    assert remote.paths(STATUS) == {
        "models/seed.yaml",
        "models/theirs.yaml",
        "models/ours.yaml",
        "models/shared.yaml",
    }
    assert remote.read("models/shared.yaml", branch=STATUS) == b"ours\n"


def test_a_writer_that_keeps_winning_makes_the_publisher_give_up_after_the_bound(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    publisher(remote, tmp_path / "seed").publish({"seed.yaml": b"seed\n"})
    other = remote.clone("other", branch=STATUS)

    def other_writer_always_wins(attempt: int) -> None:
        other.commit_and_push({f"theirs-{attempt}.yaml": "x\n"})

    status = publisher(remote, tmp_path, max_attempts=2, before_push=other_writer_always_wins)

    with pytest.raises(GitPushRejected, match="after 2 attempts"):
        status.publish({"ours.yaml": b"y\n"})
    assert "ours.yaml" not in remote.paths(STATUS)


def test_same_branch_mode_commits_only_under_the_prefix_on_the_watched_branch(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"models/a.yaml": "kind: Model\n", "status/old.yaml": "x\n"})
    source = GitSource(remote.url, "main", tmp_path / "source")
    seen = source.sync()
    spec_push: list[str] = []

    def person_pushes_a_spec(attempt: int) -> None:
        if attempt == 1:
            spec_push.append(remote.writer.commit_and_push({"models/b.yaml": "kind: Model\n"}))

    status = StatusPublisher(
        remote.url,
        workdir=tmp_path / "status-store",
        branch="main",
        path_prefix="status/",
        backoff_s=0,
        before_push=person_pushes_a_spec,
    )

    sha = status.publish({"models/a.yaml": b"phase: Ready\n", "old.yaml": None})

    assert sha is not None and remote.tip() == sha
    assert git_out(remote.path, "rev-parse", f"{sha}^") == spec_push[0]
    assert remote.paths() == {"models/a.yaml", "models/b.yaml", "status/models/a.yaml"}
    new_head = source.sync()
    assert source.is_status_only_change(spec_push[0], new_head, prefix="status/")
    assert not source.is_status_only_change(seen, new_head, prefix="status/")


def test_a_push_refused_by_a_hook_is_rejected_at_once_with_its_reason(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'status pushes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    attempts: list[int] = []
    status = publisher(remote, tmp_path, before_push=attempts.append)

    with pytest.raises(GitPushRejected, match="refused the status push") as caught:
        status.publish({"a.yaml": b"y"})

    assert attempts == [1]
    assert "status pushes are frozen" in str(caught.value)


def test_an_unreachable_remote_is_unavailable_and_hides_credentials(
    tmp_path: Path, git_env: None
) -> None:
    status = StatusPublisher(
        "http://bot:hunter2-secret@127.0.0.1:9/state.git",
        workdir=tmp_path / "store",
        timeout_s=20,
    )

    with pytest.raises(RemoteUnavailable) as caught:
        status.publish({"a.yaml": b"y"})

    assert "hunter2-secret" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)


def test_long_batches_list_the_first_changes_and_count_the_rest(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})

    sha = publisher(remote, tmp_path).publish({f"m/{i:03}.yaml": b"x" for i in range(60)})

    assert sha is not None
    body = git_out(remote.path, "log", "-1", "--format=%B", sha)
    assert body.startswith("Update status (60 files)")
    assert body.splitlines()[-1] == "... and 10 more"


@pytest.mark.parametrize("bad", ["", "/abs.yaml", "../up.yaml", "a//b.yaml", "a/./b.yaml"])
def test_paths_must_be_plain_relative_paths(
    make_git_remote: MakeGitRemote, tmp_path: Path, bad: str
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})

    with pytest.raises(ValueError, match="plain relative path"):
        publisher(remote, tmp_path).publish({bad: b"x"})


def test_a_writer_between_two_batches_fails_the_lease_and_the_next_is_built_on_it(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """The second batch is pushed with a lease on our first commit without reading the
    branch; another writer's commit in between fails that lease, and the batch is then
    built on top of theirs."""
    remote = make_git_remote(files={"a.yaml": "x"})
    attempts: list[int] = []
    status = publisher(remote, tmp_path, before_push=attempts.append)
    first = status.publish({"models/ours.yaml": b"1\n"})
    other = remote.clone("other", branch=STATUS)
    theirs = other.commit_and_push({"models/theirs.yaml": "phase: Ready\n"})
    attempts.clear()

    second = status.publish({"models/ours.yaml": b"2\n"})

    assert attempts == [1, 2]
    assert second == remote.tip(STATUS)
    assert git_out(remote.path, "rev-parse", f"{second}^") == theirs
    assert git_out(remote.path, "rev-parse", f"{theirs}^") == first
    assert remote.read("models/theirs.yaml", branch=STATUS) == b"phase: Ready\n"
    assert remote.read("models/ours.yaml", branch=STATUS) == b"2\n"

    attempts.clear()
    third = status.publish({"models/ours.yaml": b"3\n"})
    assert attempts == [1]
    assert git_out(remote.path, "rev-parse", f"{third}^") == second


@pytest.mark.parametrize("how", ["deleted", "rewound"])
def test_a_branch_lost_between_two_batches_is_noticed_despite_the_lease(
    make_git_remote: MakeGitRemote, tmp_path: Path, how: str
) -> None:
    remote = make_git_remote(files={"a.yaml": "x"})
    status = publisher(remote, tmp_path)
    first = status.publish({"models/a.yaml": b"1\n"})
    status.publish({"models/a.yaml": b"2\n"})
    if how == "deleted":
        git_out(remote.path, "update-ref", "-d", f"refs/heads/{STATUS}")
    else:
        git_out(remote.path, "update-ref", f"refs/heads/{STATUS}", first)

    with pytest.raises(StatusBranchLost, match="every status file is written again"):
        status.publish({"models/a.yaml": b"3\n"})
    rebuilt = status.publish({"models/a.yaml": b"3\n"}, rebuild=True)
    assert rebuilt == remote.tip(STATUS)
    assert remote.read("models/a.yaml", branch=STATUS) == b"3\n"
