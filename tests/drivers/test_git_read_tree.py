"""read_tree_at: the spec files of a local repository at a revision, for `plan --base REV`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers.git_source import GitSourceError, RevisionNotFound, read_tree_at

if TYPE_CHECKING:
    from conftest import MakeGitRemote


def test_reads_the_specs_of_an_older_revision_not_the_work_tree(
    make_git_remote: MakeGitRemote,
) -> None:
    remote = make_git_remote(
        files={"models/a.yaml": "kind: Model\n", "status/models/a.yaml": "phase: Ready\n"}
    )
    clone = remote.writer
    base = clone.head()
    clone.commit_and_push({"models/a.yaml": "kind: Model\n# v2\n", "models/b.yml": "kind: Model\n"})
    clone.write({"models/c.yaml": "uncommitted\n"})

    at_base = read_tree_at(clone.path, base)
    at_head = read_tree_at(clone.path, "HEAD")

    assert [(b.path, b.data) for b in at_base] == [("models/a.yaml", b"kind: Model\n")]
    assert [b.path for b in at_head] == ["models/a.yaml", "models/b.yml"]


def test_subdir_scopes_the_rules_and_the_returned_paths(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(
        files={
            "deploy/state/models/a.yaml": "kind: Model\n",
            "deploy/state/status/models/a.yaml": "phase: Ready\n",
            "deploy/state/.ci/lint.yaml": "x: 1\n",
            "deploy/other.yaml": "kind: Cluster\n",
        }
    )

    blobs = read_tree_at(remote.writer.path, "main", subdir="deploy/state/")

    assert [b.path for b in blobs] == ["models/a.yaml"]


def test_a_bare_repository_can_be_read_too(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})

    assert [b.data for b in read_tree_at(remote.path, "main")] == [b"kind: Model\n"]


def test_an_unknown_revision_says_so(make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})

    with pytest.raises(RevisionNotFound, match="'origin/nope' is not a commit"):
        read_tree_at(remote.writer.path, "origin/nope")


def test_a_folder_that_is_not_a_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="is not a git repository"):
        read_tree_at(tmp_path, "HEAD")
