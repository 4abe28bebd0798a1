"""``reconciler endpoints``: list and stop the local servers a daemon left serving.

Real servers (the tiny script of conftest.py) are started by a real local driver in a
daemon-shaped state dir (``<state_dir>/local``), the driver is closed as a stopping
daemon closes it, and the command is run as a person would, through ``reconciler``'s
main. A real daemon run in the test loop adopts such a server and, on shutdown, logs
the hint naming the command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.state_lock import StateDirLock
from tests.clusters.local.conftest import FAST, endpoint, eventually, get_json
from tests.conftest import MakeGitRemote
from tests.daemon.conftest import SEED
from tests.daemon.inprocess import ManualClock, start_daemon


async def _cli(argv: list[str]) -> int:
    """``reconciler ARGV`` as a person runs it (in a thread: it runs its own loop)."""
    return await asyncio.to_thread(main, argv)


def _alive(pid: int) -> bool:
    return procs.start_ticks(pid) is not None


async def _serve(state_dir: Path, script: Path, *names: str) -> dict[str, tuple[int, int, int]]:
    """Start ``names`` as a daemon would, then close the driver: the servers keep running.
    Returns each endpoint's (port, server pid, proxy pid)."""
    driver = LocalClusterDriver(state_dir=state_dir / "local", settings=FAST)
    served: dict[str, tuple[int, int, int]] = {}
    try:
        for name in names:
            await driver.apply_endpoint(endpoint(script, name=name))

            async def ready(name: str = name) -> bool:
                return (await driver.observe_endpoint(name)).ready

            await eventually(ready, what=f"{name} serving")
            seen = await driver.observe_endpoint(name)
            assert seen.endpoint_url is not None
            port = int(seen.endpoint_url.rsplit(":", 1)[1].split("/")[0])
            whoami = await get_json(f"http://127.0.0.1:{port}/v1/whoami")
            (proxy,) = procs.marked_leaders(driver._marker(name))
            served[name] = (port, int(whoami["pid"]), proxy.pid)
    finally:
        await driver.close()
    return served


async def _clean(state_dir: Path) -> None:
    cleaner = LocalClusterDriver(state_dir=state_dir / "local", settings=FAST)
    await cleaner.start()
    for name in list(cleaner._registry.endpoints):
        await cleaner.delete_endpoint(name)
    await cleaner.close()


async def test_list_then_stop_one_then_all_and_a_daemon_brings_them_back(
    tmp_path: Path, server_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "daemon-state"
    served = await _serve(state, server_script, "alpha", "beta")
    try:
        assert await _cli(["endpoints", "--state-dir", str(state)]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert listed[0].split() == ["NAME", "PORT", "STATE", "PID", "URL"]
        for line, name in zip(listed[1:], ("alpha", "beta"), strict=True):
            port, pid, proxy = served[name]
            assert line.split() == [
                name,
                str(port),
                "running",
                f"{proxy},{pid}",
                f"http://127.0.0.1:{port}/v1",
            ]

        assert await _cli(["endpoints", "stop", "alpha", "--state-dir", str(state)]) == 0
        assert "stopped alpha" in capsys.readouterr().out
        assert not _alive(served["alpha"][1]) and not _alive(served["alpha"][2])
        assert procs.port_is_free(served["alpha"][0])
        assert _alive(served["beta"][1])

        assert await _cli(["endpoints", "--json", "--state-dir", str(state)]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert rows["alpha"]["state"] == "stopped" and rows["alpha"]["pids"] == []
        assert rows["alpha"]["port"] == served["alpha"][0]  # kept for it
        assert rows["beta"]["state"] == "running" and rows["beta"]["deployment"] == "beta"

        assert await _cli(["endpoints", "stop", "--all", "--state-dir", str(state)]) == 0
        assert "stopped beta" in capsys.readouterr().out
        assert not _alive(served["beta"][1])

        # A daemon started later runs them again, on the same ports.
        driver = LocalClusterDriver(state_dir=state / "local", settings=FAST)
        await driver.start()
        try:
            for name, (port, _pid, _proxy) in served.items():

                async def back(name: str = name) -> bool:
                    return (await driver.observe_endpoint(name)).ready

                await eventually(back, what=f"{name} started again")
                seen = await driver.observe_endpoint(name)
                assert seen.endpoint_url == f"http://127.0.0.1:{port}/v1"
        finally:
            await driver.close()
    finally:
        await _clean(state)


async def test_stop_is_refused_while_a_daemon_holds_the_state_dir(
    tmp_path: Path, server_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "daemon-state"
    served = await _serve(state, server_script, "alpha")
    daemon_lock = StateDirLock(state)
    daemon_lock.acquire()  # what a running daemon holds for its whole life
    try:
        assert await _cli(["endpoints", "stop", "alpha", "--state-dir", str(state)]) == 1
        error = capsys.readouterr().err
        assert f"pid {os.getpid()}" in error and "stop the daemon first" in error
        assert _alive(served["alpha"][1])
        assert await _cli(["endpoints", "--state-dir", str(state)]) == 0
        listing = capsys.readouterr()
        assert "alpha" in listing.out and "supervises these servers" in listing.err
    finally:
        daemon_lock.release()
        await _clean(state)


async def test_usage_errors_name_what_to_do(
    tmp_path: Path, server_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "daemon-state"
    await _serve(state, server_script, "alpha")
    try:
        assert await _cli(["endpoints", "stop", "nope", "--state-dir", str(state)]) == 1
        assert "no local endpoint named 'nope' (known: alpha)" in capsys.readouterr().err
        assert await _cli(["endpoints", "stop", "--state-dir", str(state)]) == 1
        assert "names or --all" in capsys.readouterr().err
        missing = tmp_path / "absent.yaml"
        assert await _cli(["endpoints", "--config", str(missing)]) == 1
        assert "absent.yaml" in capsys.readouterr().err
    finally:
        await _clean(state)


async def test_a_stopping_daemon_names_the_command_for_servers_left_serving(
    tmp_path: Path,
    server_script: Path,
    make_git_remote: MakeGitRemote,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = tmp_path / "state"  # start_daemon's state dir
    served = await _serve(state, server_script, "alpha")
    remote = make_git_remote(files=SEED)
    try:
        running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
        with caplog.at_level(logging.INFO, logger="reconciler.daemon"):
            await running.stop()
        (hint,) = [r for r in caplog.records if "keep serving" in r.getMessage()]
        assert getattr(hint, "endpoints") == ["alpha"]  # noqa: B009
        assert f"reconciler endpoints list --state-dir {state}" in getattr(hint, "hint")  # noqa: B009
        assert _alive(served["alpha"][1])  # adopted, then left serving
    finally:
        await _clean(state)
