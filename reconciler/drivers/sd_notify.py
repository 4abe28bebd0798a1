"""Telling systemd how the daemon is doing, over the ``$NOTIFY_SOCKET`` datagram socket.

The unit runs with ``Type=notify`` and ``WatchdogSec=``: systemd considers the daemon
started only after ``READY=1`` and restarts it when watchdog pings stop. The protocol is a
few ``KEY=value`` lines per datagram, so this small client speaks it directly instead of
pulling in libsystemd. Without ``$NOTIFY_SOCKET`` (a terminal, a test, a container) every
call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class NotifyError(Exception):
    """A message could not be delivered to the service manager."""


def _address(value: str) -> str:
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise NotifyError(
        f"unsupported NOTIFY_SOCKET {value!r}: expected an absolute path or '@abstract' name"
    )


class SystemdNotifier:
    """Sends sd_notify messages; build one per process and keep it for its lifetime."""

    def __init__(self, *, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._socket_name = env.get("NOTIFY_SOCKET") or None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (``$NOTIFY_SOCKET`` is set)."""
        return self._socket_name is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False when notification is off."""
        if self._socket_name is None:
            return False
        address = _address(self._socket_name)
        payload = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            # Non-blocking: a listener that stops reading must never stall the daemon's loop.
            self._sock.sendto(payload, address)
        except OSError as exc:
            raise NotifyError(
                f"cannot notify systemd at {self._socket_name!r}: {exc.strerror or exc}"
            ) from exc
        return True

    def ready(self, *, status: str | None = None) -> bool:
        """Startup (or a reload) finished: systemd moves the unit to active."""
        lines = ["READY=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        return self.notify(*lines)

    def reloading(self) -> bool:
        """A reload began; send ``ready()`` when it is done."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        """Shutdown began."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive ping; send at least every ``watchdog_interval() / 2`` seconds."""
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time for the current start, reload or stop."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def watchdog_interval(self) -> float | None:
        """Seconds systemd waits between pings before it kills us; None when unsupervised."""
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _one_line(text: str) -> str:
    return " ".join(text.split())
