"""The daemon's source of truth: a local bare copy of the watched branch of the state repo.

``GitSource`` keeps a bare repository in its work folder and fetches only the watched
branch into it, so reading specs never needs a work tree: the spec files are listed with
one ``git ls-tree`` and read with one ``git cat-file --batch`` process, and only blobs whose
sha changed need re-reading and re-parsing. When the remote cannot be reached the local copy
stays intact and usable; the caller gets ``RemoteUnavailable`` and retries later.

``read_tree_at`` reads the spec files of a local repository at a revision, for
``reconciler plan --base REV``. All git failures surface as ``GitSourceError`` subclasses
whose text never contains credentials embedded in a URL.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import git

from reconciler.drivers import files
from reconciler.drivers.git_refs import local_repo_path, read_branch_tip

__all__ = [
    "BlobEntry",
    "BranchNotFound",
    "CommitInfo",
    "GitPushRejected",
    "GitSource",
    "GitSourceError",
    "RemoteUnavailable",
    "RevisionNotFound",
    "SourceBlob",
    "read_tree_at",
    "redact_credentials",
]

# Network calls must fail rather than wait for a password prompt nobody will answer.
NETWORK_ENV = {"GIT_TERMINAL_PROMPT": "0"}
_SOURCE_REF_PREFIX = "refs/remotes/origin/"
_HEX_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
# scp-like remotes (``user:token@host:path``): the password goes; ``git@host:path`` stays.
_SCP_USERINFO = re.compile(r"(?<![\w.+~-])[\w.+~-]+:[^\s@/:]+@(?=[A-Za-z0-9][A-Za-z0-9.-]*:)")


class GitSourceError(Exception):
    """A git operation on the state repo failed; the message says what to check."""


class RemoteUnavailable(GitSourceError):
    """The remote could not be fetched from or pushed to; the local copy is unchanged."""


class BranchNotFound(RemoteUnavailable):
    """The remote answered but has no such branch (yet); retry after someone pushes it."""


class RevisionNotFound(GitSourceError):
    """A revision, or an object, is not in the repository."""


class GitPushRejected(GitSourceError):
    """The remote refused a push (a hook, a protected branch, or too many lost races)."""


@dataclass(frozen=True)
class BlobEntry:
    """A spec file in a tree: repo-relative POSIX path, blob sha and size in bytes."""

    path: str
    sha: str
    size: int


@dataclass(frozen=True)
class SourceBlob:
    """A spec file read from a tree: path (relative to the folder asked for), sha, content."""

    path: str
    sha: str
    data: bytes


@dataclass(frozen=True)
class CommitInfo:
    """Who made a commit, when, and why."""

    sha: str
    author_name: str
    author_email: str
    authored_at: datetime
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str

    @property
    def summary(self) -> str:
        """The first line of the message."""
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class GitOutput:
    """Exit status and output of one git command."""

    status: int
    stdout: bytes
    stderr: str


def redact_credentials(text: str) -> str:
    """Replace the user-info of every ``scheme://user:secret@host`` URL in ``text``, and
    the ``user:secret@`` of scp-like ``user:secret@host:path`` remotes."""
    return _SCP_USERINFO.sub("***@", _URL_USERINFO.sub(r"\g<scheme>***@", text))


def run_git(
    repo: git.Repo,
    command: str,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> GitOutput:
    """Run ``git <command> <args>`` in ``repo`` and return its status and raw output.

    Never raises for a non-zero exit; raises GitSourceError when git cannot be started.
    """
    options: dict[str, object] = {
        "with_extended_output": True,
        "with_exceptions": False,
        "stdout_as_string": False,
        "strip_newline_in_stdout": False,
    }
    if env is not None:
        options["env"] = dict(env)
    if timeout_s is not None:
        options["kill_after_timeout"] = timeout_s
    try:
        if stdin is None:
            status, out, err = getattr(repo.git, command)(*args, **options)
        else:
            with tempfile.TemporaryFile() as handle:
                handle.write(stdin)
                handle.seek(0)
                status, out, err = getattr(repo.git, command)(*args, istream=handle, **options)
    except (git.GitCommandNotFound, OSError) as e:
        raise GitSourceError(
            f"cannot run git {command.replace('_', '-')}: {e}; is git installed and on PATH?"
        ) from e
    return GitOutput(int(status), bytes(out), redact_credentials(str(err)))


def check_git(
    repo: git.Repo,
    command: str,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run a local git command that must succeed; return its stdout."""
    result = run_git(repo, command, *args, stdin=stdin, env=env)
    if result.status != 0:
        detail = result.stderr.strip() or "no output"
        name = command.replace("_", "-")
        raise GitSourceError(f"git {name} failed in {repo.git_dir}: {detail}")
    return result.stdout


def resolve_commit(repo: git.Repo, revision: str) -> str:
    """Return the commit sha ``revision`` names in ``repo``, or raise RevisionNotFound."""
    if not revision or revision.startswith("-") or "\n" in revision:
        raise RevisionNotFound(f"{revision!r} is not a valid revision name")
    result = run_git(
        repo, "rev_parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
    )
    if result.status != 0:
        raise RevisionNotFound(
            f"revision {revision!r} is not a commit in {repo.git_dir}; "
            "check the name, or fetch it first"
        )
    return result.stdout.decode("ascii").strip()


def list_tree_blobs(repo: git.Repo, commit: str) -> list[BlobEntry]:
    """List every regular file of ``commit``'s tree, with sizes, in one ``ls-tree`` call."""
    out = check_git(repo, "ls_tree", "-r", "-l", "-z", "--full-tree", commit)
    entries: list[BlobEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha, size = meta.split()
        # Regular files only: symlinks (120000) and submodules (commit) hold no specs.
        if kind != b"blob" or mode not in (b"100644", b"100755"):
            continue
        path = raw_path.decode("utf-8", errors="surrogateescape")
        entries.append(BlobEntry(path, sha.decode("ascii"), int(size)))
    return entries


_LISTINGS_KEPT = 8
_listings: OrderedDict[tuple[str, str, tuple[str, ...]], tuple[BlobEntry, ...]] = OrderedDict()
"""(git dir, commit, roots) -> that commit's spec files. A commit's tree never changes,
and a write through the API lists its base and its new commit several times."""
_listings_lock = threading.Lock()


def _kept_listing(key: tuple[str, str, tuple[str, ...]]) -> tuple[BlobEntry, ...] | None:
    with _listings_lock:
        hit = _listings.get(key)
        if hit is not None:
            _listings.move_to_end(key)
        return hit


def list_spec_blobs(
    repo: git.Repo, revision: str, roots: Sequence[str] = (".",)
) -> tuple[BlobEntry, ...]:
    """Every spec file (see ``files.is_spec_path``) of ``revision``, sorted by path.

    The last few listings are kept by commit; a full commit sha asked again is answered
    without running git. Raises RevisionNotFound for a revision that names no commit.
    """
    git_dir, wanted = str(repo.git_dir), tuple(roots)
    hit = _kept_listing((git_dir, revision, wanted)) if _HEX_SHA.match(revision) else None
    if hit is not None:
        return hit
    key = (git_dir, resolve_commit(repo, revision), wanted)
    if (hit := _kept_listing(key)) is not None:
        return hit
    entries = [e for e in list_tree_blobs(repo, key[1]) if files.is_spec_path(e.path, roots=roots)]
    listing = tuple(sorted(entries, key=lambda e: e.path))
    with _listings_lock:
        _listings[key] = listing
        while len(_listings) > _LISTINGS_KEPT:
            _listings.popitem(last=False)
    return listing


def read_blob_batch(repo: git.Repo, shas: Iterable[str]) -> dict[str, bytes]:
    """Read many blobs through one ``git cat-file --batch`` process."""
    wanted = list(dict.fromkeys(shas))
    for sha in wanted:
        if not _HEX_SHA.match(sha):
            raise ValueError(f"{sha!r} is not a full lowercase hex object id")
    if not wanted:
        return {}
    out = check_git(repo, "cat_file", "--batch", stdin="".join(f"{s}\n" for s in wanted).encode())
    blobs: dict[str, bytes] = {}
    missing: list[str] = []
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:
            missing.append(sha)
            continue
        size = int(header[2])
        blobs[sha] = out[pos : pos + size]
        pos += size + 1
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise RevisionNotFound(
            f"{len(missing)} object(s) not in {repo.git_dir}: {shown}; sync the source first"
        )
    return blobs


def changed_paths_between(repo: git.Repo, old_commit: str, new_commit: str) -> set[str]:
    """Paths added, modified or deleted between two commits (renames count as both)."""
    out = check_git(
        repo, "diff_tree", "-r", "--no-renames", "--name-only", "-z", old_commit, new_commit
    )
    return {p.decode("utf-8", errors="surrogateescape") for p in out.split(b"\0") if p}


class GitSource:
    """A local bare copy of one branch of a remote, refreshed by :meth:`sync`.

    Methods block (they run git); call them from a worker thread in async code. The
    work folder should belong to this object alone.
    """

    def __init__(
        self, url: str, branch: str, workdir: Path, *, fetch_timeout_s: float = 120.0
    ) -> None:
        self._url = url
        self._branch = branch
        self._workdir = workdir
        self._fetch_timeout_s = fetch_timeout_s
        self._repo: git.Repo | None = None
        self._sync_lock = threading.Lock()
        self._local_remote = local_repo_path(url)
        self._fetched: str | None = None
        """The head the last fetch brought, while the tracking ref still holds it."""

    @property
    def display_url(self) -> str:
        """The remote URL with any embedded credentials hidden, for logs and status."""
        return redact_credentials(self._url)

    @property
    def branch(self) -> str:
        return self._branch

    def sync(self) -> str:
        """Fetch the branch (creating the local copy on first use); return its head sha.

        Raises RemoteUnavailable (BranchNotFound when the branch is missing); the local
        copy and :meth:`local_head` are left as they were. A remote on a local path whose
        branch file still names the head fetched last is not fetched again (see
        ``git_refs``): that is most polls of the embedded default.
        """
        with self._sync_lock:
            if (
                self._fetched is not None
                and self._local_remote is not None
                and read_branch_tip(self._local_remote, self._branch) == self._fetched
            ):
                return self._fetched
            self._fetched = None
            repo = self._open(create=True)
            assert repo is not None
            refspec = f"+refs/heads/{self._branch}:{self._tracking_ref}"
            result = run_git(
                repo,
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                self._url,
                refspec,
                env=NETWORK_ENV,
                timeout_s=self._fetch_timeout_s,
            )
            if result.status != 0:
                raise self._fetch_error(result.stderr, has_copy=self.local_head() is not None)
            self._fetched = resolve_commit(repo, self._tracking_ref)
            return self._fetched

    def local_head(self) -> str | None:
        """The branch head fetched last, without contacting the remote; None before any."""
        repo = self._open(create=False)
        if repo is None:
            return None
        try:
            return resolve_commit(repo, self._tracking_ref)
        except RevisionNotFound:
            return None

    def resolve(self, revision: str) -> str:
        """The commit sha a revision names in the local copy."""
        return resolve_commit(self._require_repo(), revision)

    def list_spec_blobs(self, revision: str, roots: Sequence[str] = (".",)) -> Sequence[BlobEntry]:
        """Every spec file (see ``files.is_spec_path``) of ``revision``, sorted by path."""
        return list_spec_blobs(self._require_repo(), revision, roots)

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Contents of the given blobs, read through a single git process."""
        return read_blob_batch(self._require_repo(), shas)

    def changed_paths(self, old_rev: str, new_rev: str) -> set[str]:
        """Repo-relative paths that differ between two revisions.

        Raises RevisionNotFound when either is gone (e.g. after a force-push and gc); the
        caller should then re-read everything.
        """
        repo = self._require_repo()
        return changed_paths_between(
            repo, resolve_commit(repo, old_rev), resolve_commit(repo, new_rev)
        )

    def is_status_only_change(self, old_rev: str, new_rev: str, *, prefix: str = "status/") -> bool:
        """True when nothing outside ``prefix`` changed between the revisions.

        With status committed to the watched branch, the daemon uses this to ignore its
        own status commits (and anyone else's) instead of reconciling them.
        """
        folder = files.normalize_root(prefix)
        if not folder:
            raise ValueError("prefix must name a folder, e.g. 'status/'")
        return all(path.startswith(folder + "/") for path in self.changed_paths(old_rev, new_rev))

    def commit_info(self, rev: str) -> CommitInfo:
        """Author, committer, times and message of a commit."""
        repo = self._require_repo()
        return read_commit_info(repo, resolve_commit(repo, rev))

    def file_origin(self, path: str, rev: str) -> CommitInfo | None:
        """The commit of ``rev``'s history that first added ``path`` (following renames),
        or None when the history has no such addition."""
        return read_file_origin(self._require_repo(), path, rev)

    def close(self) -> None:
        """Release GitPython's cached resources."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        self._fetched = None

    @property
    def _tracking_ref(self) -> str:
        return _SOURCE_REF_PREFIX + self._branch

    def _require_repo(self) -> git.Repo:
        repo = self._open(create=False)
        if repo is None:
            raise GitSourceError(
                f"no local copy of {self.display_url} in {self._workdir} yet; call sync() first"
            )
        return repo

    def _open(self, *, create: bool) -> git.Repo | None:
        if self._repo is not None:
            return self._repo
        self._repo = open_or_init_bare(self._workdir, create=create)
        return self._repo

    def _fetch_error(self, stderr: str, *, has_copy: bool) -> RemoteUnavailable:
        detail = stderr.strip() or "no output from git"
        fallback = (
            "The last fetched revision stays in use."
            if has_copy
            else "Nothing has been fetched yet."
        )
        if "couldn't find remote ref" in stderr:
            return BranchNotFound(
                f"the remote {self.display_url} has no branch {self._branch!r}; "
                f"push it or fix the configured branch ({detail})"
            )
        return RemoteUnavailable(
            f"cannot fetch branch {self._branch!r} from {self.display_url}: {detail}; "
            f"{what_to_check(stderr)}. {fallback}"
        )


# What a git failure's output says to check, most specific first: a lock left or held by
# another process is no network problem, and a refused login is no typo in the URL.
_CAUSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("cannot lock ref", "unable to create", ".lock': file exists", "index.lock"),
        "another git process holds a lock in the daemon's state dir (a second daemon on the "
        "same state_dir, or one killed mid-write: remove the stale .lock file)",
    ),
    (
        (
            "authentication failed",
            "permission denied",
            "could not read username",
            "invalid username or password",
            "403",
            "401",
        ),
        "check the credentials (the token or ssh key the URL uses)",
    ),
    (
        (
            "could not resolve host",
            "connection refused",
            "connection timed out",
            "network is unreachable",
            "timed out",
        ),
        "check the network and the host in the URL",
    ),
    (
        ("does not appear to be a git repository", "repository not found", "not found"),
        "check the URL: no repository answers there",
    ),
)


def what_to_check(stderr: str) -> str:
    """The advice for a failed fetch or push, from what git printed."""
    text = stderr.lower()
    for markers, advice in _CAUSES:
        if any(marker in text for marker in markers):
            return advice
    return "check the URL, network and credentials"


# Rejections that mean "someone else moved the branch": rebuild on the new tip and retry.
LOST_RACE_MARKERS = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "cannot lock ref",
    "failed to update ref",
    "failed to lock",
    "incorrect old value",
)


@dataclass(frozen=True)
class PushOutcome:
    """How one push ended: ``pushed``; ``lost`` a race to another writer (rebuild on the
    new tip and retry); ``refused`` by the remote (a hook, a protected branch); or the
    remote was ``unreachable``. ``reason`` is git's rejection, ``stderr`` its output."""

    state: Literal["pushed", "lost", "refused", "unreachable"]
    reason: str = ""
    stderr: str = ""


def push_commit(
    repo: git.Repo,
    *,
    url: str,
    commit: str,
    branch: str,
    timeout_s: float,
    new_branch: bool = False,
    expect: str | None = None,
) -> PushOutcome:
    """Push ``commit`` to ``branch`` of ``url``; ``new_branch`` only creates it (a lease on
    its absence), never moving one someone else made meanwhile; ``expect`` moves it only
    while it still points at that commit (anything else is a lost race)."""
    lease: list[str] = []
    if new_branch:
        lease = [f"--force-with-lease=refs/heads/{branch}:"]
    elif expect is not None:
        lease = [f"--force-with-lease=refs/heads/{branch}:{expect}"]
    result = run_git(
        repo,
        "push",
        "--porcelain",
        *lease,
        "--",
        url,
        f"{commit}:refs/heads/{branch}",
        env=NETWORK_ENV,
        timeout_s=timeout_s,
    )
    if result.status == 0:
        return PushOutcome("pushed")
    report = redact_credentials(result.stdout.decode("utf-8", errors="replace"))
    rejected = [line for line in report.splitlines() if line.startswith("!")]
    if not rejected:
        return PushOutcome("unreachable", stderr=result.stderr)
    reason = rejected[0].split("\t")[-1]
    state: Literal["lost", "refused"] = (
        "lost" if any(marker in reason for marker in LOST_RACE_MARKERS) else "refused"
    )
    return PushOutcome(state, reason=reason, stderr=result.stderr.strip())


def open_or_init_bare(workdir: Path, *, create: bool) -> git.Repo | None:
    """Open the bare repository in ``workdir``; create it when asked and the folder is empty."""
    is_empty = not workdir.exists() or (workdir.is_dir() and not any(workdir.iterdir()))
    if is_empty:
        if not create:
            return None
        try:
            return _init_bare_atomically(workdir)
        except (OSError, git.GitCommandError) as e:
            raise GitSourceError(f"cannot create a git repository in {workdir}: {e}") from e
    try:
        return git.Repo(workdir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        raise GitSourceError(
            f"{workdir} exists and is not a git repository; empty it or choose another folder"
        ) from e


def _init_bare_atomically(workdir: Path) -> git.Repo:
    """``git init --bare`` in a sibling folder, renamed into place when complete.

    A daemon killed during ``git init`` must not leave ``workdir`` half made: the next
    start would find a folder that is neither empty nor a repository and refuse it. A
    half-made sibling from such a kill is removed here.
    """
    workdir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{workdir.name}.init-"
    for stale in workdir.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir.parent))
    try:
        git.Repo.init(building, bare=True)
        os.rename(building, workdir)  # replaces an empty folder as a whole
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return git.Repo(workdir)


def read_commit_info(repo: git.Repo, commit: str) -> CommitInfo:
    """Parse ``git log -1`` of one commit into a CommitInfo."""
    fmt = "%H%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    out = check_git(repo, "log", "-1", f"--format={fmt}", commit, "--")
    fields = out.decode("utf-8", errors="replace").split("\0", 7)
    sha, a_name, a_email, a_time, c_name, c_email, c_time, message = fields
    return CommitInfo(
        sha=sha,
        author_name=a_name,
        author_email=a_email,
        authored_at=datetime.fromisoformat(a_time),
        committer_name=c_name,
        committer_email=c_email,
        committed_at=datetime.fromisoformat(c_time),
        message=message.rstrip("\n"),
    )


def read_file_origin(repo: git.Repo, path: str, rev: str) -> CommitInfo | None:
    """The oldest commit in ``rev``'s history that added ``path`` (renames followed), as
    a CommitInfo; None when there is none."""
    commit = resolve_commit(repo, rev)
    out = check_git(repo, "log", "--follow", "--diff-filter=A", "--format=%H", commit, "--", path)
    shas = out.decode("ascii", errors="replace").split()
    return read_commit_info(repo, shas[-1]) if shas else None


def read_tree_at(repo_path: Path, revision: str, subdir: str = "") -> list[SourceBlob]:
    """Read the spec files of a local repository at ``revision`` (for ``plan --base REV``).

    ``subdir`` is the state repo's folder inside the repository ("" for the top); the
    spec rules apply relative to it and returned paths are relative to it, sorted.
    Raises RevisionNotFound for an unknown revision, GitSourceError for a path that is
    not a repository.
    """
    try:
        repo = git.Repo(repo_path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        raise GitSourceError(f"{repo_path} is not a git repository") from e
    try:
        commit = resolve_commit(repo, revision)
        folder = files.normalize_root(subdir)
        strip = len(folder) + 1 if folder else 0
        wanted = [
            BlobEntry(entry.path[strip:], entry.sha, entry.size)
            for entry in list_tree_blobs(repo, commit)
            if (not folder or entry.path.startswith(folder + "/"))
            and files.is_spec_path(entry.path[strip:])
        ]
        data = read_blob_batch(repo, (entry.sha for entry in wanted))
        return sorted(
            (SourceBlob(entry.path, entry.sha, data[entry.sha]) for entry in wanted),
            key=lambda blob: blob.path,
        )
    finally:
        repo.close()
