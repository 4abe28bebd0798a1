"""GitSource: a local bare copy of the watched branch, listed and read without a work tree."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers import git_source
from reconciler.drivers.git_source import (
    BranchNotFound,
    GitSource,
    GitSourceError,
    RemoteUnavailable,
    RevisionNotFound,
)
from tests.conftest import git

if TYPE_CHECKING:
    from conftest import MakeGitRemote

SPECS = {
    "clusters/gpu-a.yaml": "kind: Cluster\n",
    "models/llama.yml": "kind: Model\n",
    "README.md": "not a spec\n",
    "status/models/llama.yaml": "phase: Ready\n",
    ".github/workflows/ci.yaml": "on: push\n",
    "deployments/.drafts/wip.yaml": "kind: Deployment\n",
    "deployments/chat.yaml": "kind: Deployment\n",
}


def test_first_sync_creates_a_bare_copy_and_returns_the_branch_head(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")

    head = source.sync()

    assert head == remote.tip()
    assert source.local_head() == head
    assert (tmp_path / "copy" / "HEAD").is_file()
    assert not (tmp_path / "copy" / "clusters").exists()  # no work tree


def test_spec_listing_keeps_yaml_under_roots_and_skips_status_and_dot_folders(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()

    everything = source.list_spec_blobs(head)
    only_models = source.list_spec_blobs(head, roots=("./models/",))

    assert [e.path for e in everything] == [
        "clusters/gpu-a.yaml",
        "deployments/chat.yaml",
        "models/llama.yml",
    ]
    assert [e.path for e in only_models] == ["models/llama.yml"]
    assert everything[0].size == len("kind: Cluster\n")


def test_read_blobs_returns_each_requested_blob_by_sha(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={**SPECS, "copy.yaml": "kind: Cluster\n"})
    source = GitSource(remote.url, "main", tmp_path / "copy")
    entries = source.list_spec_blobs(source.sync())

    blobs = source.read_blobs(e.sha for e in entries)

    assert {e.path: blobs[e.sha] for e in entries} == {
        "clusters/gpu-a.yaml": b"kind: Cluster\n",
        "copy.yaml": b"kind: Cluster\n",
        "deployments/chat.yaml": b"kind: Deployment\n",
        "models/llama.yml": b"kind: Model\n",
    }
    assert source.read_blobs([]) == {}


def test_read_blobs_names_objects_missing_from_the_local_copy(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    source.sync()

    with pytest.raises(RevisionNotFound, match="1 object"):
        source.read_blobs(["0123456789abcdef0123456789abcdef01234567"])


def test_a_later_push_shows_up_as_changed_paths_and_commit_info(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    first = source.sync()
    remote.writer.commit_and_push(
        {"models/llama.yml": "kind: Model\nspec: {}\n", "clusters/gpu-a.yaml": None},
        "Resize llama\n\nMore detail.",
    )

    second = source.sync()
    info = source.commit_info(second)

    assert second != first
    assert source.changed_paths(first, second) == {"models/llama.yml", "clusters/gpu-a.yaml"}
    assert [e.path for e in source.list_spec_blobs(second)] == [
        "deployments/chat.yaml",
        "models/llama.yml",
    ]
    assert (info.sha, info.summary, info.author_name) == (second, "Resize llama", "Test Writer")
    assert info.message == "Resize llama\n\nMore detail."
    assert info.authored_at.tzinfo is not None


def test_status_only_changes_are_told_apart_from_spec_changes(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    base = source.sync()
    status_commit = remote.writer.commit_and_push({"status/models/llama.yaml": "phase: Failed\n"})
    source.sync()
    spec_commit = remote.writer.commit_and_push({"models/llama.yml": "kind: Model\n# edit\n"})
    source.sync()

    assert source.is_status_only_change(base, status_commit, prefix="status/")
    assert not source.is_status_only_change(status_commit, spec_commit, prefix="status/")
    assert source.is_status_only_change(base, base)


def test_unreachable_remote_keeps_the_local_copy_and_recovers_when_back(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()
    moved_away = tmp_path / "elsewhere.git"
    shutil.move(remote.path, moved_away)

    with pytest.raises(RemoteUnavailable, match="last fetched revision stays in use"):
        source.sync()
    still_listed = source.list_spec_blobs(head)
    assert source.local_head() == head
    assert len(still_listed) == 3

    shutil.move(moved_away, remote.path)
    newer = remote.writer.commit_and_push({"models/new.yaml": "kind: Model\n"})
    assert source.sync() == newer


def test_remote_missing_at_first_sync_is_unavailable_not_a_crash(
    tmp_path: Path, git_env: None
) -> None:
    source = GitSource(str(tmp_path / "nothing-here.git"), "main", tmp_path / "copy")

    with pytest.raises(RemoteUnavailable):
        source.sync()
    assert source.local_head() is None


def test_missing_branch_is_reported_as_branch_not_found(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "production", tmp_path / "copy")

    with pytest.raises(BranchNotFound, match="no branch 'production'"):
        source.sync()


def test_credentials_in_the_url_never_reach_the_error_text(tmp_path: Path, git_env: None) -> None:
    url = "http://deploy-bot:s3cr3t-t0ken@127.0.0.1:9/state.git"
    source = GitSource(url, "main", tmp_path / "copy", fetch_timeout_s=20)

    with pytest.raises(RemoteUnavailable) as caught:
        source.sync()

    assert "s3cr3t-t0ken" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)
    assert "s3cr3t-t0ken" not in source.display_url


def test_reading_before_any_sync_says_to_sync_first(tmp_path: Path, git_env: None) -> None:
    source = GitSource("/nowhere", "main", tmp_path / "copy")

    with pytest.raises(GitSourceError, match="call sync"):
        source.list_spec_blobs("main")


def test_a_workdir_that_is_not_a_repository_is_refused(tmp_path: Path, git_env: None) -> None:
    workdir = tmp_path / "copy"
    workdir.mkdir()
    (workdir / "stray.txt").write_text("x")
    source = GitSource("/nowhere", "main", workdir)

    with pytest.raises(GitSourceError, match="not a git repository"):
        source.sync()


def test_unknown_revisions_raise_revision_not_found(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()

    with pytest.raises(RevisionNotFound):
        source.list_spec_blobs("no-such-branch")
    with pytest.raises(RevisionNotFound):
        source.changed_paths("0" * 40, head)
    with pytest.raises(RevisionNotFound, match="not a valid revision"):
        source.commit_info("--all")


def test_a_kill_during_git_init_leaves_no_half_made_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon killed while ``git init`` writes (here: a signal after HEAD and objects/
    exist) must find its folder usable at the next start, not refuse it for good."""
    workdir = tmp_path / "state" / "status"
    real_init = git_source.git.Repo.init

    def killed_midway(path: Path, **_: object) -> None:
        (Path(path) / "objects").mkdir()
        (Path(path) / "HEAD").write_text("ref: refs/heads/main\n")
        raise KeyboardInterrupt  # what a SIGINT mid-init raises

    monkeypatch.setattr(git_source.git.Repo, "init", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        git_source.open_or_init_bare(workdir, create=True)
    assert not workdir.exists() or not any(workdir.iterdir())

    # A SIGKILL runs no cleanup: its half-made folder is left beside the workdir.
    leftover = workdir.parent / ".status.init-k9x2"
    (leftover / "objects").mkdir(parents=True)
    monkeypatch.setattr(git_source.git.Repo, "init", real_init)

    repo = git_source.open_or_init_bare(workdir, create=True)

    assert repo is not None and repo.bare
    assert not leftover.exists()
    assert sorted(p.name for p in workdir.parent.iterdir()) == ["status"]


@pytest.fixture
def git_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Every git command line started from here on, through a logging ``git`` on PATH
    (GitPython looks git up on PATH at each call)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "git-calls.log"
    real = shutil.which("git")
    assert real is not None
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    return lambda: log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("scheme", ["", "file://"], ids=["path", "file-url"])
def test_a_local_remote_whose_branch_did_not_move_is_not_fetched_again(
    make_git_remote: MakeGitRemote,
    tmp_path: Path,
    git_calls: Callable[[], list[str]],
    scheme: str,
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(f"{scheme}{remote.path}", "main", tmp_path / "copy")
    head = source.sync()
    assert any(line.startswith("fetch ") for line in git_calls())

    before = len(git_calls())
    assert source.sync() == head
    assert git_calls()[before:] == []  # read from refs/heads/main: no git at all

    git(remote.path, "pack-refs", "--all")  # the tip now lives in packed-refs
    before = len(git_calls())
    assert source.sync() == head
    assert git_calls()[before:] == []

    newer = remote.writer.commit_and_push({"models/new.yaml": "kind: Model\n"})
    before = len(git_calls())
    assert source.sync() == newer
    assert any(line.startswith("fetch ") for line in git_calls()[before:])
    assert source.local_head() == newer


def test_a_branch_deleted_after_a_fetch_is_missing_not_the_old_head(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()
    git(remote.path, "pack-refs", "--all")
    git(remote.path, "update-ref", "-d", "refs/heads/main")

    with pytest.raises(BranchNotFound, match="no branch 'main'"):
        source.sync()
    assert source.local_head() == head

    git(remote.path, "update-ref", "refs/heads/main", head)
    assert source.sync() == head


def test_a_listing_asked_again_by_commit_runs_no_git(
    make_git_remote: MakeGitRemote, tmp_path: Path, git_calls: Callable[[], list[str]]
) -> None:
    remote = make_git_remote(files=SPECS)
    source = GitSource(remote.url, "main", tmp_path / "copy")
    head = source.sync()
    first = source.list_spec_blobs(head)
    before = len(git_calls())
    assert source.list_spec_blobs(head) == first
    assert git_calls()[before:] == []
    # Other roots are another listing; a branch name is resolved every time.
    assert [e.path for e in source.list_spec_blobs(head, roots=("models",))] == ["models/llama.yml"]
    newer = remote.writer.commit_and_push({"models/llama.yml": None})
    source.sync()
    assert [e.path for e in source.list_spec_blobs("refs/remotes/origin/main")] == [
        "clusters/gpu-a.yaml",
        "deployments/chat.yaml",
    ]
    assert source.resolve("refs/remotes/origin/main") == newer
