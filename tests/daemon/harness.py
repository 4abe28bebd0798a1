"""A real daemon in a subprocess, and what the tests read back from it.

The daemon runs ``python -m reconciler run --config FILE`` against a bare remote on disk,
with a real sd_notify socket the test binds; status is read from the remote's status
branch with git, the state store with sqlite3, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reconciler.drivers.git_refs import read_branch_tip
from reconciler.engine import migrations
from tests.forkserver import ForkedProcess, start_reconciler

T = TypeVar("T")

STATUS_BRANCH = "reconciler/status"


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float = 60.0, every: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


_status_files: dict[tuple[str, str, str], bytes | None] = {}
"""(remote, commit, path) -> the file's bytes at that commit: a commit never changes, so a
poll whose branch has not moved reads nothing more (tests poll status every 0.1 s)."""


def read_status(remote: Path, path: str, *, branch: str = STATUS_BRANCH) -> dict[str, Any] | None:
    """A status file from the remote's status branch, or None while it is absent."""
    tip = read_branch_tip(remote, branch)
    if tip is None:
        return None
    key = (str(remote), tip, path)
    if key not in _status_files:
        done = subprocess.run(
            ["git", "--git-dir", str(remote), "show", f"{tip}:{path}"],
            capture_output=True,
            check=False,
        )
        _status_files[key] = done.stdout if done.returncode == 0 else None
    data = _status_files[key]
    if data is None:
        return None
    value = yaml.safe_load(data)
    return value if isinstance(value, dict) else None


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in status.get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition in {status}")


@dataclass
class NotifySocket:
    """A bound unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    path: Path
    sock: socket.socket = field(init=False)
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.05)

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return self.messages
            self.messages.append(data.decode())

    def seen(self, assignment: str) -> bool:
        return any(assignment in m.splitlines() for m in self.drain())

    def close(self) -> None:
        self.sock.close()


@dataclass
class DaemonProcess:
    """One ``reconciler run`` subprocess with its config, state dir and log."""

    config: Path
    state_dir: Path
    log_path: Path
    env: dict[str, str]
    proc: ForkedProcess | subprocess.Popen[bytes] | None = None
    flags: tuple[str, ...] = ()

    def start(self) -> DaemonProcess:
        """``python -m reconciler run``, forked from this worker's fork server."""
        flags = self.flags or ("--config", str(self.config))
        self.proc = start_reconciler(["run", *flags], env=self.env, output=self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, *, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            text = line[line.index("{") :] if "{" in line else line
            try:
                records.append(json.loads(text))
            except ValueError:
                records.append({"msg": line})
        return records

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.state_dir / "state.db", timeout=5)
        conn.row_factory = sqlite3.Row
        return conn

    def store_ready(self) -> bool:
        """The state store exists and is migrated to this release's schema.

        The daemon creates ``state.db`` before it migrates it: reading between the two
        would see ``no such table``, so readers wait for the tables, not the file.
        """
        if not (self.state_dir / "state.db").exists():
            return False
        conn = sqlite3.connect(self.state_dir / "state.db", timeout=5)
        try:
            return migrations.current_version(conn) == migrations.LATEST_VERSION
        finally:
            conn.close()

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        if not self.store_ready():
            return []
        conn = self.db()
        try:
            return list(conn.execute(sql, args))
        finally:
            conn.close()

    def executions(self, kind: str, name: str) -> list[sqlite3.Row]:
        """The executions of one object, oldest first ([] until the store is migrated)."""
        return self._query(
            "SELECT * FROM executions WHERE kind = ? AND name = ? ORDER BY created_at",
            (kind, name),
        )

    def steps(self, execution_id: str) -> list[sqlite3.Row]:
        return self._query(
            "SELECT * FROM steps WHERE execution_id = ? ORDER BY node_id", (execution_id,)
        )

    def wait_exit(self, *, timeout: float = 20.0) -> int:
        """Wait for the process to end on its own; its exit code."""
        assert self.proc is not None, "the daemon was never started"
        code = self.proc.wait(timeout=timeout)
        return code

    def records(self, msg: str) -> list[dict[str, Any]]:
        """The JSON log records whose message is ``msg``, in order."""
        return [r for r in self.logs() if r.get("msg") == msg]


def write_config(
    path: Path,
    *,
    remote: Path,
    state_dir: Path,
    secrets_dir: Path,
    poll: str = "500ms",
    resync: str = "1m",
    status_branch: str = STATUS_BRANCH,
    status_path: str | None = None,
) -> Path:
    config: dict[str, Any] = {
        "repo": {"url": str(remote), "branch": "main", "poll_interval": poll},
        "resync_interval": resync,
        "status": {"branch": status_branch},
        "state_dir": str(state_dir),
        "secrets_dir": str(secrets_dir),
    }
    if status_path is not None:
        config["status"]["path"] = status_path
    path.write_text(yaml.safe_dump(config))
    return path


def daemon_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env
