"""Reading a repository on a local path from its ref files, without starting git.

The embedded default keeps the state repo in a folder on the daemon's own host, and the
daemon polls it: one ``git fetch`` (two processes: fetch and upload-pack) and one
``git rev-parse`` per poll, a few milliseconds of CPU each, almost always to learn that
nothing moved. A branch tip is a file (``refs/heads/<branch>``, else a line of
``packed-refs``), so a poll can read it the way git does and fetch only when it differs
from what was fetched last.

The answer is only ever used to skip work: ``None`` means "cannot tell" (a symbolic or
reftable ref, an unreadable file, no such branch) and the caller fetches as before.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["GitDirError", "find_git_dirs", "local_repo_path", "read_branch_tip"]

_HEX_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class GitDirError(Exception):
    """The path is not a git repository."""


def find_git_dirs(repo_path: Path) -> list[Path]:
    """The folders holding ``repo_path``'s refs: its git dir, plus the common dir of a worktree."""
    dot_git = repo_path / ".git"
    if dot_git.is_dir():
        git_dir = dot_git
    elif dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            raise GitDirError(f"{dot_git} does not point to a git folder ('gitdir: ...')")
        git_dir = (repo_path / text.removeprefix("gitdir:").strip()).resolve()
    elif (repo_path / "HEAD").is_file() and (repo_path / "refs").is_dir():
        git_dir = repo_path  # a bare repository
    else:
        raise GitDirError(
            f"{repo_path} is not a git repository (no .git folder, and not a bare repository)"
        )
    dirs = [git_dir.resolve()]
    common = git_dir / "commondir"
    if common.is_file():
        shared = (git_dir / common.read_text(encoding="utf-8").strip()).resolve()
        if shared not in dirs:
            dirs.append(shared)
    return dirs


def local_repo_path(url: str) -> Path | None:
    """The folder a remote URL names when it is an absolute path on this host
    (``/srv/repo.git``, ``file:///srv/repo.git``), else None. Git reads ``host:path`` (no
    slash before the colon) as an ssh remote, and so does this; a relative path depends on
    the folder git runs in, so it is left to git."""
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif "://" in url:
        return None
    colon = url.find(":")
    if colon != -1 and "/" not in url[:colon]:
        return None
    path = Path(url)
    return path if path.is_absolute() else None


def read_branch_tip(repo_path: Path, branch: str) -> str | None:
    """The commit ``branch`` points at in the repository at ``repo_path``, read from its
    loose ref and then ``packed-refs`` as git does; None when that cannot be told this way."""
    try:
        common = find_git_dirs(repo_path)[-1]
    except (GitDirError, OSError, UnicodeDecodeError):
        return None
    if (common / "reftable").exists():
        return None
    name = f"refs/heads/{branch}"
    try:
        loose: str | None = (common / name).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        loose = None
    except (OSError, UnicodeDecodeError):
        return None
    if loose is not None:
        return loose if _HEX_SHA.match(loose) else None
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in packed.splitlines():
        sha, _, ref = line.partition(" ")
        if ref == name and _HEX_SHA.match(sha):
            return sha
    return None
