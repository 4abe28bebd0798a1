"""Starting a new Git repository from files on disk (``reconciler init``).

``git init`` on a branch, every file added, one commit. The commit is authored by the
user's own git identity; only where none is configured (a fresh machine or container)
does it fall back to a named local identity, so the first commit never fails on a
missing ``user.email``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FALLBACK_NAME = "reconciler init"
FALLBACK_EMAIL = "reconciler@localhost"


class GitInitError(Exception):
    """git could not run, or refused; the message holds its own words."""


def _git(folder: Path, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise GitInitError(f"cannot run git: {exc}; is git installed and on PATH?") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        raise GitInitError(f"git {args[0]} failed in {folder}: {detail}")
    return done.stdout


def _has_identity(folder: Path) -> bool:
    if os.environ.get("GIT_AUTHOR_EMAIL") and os.environ.get("GIT_COMMITTER_EMAIL"):
        return True
    for key in ("user.name", "user.email"):
        try:
            _git(folder, "config", "--get", key)
        except GitInitError:
            return False
    return True


def init_and_commit(folder: Path, *, branch: str, message: str) -> str:
    """Make ``folder`` a repository on ``branch`` holding one commit of all its files;
    return the commit's sha."""
    _git(folder, "init", "--quiet", f"--initial-branch={branch}")
    _git(folder, "add", "--all")
    env = dict(os.environ)
    if not _has_identity(folder):
        env.update(
            GIT_AUTHOR_NAME=FALLBACK_NAME,
            GIT_AUTHOR_EMAIL=FALLBACK_EMAIL,
            GIT_COMMITTER_NAME=FALLBACK_NAME,
            GIT_COMMITTER_EMAIL=FALLBACK_EMAIL,
        )
    _git(folder, "commit", "--quiet", "--no-verify", "-m", message, env=env)
    return _git(folder, "rev-parse", "HEAD").strip()
