"""Fixtures for daemon tests: a seeded remote and a daemon subprocess bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import DaemonProcess, NotifySocket, daemon_env, write_config

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
metadata: {name: research}
spec: {description: Research endpoints}
"""

CREDENTIAL = """\
apiVersion: reconciler/v1
kind: Credential
metadata: {name: openai-prod}
spec: {provider: openai, secret: openai-api-key}
"""

CLUSTER = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
"""


def workflow(name: str = "smoke", *, delay: str = "50ms", nodes: int = 3, round_: int = 1) -> str:
    """An on_change workflow: a chain of noop nodes, each waiting ``delay``."""
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Workflow",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  trigger: on_change",
        f"  user_params: {{round: {round_}}}",
        "  workflows:",
        "    provision:",
        "      nodes:",
    ]
    for index in range(nodes):
        lines += [
            f"        - id: n{index}",
            "          type: noop",
            f"          user_inputs: {{delay: {delay}}}",
        ]
    lines.append("      edges:")
    for index in range(1, nodes):
        lines.append(f"        - {{source: n{index - 1}, dest: n{index}}}")
    if nodes == 1:
        lines[-1] = "      edges: []"
    return "\n".join(lines) + "\n"


SEED = {
    "projects.yaml": PROJECT,
    "credentials.yaml": CREDENTIAL,
    "clusters.yaml": CLUSTER,
    "workflows.yaml": workflow(),
}

StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def remote(make_git_remote: MakeGitRemote) -> GitRemote:
    return make_git_remote(files=SEED)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


@pytest.fixture
def start_daemon(tmp_path: Path, remote: GitRemote) -> Iterator[StartDaemon]:
    """Start a daemon on ``remote``; every daemon started is stopped at the end."""
    started: list[DaemonProcess] = []
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")

    def start(
        *, notify: NotifySocket | None = None, config_path: Path | None = None, **config: str
    ) -> DaemonProcess:
        state = tmp_path / "state"
        path = config_path or write_config(
            tmp_path / "reconciler.yaml",
            remote=remote.path,
            state_dir=state,
            secrets_dir=secrets,
            **config,
        )
        extra = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"} if notify else {}
        daemon = DaemonProcess(path, state, tmp_path / "daemon.log", daemon_env(**extra)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.alive():
            daemon.stop()
