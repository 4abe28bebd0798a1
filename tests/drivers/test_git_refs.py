"""Branch tips read from ref files agree with ``git rev-parse``, or say they cannot tell."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers.git_refs import GitDirError, find_git_dirs, local_repo_path, read_branch_tip
from tests.conftest import git

if TYPE_CHECKING:
    from conftest import MakeGitRemote


def test_loose_then_packed_then_gone_as_git_reads_them(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    loose = read_branch_tip(remote.path, "main")
    assert loose is not None
    assert loose == git(remote.path, "rev-parse", "refs/heads/main")

    git(remote.path, "pack-refs", "--all")
    assert not (remote.path / "refs" / "heads" / "main").exists()
    assert read_branch_tip(remote.path, "main") == loose

    newer = remote.writer.commit_and_push({"b.yaml": "kind: Model\n"})
    assert read_branch_tip(remote.path, "main") == newer  # the loose ref wins over packed

    git(remote.path, "update-ref", "-d", "refs/heads/main")
    assert read_branch_tip(remote.path, "main") is None
    assert read_branch_tip(remote.path, "no-such-branch") is None


def test_a_branch_in_a_folder_of_refs(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    git(remote.writer.path, "push", "--quiet", "origin", "HEAD:refs/heads/reconciler/status")
    loose = git(remote.path, "rev-parse", "refs/heads/reconciler/status")
    assert read_branch_tip(remote.path, "reconciler/status") == loose
    git(remote.path, "pack-refs", "--all")
    assert read_branch_tip(remote.path, "reconciler/status") == loose
    assert read_branch_tip(remote.path, "reconciler") is None  # a folder of refs, not a ref
    assert read_branch_tip(remote.path, "no/such/branch") is None


def test_a_work_tree_and_its_linked_worktree_read_the_shared_refs(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    clone = remote.writer.path
    head = git(clone, "rev-parse", "HEAD")
    assert read_branch_tip(clone, "main") == head

    git(clone, "worktree", "add", "--quiet", "-b", "side", str(tmp_path / "side"))
    assert read_branch_tip(tmp_path / "side", "side") == head
    assert read_branch_tip(tmp_path / "side", "main") == head
    assert find_git_dirs(tmp_path / "side")[-1] == (clone / ".git").resolve()


def test_what_it_cannot_tell_is_none(make_git_remote: MakeGitRemote, tmp_path: Path) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    git(remote.path, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    assert read_branch_tip(remote.path, "alias") is None  # git would follow it; we fetch

    (remote.path / "refs" / "heads" / "junk").write_text("not a sha\n")
    assert read_branch_tip(remote.path, "junk") is None

    assert read_branch_tip(tmp_path / "missing", "main") is None
    (tmp_path / "plain").mkdir()
    assert read_branch_tip(tmp_path / "plain", "main") is None
    with pytest.raises(GitDirError, match="not a git repository"):
        find_git_dirs(tmp_path / "plain")

    (remote.path / "reftable").mkdir()  # refs kept in reftable files: not read here
    assert read_branch_tip(remote.path, "main") is None


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/srv/state.git", "/srv/state.git"),
        ("file:///srv/state.git", "/srv/state.git"),
        ("/srv/with:colon.git", "/srv/with:colon.git"),
        ("https://example.com/state.git", None),
        ("ssh://git@example.com/state.git", None),
        ("git@example.com:team/state.git", None),
        ("example.com:state.git", None),
        ("relative/state.git", None),
        ("", None),
    ],
)
def test_local_repo_path_is_what_git_reads_as_a_local_absolute_path(
    url: str, path: str | None
) -> None:
    assert local_repo_path(url) == (Path(path) if path else None)
