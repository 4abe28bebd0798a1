"""Detached server processes on this host: start, identify, find, stop, and their ports.

Servers run in a session of their own so the daemon's signals and death do not reach
them; a process is identified by its pid together with its start time (so a reused pid is
never mistaken for ours) and carries a marker in its environment so that even one the
registry lost track of is found again. Linux only: it reads /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
MARKER_ENV = "RECONCILER_LOCAL_ENDPOINT"
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME")


class SpawnError(OSError):
    """The executable could not be started (missing, not executable)."""


@dataclasses.dataclass(frozen=True)
class ProcessIdentity:
    """A process as pid and kernel start time (clock ticks since boot)."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The start time of a live (not zombie) process ``pid``, else None."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_running(identity: ProcessIdentity) -> bool:
    return start_ticks(identity.pid) == identity.start_ticks


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def group_exists(pgid: int) -> bool:
    """Whether any process, a zombie included, is in group ``pgid``: one signal 0, where
    ``group_members`` reads every process's stat (~6 ms for 90 processes, more on a busy
    host)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there is one, of another user
    return True


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies excluded)."""
    if not group_exists(pgid):
        return []
    members = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(pid)
    return members


def marked_leaders(marker: str) -> list[ProcessIdentity]:
    """Session leaders whose environment holds ``MARKER_ENV=marker``."""
    return [identity for identity, found in marked_with_prefix(marker) if found == marker]


def marked_with_prefix(prefix: str) -> list[tuple[ProcessIdentity, str]]:
    """Session leaders whose ``MARKER_ENV`` value starts with ``prefix``, with that value."""
    wanted = f"{MARKER_ENV}={prefix}".encode()
    found = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X") or int(fields[3]) != pid:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(wanted):
                value = entry.decode(errors="replace").split("=", 1)[1]
                found.append((ProcessIdentity(pid, int(fields[19])), value))
                break
    return found


def child_env(extra: Mapping[str, str], *, marker: str) -> dict[str, str]:
    """A small environment: a few of the daemon's variables (never its secrets), the
    endpoint's own, and the marker."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.update(extra)
    env[MARKER_ENV] = marker
    return env


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path
) -> tuple[subprocess.Popen[bytes], ProcessIdentity]:
    """Start ``argv`` in a new session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log.write(f"--- {stamp} starting: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
    ticks = start_ticks(process.pid)
    return process, ProcessIdentity(process.pid, ticks if ticks is not None else -1)


async def _wait_group_gone(
    pgid: int, child: subprocess.Popen[bytes] | None, deadline: float
) -> bool:
    """Poll every 50 ms with a signal 0 to the group; read /proc (which tells zombies, not
    yet reaped by their parent, from live members) only every 0.5 s while it answers."""
    polls = 0
    while True:
        if child is not None:
            child.poll()
        if not group_exists(pgid) or (polls % 10 == 0 and not group_members(pgid)):
            return True
        if time.monotonic() >= deadline:
            return False
        polls += 1
        await asyncio.sleep(0.05)


async def stop_group(
    identity: ProcessIdentity, *, grace_s: float, child: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group led by ``identity``, SIGKILL what is left after grace."""
    if child is None and not is_running(identity) and not group_members(identity.pid):
        return
    pgid = identity.pid
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        if await _wait_group_gone(pgid, child, time.monotonic() + wait_s):
            break
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)


def allocate_port(*, avoid: set[int]) -> int:
    """A free TCP port on loopback that no other endpoint holds."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


async def wait_port_free(port: int, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not port_is_free(port):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True
