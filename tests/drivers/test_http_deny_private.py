"""``http.deny_private``: the HTTP client refuses non-public addresses at the connect.

A real server on loopback answers when private addresses are allowed (the default); with
``deny_private`` the same URL and the name ``localhost`` are refused before any byte is
sent, and the http_request step stalls on it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon.config import load_config
from reconciler.drivers.http_client import HttpClient, HttpDeniedError, is_public_address
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepLog, StepServices
from reconciler.steps.http_request import http_request


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_what_counts_as_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_loopback_is_reached_by_default(loopback: tuple[str, list[str]]) -> None:
    host, hits = loopback
    async with HttpClient() as client:
        response = await client.request("GET", f"http://{host}/a")
    assert response.status == 200 and hits == ["/a"]


@pytest.mark.parametrize("how", ["ip", "name"])
async def test_deny_private_refuses_loopback_by_ip_and_by_name(
    loopback: tuple[str, list[str]], how: str
) -> None:
    host, hits = loopback
    port = host.rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}/b" if how == "ip" else f"http://localhost:{port}/b"
    async with HttpClient(deny_private=True) as client:
        with pytest.raises(HttpDeniedError, match="not a public address"):
            await client.request("GET", url)
    assert hits == []


async def test_the_step_stalls_with_the_reason(loopback: tuple[str, list[str]]) -> None:
    host, hits = loopback
    async with HttpClient(deny_private=True) as client:
        ctx = StepContext(
            execution_id="e1",
            node_id="call",
            step_type="http_request",
            inputs={"method": "GET", "url": f"http://{host}/c"},
            attempt=1,
            params={},
            object_key="Workflow/w",
            revision="r",
            cluster=None,
            log=StepLog(prefix="t"),
            services=StepServices(http=client),
        )
        outcome = await http_request(ctx)
    assert isinstance(outcome, outcomes.Stalled)
    assert "http.deny_private" in outcome.reason
    assert hits == []


def test_the_config_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"repo: {{url: {tmp_path}}}\nstate_dir: {tmp_path / 's'}\nhttp: {{deny_private: true}}\n"
    )
    assert load_config(path).http.deny_private is True
    path.write_text(f"repo: {{url: {tmp_path}}}\nstate_dir: {tmp_path / 's'}\n")
    assert load_config(path).http.deny_private is False
