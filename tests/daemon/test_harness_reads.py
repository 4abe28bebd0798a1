"""The harness reads status as git would: ``branch_tip`` against ``git rev-parse`` for a
loose ref, a packed one and a missing one, and ``read_status`` follows a branch that moves
(its cache is keyed by commit, so a new commit is never answered from an old read)."""

from __future__ import annotations

from tests.conftest import MakeGitRemote, git
from tests.daemon.harness import STATUS_BRANCH, branch_tip, read_status


def test_branch_tip_agrees_with_git_for_loose_packed_and_missing_refs(
    make_git_remote: MakeGitRemote,
) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    writer = remote.writer
    git(writer.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{STATUS_BRANCH}")
    loose = git(remote.path, "rev-parse", f"refs/heads/{STATUS_BRANCH}")
    assert branch_tip(remote.path, STATUS_BRANCH) == loose

    git(remote.path, "pack-refs", "--all")
    assert not (remote.path / "refs" / "heads" / "reconciler" / "status").exists()
    assert branch_tip(remote.path, STATUS_BRANCH) == loose
    assert branch_tip(remote.path, "main") == git(remote.path, "rev-parse", "refs/heads/main")

    assert branch_tip(remote.path, "no/such/branch") is None
    assert branch_tip(remote.path, "reconciler") is None  # a folder of refs, not a ref


def test_read_status_follows_the_branch_as_it_moves(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files={"README.md": "specs\n"})
    writer = remote.writer
    assert read_status(remote.path, "models/m.yaml") is None  # no status branch yet

    writer.write({"models/m.yaml": "phase: Pending\n"})
    writer.commit("status 1")
    git(writer.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{STATUS_BRANCH}")
    assert read_status(remote.path, "models/m.yaml") == {"phase": "Pending"}
    assert read_status(remote.path, "models/other.yaml") is None

    writer.write({"models/m.yaml": "phase: Ready\n", "models/other.yaml": "phase: Failed\n"})
    writer.commit("status 2")
    git(writer.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{STATUS_BRANCH}")
    assert read_status(remote.path, "models/m.yaml") == {"phase": "Ready"}
    assert read_status(remote.path, "models/other.yaml") == {"phase": "Failed"}
