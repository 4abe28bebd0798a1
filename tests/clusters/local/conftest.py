"""A tiny real HTTP server for the local driver to supervise, and drivers on a tmp state dir.

The server (a script written per test) answers ``/health`` and ``/v1/whoami`` with its
pid, its helper child's pid and an env value, and logs each request to stderr, so tests
can tell servers apart, see the process tree go, and find the output in the log file.
``/v1/whoami`` waits ``SLEEP_S`` seconds (env) first, ``/v1/sleep?seconds=S`` S seconds:
a slow model server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.drivers.clusters.local import LocalClusterDriver, LocalSettings
from reconciler.drivers.clusters.protocol import EndpointSpec, WorkerResources

SERVER = r"""
import http.server, json, os, subprocess, sys, time, urllib.parse
port = int(sys.argv[1])
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
sleep_s = float(os.environ.get("SLEEP_S", "0"))
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path not in ("/health", "/v1/whoami", "/v1/sleep"):
            self.send_error(404)
            return
        if url.path != "/health":
            query = urllib.parse.parse_qs(url.query)
            time.sleep(float(query.get("seconds", [sleep_s])[0]))
        body = json.dumps(
            {"pid": os.getpid(), "helper": helper.pid, "greeting": os.environ.get("GREETING")}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, format, *args):
        sys.stderr.write("request " + (format % args) + "\n")
print(f"tiny server listening on 127.0.0.1:{port}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

FAST = LocalSettings(
    probe_interval_s=0.05,
    health_timeout_s=1.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.4,
    healthy_resets_backoff_s=1.0,
    startup_timeout_s=30.0,
    unhealthy_restart_s=5.0,
    stop_grace_s=5.0,
    port_free_timeout_s=10.0,
    autoscale_interval_s=0.2,
    signal_window_s=2.0,
    queue_timeout_s=60.0,
    drain_timeout_s=30.0,
)


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_server.py"
    path.write_text(SERVER)
    return path


def endpoint(
    script: Path, *, name: str = "tiny", greeting: str = "hello", **changes: Any
) -> EndpointSpec:
    fields: dict[str, Any] = {
        "name": name,
        "owner_labels": {"reconciler/deployment": name},
        "image": None,
        "command": (sys.executable, str(script), "{port}"),
        "args": (),
        "env": {"GREETING": greeting},
        "port": 8000,
        "health_path": "/health",
        "resources": WorkerResources(),
        "workers": 1,
        "strategy": "recreate",
    }
    fields.update(changes)
    return EndpointSpec(**fields)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, what: str, timeout_s: float = 30.0
) -> Any:
    """Poll ``check`` until it returns a truthy value, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def get_json(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, url
        data: dict[str, Any] = json.loads(await response.read())
        return data


@pytest.fixture
async def make_driver(tmp_path: Path) -> AsyncIterator[Callable[[], LocalClusterDriver]]:
    """Drivers on one state dir (a second one stands for a restarted daemon)."""
    made: list[LocalClusterDriver] = []

    def make() -> LocalClusterDriver:
        driver = LocalClusterDriver(state_dir=tmp_path / "state", settings=FAST)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        await driver.close()
    cleaner = LocalClusterDriver(state_dir=tmp_path / "state", settings=FAST)
    await cleaner.start()
    for name in list(cleaner._registry.endpoints):
        await cleaner.delete_endpoint(name)
    await cleaner.close()
