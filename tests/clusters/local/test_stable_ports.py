"""A local endpoint removed and created again gets its port back, so saved URLs keep working.

The registry remembers each name's port past the endpoint's removal (and past a daemon
restart); the port is reused while nothing else holds it, and a new one is taken (and
remembered) when something does.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.clusters.local_registry import Registry
from tests.clusters.local.conftest import endpoint, eventually, get_json

MakeDriver = Callable[[], LocalClusterDriver]


async def _serving_port(driver: LocalClusterDriver, name: str) -> int:
    async def ready() -> str | None:
        seen = await driver.observe_endpoint(name)
        return seen.endpoint_url if seen.ready else None

    url: str = await eventually(ready, what=f"{name} serving")
    await get_json(f"{url}/whoami")
    return int(url.split(":")[2].split("/")[0])


async def test_a_recreated_endpoint_gets_its_port_back_even_after_a_restart(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, name="embed"))
    first = await _serving_port(driver, "embed")
    assert await driver.delete_endpoint("embed") is True
    await driver.apply_endpoint(endpoint(server_script, name="embed"))
    assert await _serving_port(driver, "embed") == first
    assert await driver.delete_endpoint("embed") is True
    await driver.close()

    restarted = make_driver()  # a new daemon reads the remembered port from disk
    saved = json.loads((tmp_path / "state" / "endpoints.json").read_text())
    assert saved["ports"] == {"embed": first} and saved["endpoints"] == {}
    await restarted.apply_endpoint(endpoint(server_script, name="embed"))
    assert await _serving_port(restarted, "embed") == first


async def test_a_port_taken_meanwhile_is_replaced_and_the_new_one_remembered(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, name="embed"))
    first = await _serving_port(driver, "embed")
    assert await driver.delete_endpoint("embed") is True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        await driver.apply_endpoint(endpoint(server_script, name="embed"))
        second = await _serving_port(driver, "embed")
    assert second != first
    registry = Registry(tmp_path / "state" / "endpoints.json")
    registry.load()
    assert registry.ports["embed"] == second


async def test_a_new_name_never_takes_a_port_another_name_remembers(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path
) -> None:
    driver = make_driver()
    await driver.apply_endpoint(endpoint(server_script, name="embed"))
    first = await _serving_port(driver, "embed")
    assert await driver.delete_endpoint("embed") is True
    assert driver._port_for("other") != first
    assert driver._registry.ports == {"embed": first, "other": driver._registry.ports["other"]}
