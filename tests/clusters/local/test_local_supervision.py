"""The local driver runs real server processes: serve, restart, adopt, replace, remove.

An endpoint is a proxy on its stable port (found by the endpoint's marker) in front of
its workers (found by markers that start with it); these tests see both as processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.drivers.clusters import local_processes as procs
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.protocol import (
    EndpointNotFoundError,
    EndpointObservation,
    InvalidEndpointError,
    JobHandle,
    JobSpec,
    WorkerResources,
)
from tests.clusters.local.conftest import endpoint, eventually, get_json

MakeDriver = Callable[[], LocalClusterDriver]


async def ready(driver: LocalClusterDriver, name: str = "tiny") -> EndpointObservation:
    async def check() -> EndpointObservation | None:
        seen = await driver.observe_endpoint(name)
        return seen if seen.ready else None

    found: EndpointObservation = await eventually(check, what=f"{name} ready")
    return found


def workers(driver: LocalClusterDriver, name: str = "tiny") -> list[procs.ProcessIdentity]:
    """The worker processes of endpoint ``name``, found by their marker."""
    prefix = f"{driver._marker(name)}::worker::"
    return [identity for identity, _ in procs.marked_with_prefix(prefix)]


def listening_address(port: int) -> str:
    """The local address the socket listening on ``port`` is bound to (from /proc)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return ""


async def test_serves_on_loopback_with_output_in_its_log(
    make_driver: MakeDriver, server_script: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    driver = make_driver()
    first = await driver.apply_endpoint(endpoint(server_script))
    assert first.exists and first.workers_desired == 1
    seen = await ready(driver)
    assert seen.endpoint_url is not None
    port = int(seen.endpoint_url.removeprefix("http://127.0.0.1:").removesuffix("/v1"))
    assert seen.endpoint_url == f"http://127.0.0.1:{port}/v1"
    assert (seen.workers_ready, seen.resources) == (1, WorkerResources(gpus=0))
    who = await get_json(f"{seen.endpoint_url}/whoami")
    assert who["greeting"] == "hello"
    assert os.getsid(who["pid"]) == who["pid"], "the server leads a session of its own"
    assert listening_address(port) == "127.0.0.1"
    log = Path(driver._log_path("tiny")).read_text()
    assert "tiny server listening" in log and "GET /v1/whoami" in log
    captured = capfd.readouterr()
    assert "tiny server" not in captured.out + captured.err


async def test_killed_server_comes_back_on_the_same_port(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script))
    before = await ready(driver)
    old = await get_json(f"{before.endpoint_url}/whoami")
    os.kill(old["pid"], signal.SIGKILL)

    async def replaced() -> dict[str, int] | None:
        seen = await driver.observe_endpoint("tiny")
        if not seen.ready:
            return None
        who = await get_json(f"{seen.endpoint_url}/whoami")
        return who if who["pid"] != old["pid"] else None

    new = await eventually(replaced, what="a restarted server")
    after = await driver.observe_endpoint("tiny")
    assert after.endpoint_url == before.endpoint_url
    assert "restarted 1 time(s)" in after.message
    assert new["pid"] != old["pid"]
    assert procs.start_ticks(old["helper"]) is None, "the killed server's child went with it"
    assert len(procs.marked_leaders(driver._marker("tiny"))) == 1, "one proxy"
    assert [w.pid for w in workers(driver)] == [new["pid"]]


async def test_restarted_daemon_adopts_the_running_server(
    make_driver: MakeDriver, server_script: Path
) -> None:
    first = make_driver()
    await first.apply_endpoint(endpoint(server_script))
    seen = await ready(first)
    who = await get_json(f"{seen.endpoint_url}/whoami")
    proxies = procs.marked_leaders(first._marker("tiny"))
    await first.close()  # the daemon goes away; its servers stay

    second = make_driver()
    await second.start()
    again = await ready(second)
    assert again.endpoint_url == seen.endpoint_url
    assert (await get_json(f"{again.endpoint_url}/whoami"))["pid"] == who["pid"]
    assert await second.apply_endpoint(endpoint(server_script)) is not None
    assert (await get_json(f"{again.endpoint_url}/whoami"))["pid"] == who["pid"]
    assert workers(second) == [
        procs.ProcessIdentity(who["pid"], procs.start_ticks(who["pid"]) or -1)
    ]
    assert procs.marked_leaders(second._marker("tiny")) == proxies, "the same proxy"


async def test_adoption_finds_a_server_the_registry_lost(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    first = make_driver()
    await first.apply_endpoint(endpoint(server_script))
    seen = await ready(first)
    who = await get_json(f"{seen.endpoint_url}/whoami")
    await first.close()
    registry = tmp_path / "state" / "endpoints.json"
    document = json.loads(registry.read_text())
    tiny = document["endpoints"]["tiny"]
    proxy_pid = tiny["proxy"]["pid"]
    tiny["proxy"]["pid"] = None  # a crash between start and save, of the proxy
    tiny["workers"][0]["process"]["pid"] = None  # and of the worker
    registry.write_text(json.dumps(document))

    second = make_driver()
    await second.start()
    await ready(second)
    assert (await get_json(f"{seen.endpoint_url}/whoami"))["pid"] == who["pid"]
    assert [p.pid for p in procs.marked_leaders(second._marker("tiny"))] == [proxy_pid]
    assert [w.pid for w in workers(second)] == [who["pid"]]


async def test_a_version_1_server_is_replaced_by_a_proxy_and_a_worker(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    """A registry of the one-process layout (the server itself on the endpoint's port):
    its server is stopped, and a proxy and a worker serve on the same port."""
    port = procs.allocate_port(avoid=set())
    spec = endpoint(server_script)
    argv = [*spec.command]
    marker = f"{(tmp_path / 'state').resolve()}::tiny"
    old, identity = procs.spawn(
        [part.replace("{port}", str(port)) for part in argv],
        env=procs.child_env(dict(spec.env), marker=marker),
        log_path=tmp_path / "old.log",
        cwd=tmp_path,
    )
    record = {
        "name": "tiny", "port": port, "argv": argv, "env": dict(spec.env),
        "health_path": "/health", "digest": "old", "labels": {},
        "pid": identity.pid, "start_ticks": identity.start_ticks, "restarts": 0,
    }  # fmt: skip
    registry = tmp_path / "state" / "endpoints.json"
    registry.parent.mkdir(parents=True)
    registry.write_text(json.dumps({"version": 1, "endpoints": {"tiny": record}}))

    driver = make_driver()
    await driver.start()
    seen = await ready(driver)
    assert seen.endpoint_url == f"http://127.0.0.1:{port}/v1"
    assert procs.start_ticks(identity.pid) is None, "the one-process server is stopped"
    old.wait(timeout=10)
    who = await get_json(f"{seen.endpoint_url}/whoami")
    assert [w.pid for w in workers(driver)] == [who["pid"]]


async def test_removal_stops_the_process_tree_and_frees_the_port(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script))
    seen = await ready(driver)
    who = await get_json(f"{seen.endpoint_url}/whoami")
    port = int(str(seen.endpoint_url).split(":")[2].split("/")[0])

    assert await driver.delete_endpoint("tiny") is True
    assert procs.start_ticks(who["pid"]) is None
    assert procs.start_ticks(who["helper"]) is None, "the server's child is stopped too"
    assert procs.port_is_free(port)
    assert not driver._log_path("tiny").exists()
    gone = await driver.observe_endpoint("tiny")
    assert (gone.exists, gone.endpoint_url) == (False, None)
    assert await driver.delete_endpoint("tiny") is False
    with pytest.raises(EndpointNotFoundError):
        await driver.scale_endpoint("tiny", 1)


async def test_changed_command_replaces_the_server_and_keeps_the_port(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, greeting="hello"))
    before = await ready(driver)
    old = await get_json(f"{before.endpoint_url}/whoami")
    await driver.apply_endpoint(endpoint(server_script, greeting="bonjour"))
    after = await ready(driver)
    new = await get_json(f"{after.endpoint_url}/whoami")
    assert after.endpoint_url == before.endpoint_url
    assert (new["greeting"], procs.start_ticks(old["pid"])) == ("bonjour", None)


async def test_a_crashing_server_is_retried_with_backoff_and_says_why(
    make_driver: MakeDriver, tmp_path: Path
) -> None:
    driver = make_driver()
    spec = endpoint(
        tmp_path, command=(sys.executable, "-c", "import sys; print('boom'); sys.exit(3)")
    )
    await driver.apply_endpoint(spec)

    async def retried() -> EndpointObservation | None:
        seen = await driver.observe_endpoint("tiny")
        return seen if "restarted 2 time(s)" in seen.message else None

    seen = await eventually(retried, what="two restarts")
    assert not seen.ready and seen.workers_ready == 0
    assert "exited with 3" in seen.message
    assert driver._log_path("tiny").read_text().count("boom") >= 2


async def test_what_the_local_driver_cannot_do_is_refused(
    make_driver: MakeDriver, server_script: Path
) -> None:
    driver = make_driver()
    with pytest.raises(InvalidEndpointError, match="1 or more"):
        await driver.apply_endpoint(endpoint(server_script, workers=0))
    with pytest.raises(InvalidEndpointError, match="GPU"):
        await driver.apply_endpoint(endpoint(server_script, resources=WorkerResources(gpus=1)))
    with pytest.raises(InvalidEndpointError, match="only an image"):
        await driver.apply_endpoint(endpoint(server_script, command=(), image="nginx"))
    with pytest.raises(InvalidEndpointError, match="endpoint name"):
        await driver.apply_endpoint(endpoint(server_script, name="../escape"))
    missing = await driver.apply_endpoint(endpoint(server_script, command=("/nonexistent/srv",)))
    assert "cannot start '/nonexistent/srv'" in missing.message


async def test_jobs_run_to_completion_with_logs_and_exit_code(make_driver: MakeDriver) -> None:
    driver = make_driver()
    handle = await driver.run_job(
        JobSpec(
            name="hello-job",
            owner_labels={},
            image=None,
            command=(sys.executable, "-c"),
            args=("import os, sys; print('job says', os.environ['WHO']); sys.exit(4)",),
            env={"WHO": "me"},
        )
    )

    async def ended() -> bool:
        return (await driver.job_status(handle)).state in ("succeeded", "failed")

    await eventually(ended, what="the job to end")
    status = await driver.job_status(handle)
    assert (status.state, status.exit_code) == ("failed", 4)
    assert "job says me" in await driver.job_logs(handle)
    assert await driver.job_logs(handle, tail_bytes=3) == "me\n"
    with pytest.raises(Exception, match="no local job"):
        await driver.job_status(JobHandle(name="other"))
