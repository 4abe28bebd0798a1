"""Real Git repositories for driver tests: bare remotes on disk and clones that push to them.

``make_git_remote`` builds a bare remote (optionally seeded with files) and hands back a
``GitRemote`` whose ``writer`` clone commits and pushes like a person would; ``clone()``
makes more writers. Git runs with an isolated configuration (no global or system config)
and a fixed identity given through the environment.
"""

from __future__ import annotations

import gc
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FileChanges = Mapping[str, str | bytes | None]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection left alive (the test modules, the project, schemathesis'
    schema: ~600,000 objects in a worker) out of the garbage collector's full passes,
    which otherwise walk all of it again and again while the tests run.

    Full passes then come after 50 passes over the middle generation, not 10: what the
    tests keep alive between them (hypothesis' and schemathesis' caches, ~400,000
    objects in the worker that runs the conformance test) made 25 full passes there
    cost ~9 s of CPU; most of what a test leaves behind dies young."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 50)


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    """Run git in ``cwd``; fail the test with git's own words when it fails."""
    done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed in {cwd}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8", errors="replace").strip()


@dataclass
class WorkClone:
    """A non-bare clone that writes files, commits and pushes one branch."""

    path: Path
    branch: str

    def write(self, files: FileChanges) -> None:
        """Write (str or bytes) or delete (None) files, paths relative to the clone's top."""
        for relative, content in files.items():
            target = self.path / relative
            if content is None:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)

    def commit(self, message: str = "Update specs") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def push(self) -> None:
        git(self.path, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}")

    def pull(self) -> None:
        git(self.path, "fetch", "--quiet", "origin")
        git(self.path, "reset", "--quiet", "--hard", f"origin/{self.branch}")

    def commit_and_push(self, files: FileChanges, message: str = "Update specs") -> str:
        self.write(files)
        sha = self.commit(message)
        self.push()
        return sha

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")


@dataclass
class GitRemote:
    """A bare repository on disk standing in for the state repo's remote."""

    path: Path
    branch: str
    scratch: Path
    writer: WorkClone = field(init=False)

    @property
    def url(self) -> str:
        return str(self.path)

    def clone(self, name: str, *, branch: str | None = None) -> WorkClone:
        """A new clone working on ``branch`` (default: the remote's main branch)."""
        wanted = branch or self.branch
        target = self.scratch / name
        git(self.scratch, "clone", "--quiet", self.url, str(target))
        if self.tip(wanted) is None:
            git(target, "symbolic-ref", "HEAD", f"refs/heads/{wanted}")
        else:
            git(target, "checkout", "--quiet", "-B", wanted, f"origin/{wanted}")
        return WorkClone(target, wanted)

    def tip(self, branch: str | None = None) -> str | None:
        """The remote's commit for ``branch``, or None when it has no such branch."""
        out = git(
            self.path,
            "for-each-ref",
            "--format=%(objectname)",
            f"refs/heads/{branch or self.branch}",
        )
        return out or None

    def paths(self, branch: str | None = None) -> set[str]:
        """All file paths at the tip of ``branch``."""
        out = git(self.path, "ls-tree", "-r", "--name-only", "--full-tree", branch or self.branch)
        return set(out.splitlines())

    def read(self, path: str, *, branch: str | None = None) -> bytes:
        done = subprocess.run(
            ["git", "show", f"{branch or self.branch}:{path}"],
            cwd=self.path,
            capture_output=True,
            check=True,
        )
        return done.stdout


MakeGitRemote = Callable[..., GitRemote]


@pytest.fixture
def git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Isolate git from the machine's configuration and give it a fixed identity."""
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test Writer")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "writer@example.test")


@pytest.fixture
def make_git_remote(tmp_path: Path, git_env: None) -> Iterator[MakeGitRemote]:
    """Factory: ``make_git_remote(name="remote", *, branch="main", files=None) -> GitRemote``.

    The remote gets a writer clone (``.writer``); with ``files`` it is seeded by one
    pushed commit, otherwise the remote stays empty.
    """

    def make(
        name: str = "remote", *, branch: str = "main", files: FileChanges | None = None
    ) -> GitRemote:
        scratch = tmp_path / f"{name}-clones"
        scratch.mkdir()
        bare = tmp_path / f"{name}.git"
        git(tmp_path, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        remote = GitRemote(bare, branch, scratch)
        remote.writer = remote.clone("writer")
        if files is not None:
            remote.writer.commit_and_push(files, "Seed specs")
        return remote

    yield make
