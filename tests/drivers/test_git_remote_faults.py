"""GitSource against remotes that misbehave: one that hangs, one whose branch is rewritten,
and credentials in every URL form git accepts (https, ssh://, scp-like ``user:pw@host:``).

The hanging remote is a real ``git fetch`` over ssh whose transport (``GIT_SSH_COMMAND``)
is a script that never answers: the fetch must give up at its timeout, not hang the daemon.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers.git_source import GitSource, RemoteUnavailable, redact_credentials
from tests.daemon.harness import wait_for

if TYPE_CHECKING:
    from conftest import MakeGitRemote

from tests.conftest import git


def _silent_ssh(tmp_path: Path) -> tuple[Path, Path]:
    """An ssh stand-in that records its pid, then waits forever without a byte."""
    pid_file = tmp_path / "ssh.pid"
    script = tmp_path / "silent-ssh"
    script.write_text(f'#!/bin/sh\necho $$ > "{pid_file}"\nexec sleep 3600\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split()[2] == "Z")


@pytest.mark.parametrize(
    "url",
    [
        "ssh://deploy:ssh-pass-123@git.invalid/org/state.git",
        "deploy:scp-pass-456@git.invalid:org/state.git",
    ],
)
def test_a_fetch_that_hangs_gives_up_at_its_timeout_without_leaking_the_password(
    tmp_path: Path, git_env: None, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    script, pid_file = _silent_ssh(tmp_path)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    source = GitSource(url, "main", tmp_path / "copy", fetch_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(RemoteUnavailable) as caught:
        source.sync()
    took = time.monotonic() - started
    assert pid_file.exists()  # the transport really was started and left hanging
    assert took >= 1.0  # it waited for the timeout ...
    assert took < 30.0  # ... and no longer than that, give or take a loaded machine
    password = url.split(":", 2)[1].split("@")[0] if url.startswith("ssh") else "scp-pass-456"
    assert password not in str(caught.value)
    assert password not in source.display_url
    assert source.local_head() is None
    pid = int(pid_file.read_text())
    try:
        wait_for("the hanging transport to be gone", lambda: not _alive(pid), timeout=10)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://x-access-token:ghp_abc@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("ssh://deploy:hunter2@git.example.com:22/r.git", "ssh://***@git.example.com:22/r.git"),
        ("fetch deploy:hunter2@git.example.com:org/r.git", "fetch ***@git.example.com:org/r.git"),
        ("oauth2:glpat-xyz@gitlab.com:grp/r.git failed", "***@gitlab.com:grp/r.git failed"),
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),  # a bare user is no secret
        ("at 12:30 mail a@b.example: hi", "at 12:30 mail a@b.example: hi"),
    ],
)
def test_credentials_are_hidden_in_every_url_form(text: str, shown: str) -> None:
    assert redact_credentials(text) == shown


def test_a_force_push_to_the_watched_branch_is_followed(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"a.yaml": "kind: Model\n"})
    base = remote.tip("main")
    first = remote.writer.commit_and_push({"a.yaml": "kind: Model\nround: 1\n"}, "one")
    source = GitSource(remote.url, "main", tmp_path / "copy")
    assert source.sync() == first

    git(remote.writer.path, "reset", "--quiet", "--hard", str(base))
    remote.writer.write({"b.yaml": "kind: Cluster\n"})
    rewritten = remote.writer.commit("rewritten history")
    git(remote.writer.path, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")

    assert source.sync() == rewritten
    assert [e.path for e in source.list_spec_blobs(rewritten)] == ["a.yaml", "b.yaml"]
    assert source.changed_paths(first, rewritten) == {"a.yaml", "b.yaml"}


@pytest.mark.parametrize(
    ("stderr", "advice"),
    [
        (
            "error: cannot lock ref 'refs/remotes/origin/main': Unable to create "
            "'/var/lib/reconciler/source/refs/remotes/origin/main.lock': File exists.",
            "another git process holds a lock",
        ),
        ("fatal: Authentication failed for 'https://git.example/x.git/'", "check the credentials"),
        ("ssh: Could not resolve host: git.example", "check the network"),
        ("fatal: '/srv/nothing' does not appear to be a git repository", "check the URL"),
        ("fatal: something else entirely", "check the URL, network and credentials"),
    ],
)
def test_a_git_failure_names_what_to_check(stderr: str, advice: str) -> None:
    from reconciler.drivers.git_source import what_to_check

    assert what_to_check(stderr).startswith(advice)
