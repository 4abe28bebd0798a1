"""sd_notify over a real unix datagram socket, as systemd would listen on it."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.drivers.sd_notify import NotifyError, SystemdNotifier


class Listener:
    """The service manager's end: a bound datagram socket and its NOTIFY_SOCKET value."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def receive(self) -> list[str]:
        data = self.sock.recv(4096)
        return data.decode().split("\n")


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    with tempfile.TemporaryDirectory(prefix="sdn-") as folder:  # short: sun_path is 108 bytes
        if request.param == "path":
            path = os.path.join(folder, "notify")
            sock.bind(path)
            env_value = path
        else:
            name = f"reconciler-test-{uuid.uuid4().hex}"
            sock.bind("\0" + name)
            env_value = "@" + name
        try:
            yield Listener(sock, env_value)
        finally:
            sock.close()


def notifier_for(listener: Listener, **extra: str) -> SystemdNotifier:
    return SystemdNotifier(environ={"NOTIFY_SOCKET": listener.env_value, **extra})


def test_ready_sends_ready_and_status(listener: Listener) -> None:
    with notifier_for(listener) as notifier:
        assert notifier.enabled
        assert notifier.ready(status="watching main\nat abc123")
        assert listener.receive() == ["READY=1", "STATUS=watching main at abc123"]


def test_each_message_arrives_as_its_own_datagram(listener: Listener) -> None:
    with notifier_for(listener) as notifier:
        notifier.watchdog()
        notifier.status("reconciling 3 objects")
        notifier.stopping()
        notifier.extend_timeout(2.5)
        assert listener.receive() == ["WATCHDOG=1"]
        assert listener.receive() == ["STATUS=reconciling 3 objects"]
        assert listener.receive() == ["STOPPING=1"]
        assert listener.receive() == ["EXTEND_TIMEOUT_USEC=2500000"]


def test_reloading_carries_the_monotonic_clock(listener: Listener) -> None:
    with notifier_for(listener) as notifier:
        before = time.monotonic_ns() // 1000
        notifier.reloading()
        after = time.monotonic_ns() // 1000
        first, second = listener.receive()
        assert first == "RELOADING=1"
        key, _, value = second.partition("=")
        assert key == "MONOTONIC_USEC"
        assert before <= int(value) <= after


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = SystemdNotifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.reloading() is False
    assert notifier.watchdog_interval() is None


def test_a_socket_nobody_listens_on_is_an_error() -> None:
    with tempfile.TemporaryDirectory(prefix="sdn-") as folder:
        notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": os.path.join(folder, "gone")})
        with pytest.raises(NotifyError, match="gone"):
            notifier.ready()


def test_an_unsupported_socket_address_is_an_error() -> None:
    with pytest.raises(NotifyError, match="unsupported NOTIFY_SOCKET"):
        SystemdNotifier(environ={"NOTIFY_SOCKET": "vsock:2:1234"}).ready()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_applies_only_to_this_process(
    environ: dict[str, str], expected: float | None
) -> None:
    assert SystemdNotifier(environ=environ).watchdog_interval() == expected


def test_a_listener_that_stops_reading_never_blocks_the_sender(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "full.sock"))
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": str(tmp_path / "full.sock")})
    failures = 0
    started = time.monotonic()
    for _ in range(200):  # far past the socket's queue length
        try:
            notifier.watchdog()
        except NotifyError:
            failures += 1
    assert time.monotonic() - started < 2.0
    assert failures > 0
    listener.close()
    notifier.close()
