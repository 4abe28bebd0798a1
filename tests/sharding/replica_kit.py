"""Replicas of a sharded daemon as real processes, and what the tests read back from them.

Each replica is ``python -m reconciler run`` with a config of its own (its identity and
state directory, the same Git remote, the same home API server, reached through a
:class:`TcpProxy` of its own so a test can partition one). Workflows call a loopback
HTTP recorder: ``/first/NAME``, ``/hold/NAME`` (answered after ``hold_s``: the step a
test interrupts) and ``/last/NAME``; the recorder counts every request, so a step run
twice shows as two requests.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.core import shards
from reconciler.daemon.shard_handover import HandoverStore
from tests.daemon.harness import DaemonProcess, daemon_env, read_status
from tests.sharding.conftest import NAMESPACE, Home
from tests.sharding.tcp_proxy import TcpProxy

TOKEN = "shard-test-token-3f9a"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
WEBHOOK_SECRET = "shard-hook-secret-5d1e"
SHARDS = 4
LEASE_S, RENEW_S, RETRY_S = 4.0, 3.0, 0.5


class Recorder:
    """The loopback HTTP server the workflows' steps call."""

    def __init__(self, *, hold_s: float) -> None:
        self.hold_s = hold_s
        self.released = threading.Event()
        """Set by a test to end every held request now (else each holds ``hold_s``)."""
        self.hits: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with recorder._lock:
                    recorder.hits.append((time.monotonic(), self.path))
                if self.path.startswith("/hold/"):
                    recorder.released.wait(recorder.hold_s)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p in self.hits if p == path)

    def counts(self, prefix: str) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(
                p.rsplit("/", 1)[1] for _, p in self.hits if p.startswith(prefix)
            )

    def after(self, moment: float) -> list[str]:
        with self._lock:
            return [p for t, p in self.hits if t > moment]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def workflow(name: str, base: str) -> str:
    """first -> hold (slow) -> last, each an HTTP call the recorder counts."""
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  trigger: on_change
  config: {{retries: 0}}
  workflows:
    provision:
      nodes:
        - id: first
          type: http_request
          user_inputs: {{method: POST, url: "{base}/first/{name}", body: {{}}}}
        - id: hold
          type: http_request
          user_inputs: {{method: POST, url: "{base}/hold/{name}", body: {{}}, timeout: 60s}}
        - id: last
          type: http_request
          user_inputs: {{method: POST, url: "{base}/last/{name}", body: {{}}}}
      edges:
        - {{source: first, dest: hold}}
        - {{source: hold, dest: last}}
"""


def shard_of_workflow(name: str) -> int:
    return shards.stable_shard(f"Workflow/{name}", SHARDS)


def names_on(shard_set: set[int], count: int = 16) -> list[str]:
    return [f"wf-{i}" for i in range(count) if shard_of_workflow(f"wf-{i}") in shard_set]


@dataclasses.dataclass
class Replica:
    identity: str
    process: DaemonProcess
    proxy: TcpProxy

    def kill9(self) -> None:
        self.process.kill9()


class Fleet:
    """The replicas of one test, the home cluster, the remote and the recorder."""

    def __init__(self, *, home: Home, remote: Path, tmp: Path, recorder: Recorder) -> None:
        assert home.double is not None
        self.home = home
        self.remote = remote
        self.tmp = tmp
        self.recorder = recorder
        self.replicas: dict[str, Replica] = {}
        self.handovers = HandoverStore(home.coordination(), prefix="reconciler")

    def start(self, identity: str, *, api_port: int | None = None, **sharding: Any) -> Replica:
        assert self.home.double is not None
        folder = self.tmp / identity
        secrets = folder / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        existing = self.replicas.get(identity)
        proxy = existing.proxy if existing else TcpProxy("127.0.0.1", _port(self.home.double.url))
        kubeconfig = yaml.safe_load(self.home.kubeconfig)
        kubeconfig["clusters"][0]["cluster"]["server"] = proxy.url()
        (secrets / "home-kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        config = {
            "repo": {"url": str(self.remote), "branch": "main", "poll_interval": "300ms"},
            "resync_interval": "10m",
            "status": {"branch": "reconciler/status"},
            "state_dir": str(folder / "state"),
            "secrets_dir": str(secrets),
            "logging": {"format": "json"},
            "sharding": {
                "shards": SHARDS,
                "identity": identity,
                "namespace": NAMESPACE,
                "lease_duration": f"{LEASE_S:g}s",
                "renew_deadline": f"{RENEW_S:g}s",
                "retry_period": f"{RETRY_S:g}s",
                "handover_grace": "20s",
                "checkpoint_interval": "200ms",
                "kubeconfig": {"secret": "home-kubeconfig"},
                **sharding,
            },
        }
        if api_port is not None:
            config["api"] = {
                "listen": f"127.0.0.1:{api_port}",
                "tokens": [{"name": "ops", "role": "admin", "sha256": TOKEN_SHA256}],
                "webhook_secret": "webhook-hmac",
            }
            (secrets / "webhook-hmac").write_text(WEBHOOK_SECRET)
            config["sharding"]["advertise_url"] = f"http://127.0.0.1:{api_port}"
        path = folder / "reconciler.yaml"
        path.write_text(yaml.safe_dump(config))
        process = DaemonProcess(path, folder / "state", folder / "daemon.log", daemon_env())
        replica = Replica(identity, process.start(), proxy)
        self.replicas[identity] = replica
        return replica

    def holders(self) -> dict[int, str | None]:
        """Shard -> holder as the Leases say (None: free or absent)."""
        found: dict[int, str | None] = dict.fromkeys(range(SHARDS))
        for lease in self.home.leases.list_namespaced_lease(NAMESPACE).items:
            name = lease.metadata.name
            if name.startswith("reconciler-shard-"):
                found[int(name.rsplit("-", 1)[1])] = lease.spec.holder_identity
        return found

    def shards_of(self, identity: str) -> set[int]:
        return {s for s, holder in self.holders().items() if holder == identity}

    def working(self, identity: str, shard_set: set[int]) -> bool:
        """``identity`` holds exactly these shards and logged that it works on them."""
        if self.shards_of(identity) != shard_set:
            return False
        logs = self.replicas[identity].process.logs()
        working = {r.get("shard") for r in logs if r.get("msg", "").startswith("working on")}
        return shard_set <= working

    def handover_steps(self, shard: int) -> dict[str, dict[str, str]]:
        """Workflow name -> node -> step status, as the shard's saved handover says."""
        handover, _ = self.handovers.read(shard)
        if handover is None:
            return {}
        found: dict[str, dict[str, str]] = {}
        for row in handover.executions:
            if row["status"] in ("queued", "running"):
                found[row["name"]] = {s["node_id"]: s["status"] for s in row["steps"]}
        return found

    def status(self, name: str) -> dict[str, Any] | None:
        return read_status(self.remote, f"status/workflows/{name}.yaml")

    def stop(self) -> None:
        for replica in self.replicas.values():
            if replica.process.alive():
                replica.process.stop(timeout=40)
            replica.proxy.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
