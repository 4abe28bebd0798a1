"""sd_notify over a real unix datagram socket: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""

from __future__ import annotations

import signal
import time

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import NotifySocket, wait_for


def test_notify_protocol_through_a_daemon_life(
    remote: GitRemote, start_daemon: StartDaemon, notify_socket: NotifySocket
) -> None:
    daemon = start_daemon(notify=notify_socket)
    wait_for("READY=1", lambda: notify_socket.seen("READY=1"))
    ready = next(m for m in notify_socket.messages if "READY=1" in m.splitlines())
    status = [line for line in ready.splitlines() if line.startswith("STATUS=")]
    assert status and f"revision {remote.tip('main')[:12]}" in status[0]

    def pings() -> int:
        return sum("WATCHDOG=1" in m.splitlines() for m in notify_socket.drain())

    before = pings()
    # WATCHDOG_USEC=400000: a ping every 0.2 s while the loop lives; three more must come.
    wait_for("three more watchdog pings", lambda: pings() >= before + 3, every=0.05)

    sent_after = time.monotonic_ns() // 1000
    daemon.signal(signal.SIGHUP)
    wait_for("RELOADING=1", lambda: notify_socket.seen("RELOADING=1"))
    reload_index = max(i for i, m in enumerate(notify_socket.messages) if "RELOADING=1" in m)
    wait_for(
        "READY=1 after reload",
        lambda: any("READY=1" in m.splitlines() for m in notify_socket.drain()[reload_index + 1 :]),
    )
    # systemd needs the reload's start on CLOCK_MONOTONIC, which this host shares with us.
    stamps = [
        int(line.removeprefix("MONOTONIC_USEC="))
        for line in notify_socket.messages[reload_index].splitlines()
        if line.startswith("MONOTONIC_USEC=")
    ]
    assert len(stamps) == 1, notify_socket.messages[reload_index]
    assert sent_after <= stamps[0] <= time.monotonic_ns() // 1000

    started = time.monotonic()
    assert daemon.stop(timeout=15) == 0
    assert time.monotonic() - started < 10
    assert notify_socket.seen("STOPPING=1")


def test_bad_config_is_a_clear_error_naming_the_field(tmp_path, start_daemon: StartDaemon) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("repo:\n  url: /nowhere\n  poll_interval: soon\n")
    daemon = start_daemon(config_path=config)
    assert daemon.wait_exit(timeout=20) == 1
    text = daemon.log_text()
    assert "repo.poll_interval" in text and "bad.yaml:3" in text
    assert "Traceback" not in text
