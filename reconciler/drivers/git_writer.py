"""Committing edits of the spec repo onto a branch of its remote, without a work tree.

The HTTP API turns each write into a Git commit: :meth:`GitWriter.write` fetches the tip
of a base branch into a bare object store, asks the caller for the file changes against
that tip (``edit``), builds the tree in a throw-away index (``GIT_INDEX_FILE``), commits
it with the caller's author identity, lets the caller check the resulting commit
(``check``: the whole repo validated with the new files) and pushes. A push the remote
rejects because someone else moved the branch in the meantime is rebuilt on the new tip,
edited and checked again and retried, a bounded number of times, so the other writer's
change and ours both end up on the branch. Nothing reaches the remote unless the check
passed; a failed attempt leaves only unreferenced objects in the local store.

The writer is also a read-only blob source over its store (``list_spec_blobs``,
``read_blobs``), so the caller can load the specs of the tip and of the commit it built.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

from reconciler.drivers.git_source import (
    NETWORK_ENV,
    BlobEntry,
    BranchNotFound,
    GitPushRejected,
    GitSourceError,
    RemoteUnavailable,
    check_git,
    list_spec_blobs,
    open_or_init_bare,
    push_commit,
    read_blob_batch,
    redact_credentials,
    run_git,
    what_to_check,
)
from reconciler.drivers.git_status import GitIdentity

__all__ = ["GitIdentity", "GitWriter", "NothingToCommit", "WriteResult"]

_TIP_REF_PREFIX = "refs/reconciler/writer-tip/"

Edit = Callable[[str], Mapping[str, bytes | None]]
"""Given the base tip's sha, the changes to make: {repo path: content, or None to delete}."""
Check = Callable[[str], None]
"""Given the built commit's sha, raise to stop the write before anything is pushed."""


class NothingToCommit(GitSourceError):
    """The edit leaves the tree as it is: there is nothing to commit."""


@dataclass(frozen=True)
class WriteResult:
    """The pushed commit, the branch it is on and the base tip it was built on."""

    commit: str
    branch: str
    parent: str
    attempts: int


class GitWriter:
    """Commits file changes onto branches of one remote and pushes them.

    ``workdir`` holds a bare repository used as the object store; it may be a fresh
    folder. ``before_push`` is called with the attempt number (1-based) just before each
    push. Methods block; run them in a worker thread from async code. Writes through one
    writer are serialized.
    """

    def __init__(
        self,
        remote: str | Path,
        *,
        workdir: Path,
        max_attempts: int = 5,
        backoff_s: float = 0.1,
        timeout_s: float = 120.0,
        before_push: Callable[[int], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = str(remote)
        self._workdir = workdir
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self.before_push = before_push
        self._repo: git.Repo | None = None
        self._lock = threading.Lock()

    @property
    def display_url(self) -> str:
        return redact_credentials(self._url)

    # -- the blob source -------------------------------------------------------------------

    def list_spec_blobs(self, revision: str, roots: Sequence[str] = (".",)) -> Sequence[BlobEntry]:
        """Every spec file of ``revision`` (a commit in the local store), sorted by path."""
        return list_spec_blobs(self._open(), revision, roots)

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        return read_blob_batch(self._open(), shas)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        *,
        base: str,
        branch: str,
        author: GitIdentity,
        message: str,
        edit: Edit,
        check: Check | None = None,
    ) -> WriteResult:
        """Commit ``edit(tip of base)`` on ``base``'s tip and push it as ``branch``.

        With ``branch == base`` the commit moves the branch forward; otherwise ``branch``
        is created and must not exist yet. Raises BranchNotFound when ``base`` is absent,
        NothingToCommit when the edit changes nothing, whatever ``edit`` or ``check``
        raise (nothing is pushed then), RemoteUnavailable when the remote cannot be
        reached, GitPushRejected when it refuses or keeps moving for ``max_attempts``.
        """
        with self._lock:
            repo = self._open()
            last_reason = ""
            for attempt in range(1, self._max_attempts + 1):
                tip = self._fetch_tip(repo, base)
                changes = {_plain_path(path): data for path, data in edit(tip).items()}
                commit = self._build_commit(repo, tip, changes, author, message)
                if check is not None:
                    check(commit)
                if self.before_push is not None:
                    self.before_push(attempt)
                pushed, last_reason = self._push(repo, commit, branch, new=branch != base)
                if pushed:
                    return WriteResult(commit=commit, branch=branch, parent=tip, attempts=attempt)
                if branch != base:
                    break  # a review branch of that name exists: retrying cannot help
                if attempt < self._max_attempts and self._backoff_s > 0:
                    delay = self._backoff_s * 2 ** (attempt - 1)
                    time.sleep(delay * random.uniform(0.5, 1.0))
            raise GitPushRejected(
                f"could not push to branch {branch!r} of {self.display_url}: {last_reason}; "
                "another writer keeps moving it, try the write again"
            )

    def contains(self, revision: str, commit: str, *, branch: str) -> bool:
        """Whether ``revision`` is ``commit`` or has it in its history (fetching ``branch``
        when ``revision`` is not in the local store yet)."""
        if revision == commit:
            return True
        with self._lock:
            repo = self._open()
            if run_git(repo, "cat_file", "-e", f"{revision}^{{commit}}").status != 0:
                self._fetch_tip(repo, branch)
            known = run_git(repo, "cat_file", "-e", f"{revision}^{{commit}}").status == 0
            return (
                known and run_git(repo, "merge_base", "--is-ancestor", commit, revision).status == 0
            )

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def _open(self) -> git.Repo:
        if self._repo is None:
            self._repo = open_or_init_bare(self._workdir, create=True)
        assert self._repo is not None
        return self._repo

    def _fetch_tip(self, repo: git.Repo, branch: str) -> str:
        ref = _TIP_REF_PREFIX + branch
        fetched = run_git(
            repo,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            self._url,
            f"+refs/heads/{branch}:{ref}",
            env=NETWORK_ENV,
            timeout_s=self._timeout_s,
        )
        if fetched.status != 0:
            if "couldn't find remote ref" in fetched.stderr:
                raise BranchNotFound(
                    f"the remote {self.display_url} has no branch {branch!r} to write onto"
                )
            raise RemoteUnavailable(
                f"cannot fetch branch {branch!r} from {self.display_url}: "
                f"{fetched.stderr.strip() or 'no output from git'}; {what_to_check(fetched.stderr)}"
            )
        return check_git(repo, "rev_parse", "--verify", ref).decode().strip()

    def _build_commit(
        self,
        repo: git.Repo,
        tip: str,
        changes: Mapping[str, bytes | None],
        author: GitIdentity,
        message: str,
    ) -> str:
        index = Path(repo.git_dir) / f"reconciler-writer-{threading.get_ident()}.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            check_git(repo, "read_tree", tip, env=env)
            lines = []
            for path, data in changes.items():
                if data is None:
                    lines.append(f"0 {'0' * 40}\t{path}\n")
                else:
                    sha = check_git(repo, "hash_object", "-w", "--stdin", stdin=data)
                    lines.append(f"100644 {sha.decode().strip()}\t{path}\n")
            check_git(repo, "update_index", "--index-info", stdin="".join(lines).encode(), env=env)
            tree = check_git(repo, "write_tree", env=env).decode().strip()
        finally:
            index.unlink(missing_ok=True)
        if tree == check_git(repo, "rev_parse", f"{tip}^{{tree}}").decode().strip():
            raise NothingToCommit("the write changes no file: nothing to commit")
        identity = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        text = message if message.endswith("\n") else message + "\n"
        out = check_git(
            repo, "commit_tree", tree, "-p", tip, "-F", "-", stdin=text.encode(), env=identity
        )
        return out.decode().strip()

    def _push(self, repo: git.Repo, commit: str, branch: str, *, new: bool) -> tuple[bool, str]:
        """Push; (True, "") on success, (False, reason) when another writer won the race."""
        outcome = push_commit(
            repo,
            url=self._url,
            commit=commit,
            branch=branch,
            timeout_s=self._timeout_s,
            new_branch=new,
        )
        if outcome.state == "unreachable":
            raise RemoteUnavailable(
                f"cannot push branch {branch!r} to {self.display_url}: "
                f"{outcome.stderr.strip() or 'no output from git'}; "
                f"{what_to_check(outcome.stderr)}"
            )
        if outcome.state == "refused":
            raise GitPushRejected(
                f"the remote {self.display_url} refused the push to branch {branch!r}: "
                f"{outcome.reason} {outcome.stderr}; allow this writer to push there"
            )
        return outcome.state == "pushed", outcome.reason


def _plain_path(path: str) -> str:
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
        or any(ch in path for ch in "\0\n\t")
    ):
        raise ValueError(f"path {path!r} must be a plain relative path like 'a/b.yaml'")
    return PurePosixPath(path).as_posix()
