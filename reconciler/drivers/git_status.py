"""Committing the daemon's status files back to Git, one commit per batch, without a work tree.

Each :meth:`StatusPublisher.publish` writes the batch's blobs, applies the batch to the
tree of the remote's current tip of the status branch (our files replace the same paths;
``None`` deletes), writes the trees and the commit on top of that tip (or as the root of a
new orphan branch), all in-process (``git_tree``), and pushes. A push the remote rejects because
another writer moved the branch is rebuilt on the new tip and retried, a bounded number of
times with a short backoff, so every other writer's files survive. A batch that changes
nothing makes no commit.

Two layouts: a dedicated branch (default ``reconciler/status``, files at its top), or the
watched branch itself with ``path_prefix="status/"``, where only paths under the prefix are
ever touched.

The status branch is derived state. The publisher remembers its own last pushed commit;
when the branch is gone, or someone rewound or rewrote it so that commit is no longer in
its history, :meth:`StatusPublisher.publish` raises :class:`StatusBranchLost` instead of
committing a partial picture, and the caller publishes every file again with
``rebuild=True``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath

import git
from gitdb import LooseObjectDB  # GitPython's own dependency
from gitdb.base import IStream

from reconciler.drivers import files
from reconciler.drivers.git_source import (
    NETWORK_ENV,
    GitPushRejected,
    GitSourceError,
    RemoteUnavailable,
    check_git,
    open_or_init_bare,
    push_commit,
    redact_credentials,
    run_git,
    what_to_check,
)
from reconciler.drivers.git_tree import StatusTree, commit_bytes, describe

__all__ = ["DEFAULT_IDENTITY", "GitIdentity", "StatusBranchLost", "StatusPublisher"]

_TIP_REF_PREFIX = "refs/reconciler/status-tip/"
_OURS_REF_PREFIX = "refs/reconciler/status-ours/"
_LISTED_CHANGES = 50
_LOOSE: dict[str, LooseObjectDB] = {}
"""The loose-object writer of each status repository, by its git dir."""


@dataclass(frozen=True)
class GitIdentity:
    """Name and email that author and commit the status commits."""

    name: str
    email: str


DEFAULT_IDENTITY = GitIdentity("reconciler", "reconciler@localhost")


class StatusBranchLost(GitSourceError):
    """The status branch no longer holds our last status commit: publish everything again."""


class StatusPublisher:
    """Commits batches of status files to a branch of a remote and pushes them.

    ``workdir`` holds a bare repository used as the object store; it may be a fresh
    folder. ``before_push`` is called with the attempt number (1-based) just before each
    push, e.g. for metrics. Methods block; run them in a worker thread from async code.
    """

    def __init__(
        self,
        remote: str | Path,
        *,
        workdir: Path,
        branch: str = "reconciler/status",
        path_prefix: str = "",
        author: GitIdentity = DEFAULT_IDENTITY,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 120.0,
        before_push: Callable[[int], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._url = str(remote)
        self._workdir = workdir
        self._branch = branch
        self._prefix = files.normalize_root(path_prefix)
        self._author = author
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._before_push = before_push
        self._repo: git.Repo | None = None
        self._tree: StatusTree | None = None
        self._lock = threading.Lock()
        self._pushed: tuple[str, str] | None = None
        """(commit, tree) of our last push, while nothing says the branch moved since."""

    @property
    def display_url(self) -> str:
        return redact_credentials(self._url)

    def publish(
        self,
        changes: Mapping[str, bytes | None],
        *,
        summary: str = "Update status",
        rebuild: bool = False,
        body: str | None = None,
    ) -> str | None:
        """Commit ``changes`` ({path under the prefix: content, or None to delete}) and push.

        Returns the new commit sha, or None when the batch changes nothing (an empty batch
        only checks the branch). Raises StatusBranchLost when the branch lost our last
        commit (unless ``rebuild``: the batch is then everything, committed on whatever
        the branch holds now), RemoteUnavailable when the remote cannot be reached,
        GitPushRejected when it refuses the push or keeps moving for ``max_attempts``
        attempts. ``body`` is the commit message's body; without it, the body lists the
        files the commit changed.
        """
        entries = {self._full_path(path): data for path, data in changes.items()}
        with self._lock:
            repo = self._open()
            blob_shas = {path: _store_blob(repo, data) for path, data in entries.items()}
            last_reason = ""
            for attempt in range(1, self._max_attempts + 1):
                # Usually the branch still ends with our last push: build on it and push
                # with a lease on it, skipping the round trip that reads the tip. If
                # another writer moved it, the lease fails and this attempt reads it.
                fast = self._pushed if attempt == 1 and not rebuild and entries else None
                tip: str | None
                tree: str | None
                if fast is not None:
                    tip, tree = fast
                else:
                    tip, tree = self._fetch_tip(repo), None
                    if not rebuild:
                        self._check_ours(repo, tip)
                if not entries:
                    return None
                built = self._build_commit(
                    repo, tip, blob_shas, summary, parent_tree=tree, body=body
                )
                if built is None:
                    return None
                commit, new_tree = built
                if self._before_push is not None:
                    self._before_push(attempt)
                pushed, last_reason = self._push(repo, commit, expect=tip if fast else None)
                if pushed:
                    _write_ref(repo, self._tip_ref, commit)
                    _write_ref(repo, self._ours_ref, commit)
                    self._pushed = (commit, new_tree)
                    return commit
                self._pushed = None
                if fast is not None:
                    continue  # the lease found the branch moved: read it now, no backoff
                if attempt < self._max_attempts and self._backoff_s > 0:
                    delay = self._backoff_s * 2 ** (attempt - 1)
                    time.sleep(delay * random.uniform(0.5, 1.0))
            raise GitPushRejected(
                f"gave up pushing status to branch {self._branch!r} of {self.display_url} after "
                f"{self._max_attempts} attempts, each lost to another writer ({last_reason}); "
                "publish the batch again later"
            )

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    @property
    def _tip_ref(self) -> str:
        return _TIP_REF_PREFIX + self._branch

    @property
    def _ours_ref(self) -> str:
        return _OURS_REF_PREFIX + self._branch

    def _check_ours(self, repo: git.Repo, tip: str | None) -> None:
        """Raise StatusBranchLost when our last pushed commit is not in ``tip``'s history."""
        found = run_git(repo, "rev_parse", "--verify", "--quiet", self._ours_ref)
        if found.status != 0:
            return  # nothing published from this state dir yet
        ours = found.stdout.decode().strip()
        if tip == ours:
            return
        if tip is None:
            what = "was deleted"
        elif run_git(repo, "merge_base", "--is-ancestor", ours, tip).status != 0:
            what = "was rewound or rewritten by another writer"
        else:
            return  # others committed on top of ours: their files and ours are all there
        raise StatusBranchLost(
            f"status branch {self._branch!r} of {self.display_url} {what}; "
            "every status file is written again"
        )

    def _open(self) -> git.Repo:
        if self._repo is None:
            self._repo = open_or_init_bare(self._workdir, create=True)
        assert self._repo is not None
        return self._repo

    def _full_path(self, path: str) -> str:
        pure = PurePosixPath(path)
        if (
            not path
            or path.startswith("/")
            or "\\" in path
            or any(part in ("", ".", "..") for part in path.split("/"))
            or any(ch in path for ch in "\0\n\t")
        ):
            raise ValueError(f"status path {path!r} must be a plain relative path like 'a/b.yaml'")
        return f"{self._prefix}/{pure.as_posix()}" if self._prefix else pure.as_posix()

    def _fetch_tip(self, repo: git.Repo) -> str | None:
        """The remote's current tip of the branch, fetched into the local store; None if absent."""
        listing = run_git(
            repo,
            "ls_remote",
            "--",
            self._url,
            f"refs/heads/{self._branch}",
            env=NETWORK_ENV,
            timeout_s=self._timeout_s,
        )
        if listing.status != 0:
            raise self._unavailable("read the status branch of", listing.stderr)
        for line in listing.stdout.decode("ascii", errors="replace").splitlines():
            remote_sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{self._branch}":
                break
        else:
            return None
        if run_git(repo, "cat_file", "-e", f"{remote_sha}^{{commit}}").status == 0:
            check_git(repo, "update_ref", self._tip_ref, remote_sha)
            return remote_sha  # already here (usually our own last push): no fetch needed
        fetched = run_git(
            repo,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            self._url,
            f"+refs/heads/{self._branch}:{self._tip_ref}",
            env=NETWORK_ENV,
            timeout_s=self._timeout_s,
        )
        if fetched.status != 0:
            if "couldn't find remote ref" in fetched.stderr:
                return None  # deleted between the two calls: build an orphan again
            raise self._unavailable("fetch the status branch from", fetched.stderr)
        return check_git(repo, "rev_parse", "--verify", self._tip_ref).decode().strip()

    def _build_commit(
        self,
        repo: git.Repo,
        tip: str | None,
        blob_shas: Mapping[str, str | None],
        summary: str,
        *,
        parent_tree: str | None = None,
        body: str | None = None,
    ) -> tuple[str, str] | None:
        """Commit the batch on ``tip`` (or as a root commit); None when the tree is unchanged.

        The tree built last is kept in memory: while the branch's tip is that tree (the
        usual case), the next batch only rewrites the trees on its own paths instead of
        reading the whole status tree (10,000 files) again. ``parent_tree`` is ``tip``'s
        tree when the caller knows it. Returns the commit and its tree.
        """
        if self._tree is None:
            self._tree = StatusTree(lambda kind, data: _store_object(repo, kind, data))
        status_tree = self._tree
        if tip is None:
            status_tree.forget()
            parent_tree = None
        else:
            if parent_tree is None:
                parent_tree = check_git(repo, "rev_parse", f"{tip}^{{tree}}").decode().strip()
            if status_tree.held != parent_tree:
                listing = check_git(repo, "ls_tree", "-r", "-t", "-z", "--full-tree", parent_tree)
                status_tree.read(parent_tree, listing)
        built = status_tree.build(blob_shas)
        if built.tree == parent_tree or (tip is None and not built.changes):
            return None
        if body is not None:
            message = f"{summary}\n\n{body.rstrip()}\n" if body.strip() else f"{summary}\n"
        else:
            message = _commit_message(summary, list(built.changes))
        who = self._author
        content = commit_bytes(
            built.tree, [tip] if tip else [], message, name=who.name, email=who.email
        )
        return _store_object(repo, "commit", content), built.tree

    def _push(self, repo: git.Repo, commit: str, *, expect: str | None) -> tuple[bool, str]:
        """Push; (True, "") on success, (False, reason) when another writer won the race
        (or, with ``expect``, the branch no longer points at that commit)."""
        outcome = push_commit(
            repo,
            url=self._url,
            commit=commit,
            branch=self._branch,
            timeout_s=self._timeout_s,
            expect=expect,
        )
        if outcome.state == "unreachable":
            raise self._unavailable("push the status branch to", outcome.stderr)
        if outcome.state == "refused":
            raise GitPushRejected(
                f"the remote {self.display_url} refused the status push to branch "
                f"{self._branch!r}: {outcome.reason} {outcome.stderr}; allow this author to "
                "push there or configure another status branch"
            )
        return outcome.state == "pushed", outcome.reason

    def _unavailable(self, action: str, stderr: str) -> RemoteUnavailable:
        return RemoteUnavailable(
            f"cannot {action} {self.display_url} (branch {self._branch!r}): "
            f"{stderr.strip() or 'no output from git'}; {what_to_check(stderr)}"
        )


def _store_object(repo: git.Repo, kind: str, data: bytes) -> str:
    """Write one object into the local store as a loose object, in-process: gitdb's pure
    Python writer (zlib and a file), not the repo's default object database, which runs
    a git subprocess per object (2.4 ms each; a start-up's thousands of status files
    spent seconds there)."""
    where = str(repo.git_dir)
    loose = _LOOSE.get(where)
    if loose is None:
        loose = _LOOSE[where] = LooseObjectDB(str(Path(where) / "objects"))
    try:
        stored = loose.store(IStream(kind, len(data), BytesIO(data)))
    except OSError as e:
        raise GitSourceError(f"cannot write a {kind} object into {repo.git_dir}: {e}") from e
    hexsha: bytes = stored.hexsha
    return hexsha.decode("ascii")


def _store_blob(repo: git.Repo, data: bytes | None) -> str | None:
    return None if data is None else _store_object(repo, "blob", data)


def _commit_message(summary: str, changes: list[tuple[str, str]]) -> str:
    lines = describe(changes)
    if len(lines) > _LISTED_CHANGES:
        extra = len(lines) - _LISTED_CHANGES
        lines = [*lines[:_LISTED_CHANGES], f"... and {extra} more"]
    count = len(changes)
    body = "\n".join(lines)
    return f"{summary} ({count} file{'s' if count != 1 else ''})\n\n{body}\n"


def _write_ref(repo: git.Repo, ref: str, sha: str) -> None:
    """Point one of our own refs (``refs/reconciler/...``, which only this publisher
    writes, under its lock) at ``sha``: a loose ref file, replaced atomically."""
    path = Path(repo.git_dir) / ref
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(f"{sha}\n".encode())
        os.replace(temporary, path)
    except OSError as e:
        raise GitSourceError(f"cannot write ref {ref} in {repo.git_dir}: {e}") from e
