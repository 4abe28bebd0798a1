"""One daemon per state directory: an exclusive lock held for the daemon's whole life.

Two daemons on one state dir would race on the same Git work dirs and SQLite store and
fail with misleading git errors. The first takes an exclusive ``flock`` on
``<state_dir>/daemon.lock`` and writes its pid there; a second is refused at start-up
with a message naming the holder. The kernel drops the lock when the process dies, even
by kill -9, so a stale file never blocks a restart.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LOCK_FILE = "daemon.lock"


class StateDirLocked(Exception):
    """Another daemon holds the state directory."""


class StateDirLock:
    """The exclusive lock on one state directory; ``acquire`` once, ``release`` at exit."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StateDirLocked(f"cannot lock {self.path}: {exc.strerror}") from exc
            who = f"pid {holder}" if holder else "another process"
            raise StateDirLocked(
                f"another reconciler daemon ({who}) is using the state directory "
                f"{self.path.parent}; stop it first, or give this one its own state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the daemon holding ``state_dir`` (0 when it wrote none yet), or None
    when no daemon holds it. Takes the lock shared for an instant, never exclusively."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
