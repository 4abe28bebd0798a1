"""The harness' ``read_status`` follows a branch that moves (its cache is keyed by commit,
so a new commit is never answered from an old read). Its branch tips come from
``reconciler.drivers.git_refs``, checked against git in tests/drivers/test_git_refs.py."""

from __future__ import annotations

from tests.conftest import MakeGitRemote, git
from tests.daemon.harness import STATUS_BRANCH, read_status


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
