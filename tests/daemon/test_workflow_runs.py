"""Workflows through the daemon: outputs handed along, retries, and a missing secret."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import condition, read_status, wait_for


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_GET(self) -> None:
        payload = json.dumps({"model": "phi", "score": 0.93}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(("POST", self.path, self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _pipeline(base: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: pipeline}}
spec:
  trigger: on_change
  config: {{retries: 2, retry_delay: 100ms}}
  user_params: {{target: {base}/report}}
  workflows:
    provision:
      nodes:
        - id: fetch
          type: http_request
          user_inputs: {{method: GET, url: "{base}/eval"}}
        - id: flaky
          type: fail
          user_inputs: {{message: not yet, until_attempt: 2}}
        - id: report
          type: http_request
          previous_node_inputs: {{fetch: json}}
          user_inputs:
            method: POST
            url: ${{{{ target }}}}
            body: {{score: "${{{{ fetch.json }}}}", status: "${{{{ fetch.status }}}}"}}
      edges:
        - {{source: fetch, dest: flaky}}
        - {{source: flaky, dest: report}}
"""


def test_outputs_flow_along_the_graph_and_retries_are_used(
    remote: GitRemote, start_daemon: StartDaemon, loopback_server: tuple[str, list]
) -> None:
    base, received = loopback_server
    head = remote.writer.commit_and_push({"pipeline.yaml": _pipeline(base)}, "pipeline")
    daemon = start_daemon()
    status = wait_for(
        "pipeline succeeded",
        lambda: (
            (s := read_status(remote.path, "status/workflows/pipeline.yaml"))
            and s["observed_revision"] == head
            and s["phase"] == "Ready"
            and s
        ),
    )
    assert condition(status, "Ready")["status"] == "True"
    assert len(received) == 1
    method, path, body = received[0]
    assert (method, path) == ("POST", "/report")
    assert json.loads(body) == {"score": {"model": "phi", "score": 0.93}, "status": 200}
    execution = daemon.executions("Workflow", "pipeline")[0]["id"]
    attempts = {s["node_id"]: s["attempts"] for s in daemon.steps(execution)}
    assert attempts == {"fetch": 1, "flaky": 2, "report": 1}


def test_a_missing_secret_stalls_the_credential(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    head = remote.writer.commit_and_push(
        {
            "more.yaml": (
                "apiVersion: reconciler/v1\nkind: Credential\nmetadata: {name: hf}\n"
                "spec: {provider: hugging_face, secret: hf-token-absent}\n"
            )
        },
        "hf credential",
    )
    start_daemon()
    status = wait_for(
        "stalled credential",
        lambda: (
            (s := read_status(remote.path, "status/credentials/hf.yaml"))
            and s["phase"] == "Stalled"
            and s
        ),
    )
    stalled = condition(status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "SecretNotFound"
    assert "hf-token-absent" in stalled["message"]
    assert status["observed_revision"] == head
    assert condition(status, "Ready")["status"] == "False"
