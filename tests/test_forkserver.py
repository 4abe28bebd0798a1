"""The fork server's children behave as ``python -m reconciler`` subprocesses do.

The same commands both ways, compared: exit code, stdout and stderr, with an environment
variable that reaches the command (a forked child must not keep the server's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MakeGitRemote
from tests.daemon.conftest import SEED
from tests.daemon.harness import daemon_env, wait_for, write_config
from tests.forkserver import run_reconciler, start_reconciler

COMMANDS = [
    ["--version"],
    ["run", "--bogus"],
    ["check-config", "/nonexistent/reconciler.yaml"],
    ["status"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_forked_command_answers_as_a_subprocess_does(argv: list[str]) -> None:
    env = {**os.environ, "RECONCILER_URL": "ftp://127.0.0.1:21"}
    env.pop("RECONCILER_TOKEN", None)
    real = subprocess.run(
        [sys.executable, "-m", "reconciler", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    forked = run_reconciler(argv, env=env, timeout=60)

    assert (forked.returncode, forked.stdout, forked.stderr) == (
        real.returncode,
        real.stdout,
        real.stderr,
    )


def test_a_child_s_output_file_is_there_at_once_and_a_kill_is_reported_as_a_signal(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    log = tmp_path / "help.log"
    helped = start_reconciler(["endpoints", "--help"], env=dict(os.environ), output=log)
    assert log.exists()
    assert helped.wait(timeout=60) == 0
    assert "endpoints" in log.read_text()

    # A daemon on a real remote runs until it is stopped.
    remote = make_git_remote(files=SEED)
    config = write_config(
        tmp_path / "reconciler.yaml",
        remote=remote.path,
        state_dir=tmp_path / "state",
        secrets_dir=tmp_path,
    )
    daemon = start_reconciler(
        ["run", "--config", str(config)], env=daemon_env(), output=tmp_path / "daemon.log"
    )
    wait_for("the daemon ready", lambda: "ready" in (tmp_path / "daemon.log").read_text())
    assert daemon.poll() is None
    daemon.kill()
    assert daemon.wait(timeout=60) == -signal.SIGKILL
