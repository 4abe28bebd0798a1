"""Workflow notifications and deprovision through a real daemon.

Notifications go to a receiver on loopback that answers 500 to the first POST of every
event: each event still arrives exactly once by its Idempotency-Key, signed with the
secret the spec names, and the run is not held up. A daemon stopped while its events are
refused delivers them after a restart, once. A Workflow removed from Git without a
deprovision graph undoes what its last provision made, last made first.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.daemon_view import DaemonAdapter
from reconciler.drivers.notify import signature_matches
from tests.conftest import MakeGitRemote
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until
from tests.workflows.flow_template import FLOW_TEMPLATE

SECRET_VALUE = "hook-signing-value"


@dataclass
class Receiver:
    url: str
    refuse_all: bool = False
    delivered: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    """(Idempotency-Key, body, signature ok) of every POST answered 204."""
    refused: list[str] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    """Every POST waits for this before it is answered (set: no wait)."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    state.gate.set()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = self.headers.get("Idempotency-Key", "")
            state.gate.wait(timeout=30)
            signed = signature_matches(
                body, SECRET_VALUE, self.headers.get("X-Reconciler-Signature", "")
            )
            with lock:
                first = key not in state.refused
                if state.refuse_all or first:
                    state.refused.append(key)
                    code = 500
                else:
                    state.delivered.append((key, json.loads(body), signed))
                    code = 204
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def notified_workflow(url: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: announced}}
spec:
  trigger: on_change
  config:
    notifications:
      webhook: {url}
      events: [start, complete, fail]
      secret: hook-secret
  workflows:
    provision:
      nodes:
        - {{id: first, type: noop}}
        - {{id: second, type: noop}}
      edges:
        - {{source: first, dest: second}}
"""


def _secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "hook-secret").write_text(SECRET_VALUE + "\n")


async def test_each_event_arrives_once_signed_though_the_receiver_fails_first(
    tmp_path: Path, make_git_remote: MakeGitRemote, receiver: Receiver
) -> None:
    _secrets(tmp_path)
    receiver.gate.clear()  # the receiver holds every POST until the run has finished
    remote = make_git_remote(files={"w.yaml": notified_workflow(receiver.url)})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        runs = await wait_until(
            "the run succeeded",
            lambda: (r := running.executions("announced")) and r[0].status == "succeeded" and r,
        )
        assert receiver.delivered == []
        receiver.gate.set()
        delivered = await wait_until(
            "start and complete delivered", lambda: len(receiver.delivered) >= 2 and receiver
        )
        events = [(body["event"], body["execution"]["id"]) for _, body, _ in delivered.delivered]
        assert events == [("start", runs[0].id), ("complete", runs[0].id)]
        keys = [key for key, _, _ in delivered.delivered]
        assert len(set(keys)) == 2 and sorted(receiver.refused) == sorted(keys)
        assert all(signed for _, _, signed in delivered.delivered)
        complete = delivered.delivered[1][1]
        assert complete["workflow"] == "announced"
        assert complete["execution"]["status"] == "succeeded"
        assert [s["id"] for s in complete["execution"]["steps"]] == ["first", "second"]
        assert {s["status"] for s in complete["execution"]["steps"]} == {"succeeded"}
    finally:
        await running.stop()
    assert len(receiver.delivered) == 2  # nothing sent twice


async def test_events_refused_before_a_stop_are_delivered_after_the_restart_once(
    tmp_path: Path, make_git_remote: MakeGitRemote, receiver: Receiver
) -> None:
    _secrets(tmp_path)
    receiver.refuse_all = True
    remote = make_git_remote(files={"w.yaml": notified_workflow(receiver.url)})
    clock = ManualClock.at("2025-01-01T00:00:00Z")
    first = await start_daemon(tmp_path, remote.path, clock)
    try:
        hooks = first.daemon.reconciler.workflow_hooks if first.daemon.reconciler else None
        assert hooks is not None
        await wait_until(
            "the start refused and both events pending",
            lambda: receiver.refused and len(hooks.outbox.entries(status="pending")) == 2,
        )
    finally:
        await first.stop()
    receiver.refuse_all = False
    receiver.refused.clear()  # the next POST of each is answered 500 once more, then 204
    again = await start_daemon(tmp_path, remote.path, clock)
    try:
        await wait_until("both delivered", lambda: len(receiver.delivered) >= 2)
        assert sorted(body["event"] for _, body, _ in receiver.delivered) == ["complete", "start"]
        assert len(again.executions("announced")) == 1  # the restart did not rerun it
    finally:
        await again.stop()
    assert len(receiver.delivered) == 2


def flow_workflow() -> str:
    template = yaml.safe_load(FLOW_TEMPLATE)
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "Workflow",
        "metadata": {"name": "remote-model"},
        "spec": {"trigger": "on_change", "workflows": template["workflows"]},
    }
    return yaml.safe_dump(document, sort_keys=False)


def _flow_records(running: RunningDaemon) -> list[str]:
    assert running.daemon.store is not None
    rows = running.daemon.store._conn.execute(
        "SELECT key FROM daemon_state WHERE key LIKE 'flow/%' AND value != 'null'"
    ).fetchall()
    return sorted(str(row["key"]) for row in rows)


async def test_a_removed_workflow_undoes_what_its_last_provision_made_newest_first(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "openai-api-key").write_text("sk-never-printed\n")
    remote = make_git_remote(files={"flow.yaml": flow_workflow()})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        status = await wait_until(
            "provisioned",
            lambda: (
                (s := running.status("Workflow/remote-model")).get("state") == "COMPLETED" and s
            ),
        )
        made = status["resources_created"]
        assert [(r["step"], r["type"]) for r in made] == [
            ("create_connector_1", "create_connector"),
            ("register_model_2", "register_remote_model"),
            ("deploy_model_3", "deploy_model"),
        ]
        assert made[0]["resource_id"].startswith("connector-")
        assert all(r["resource_id"] for r in made)
        assert len(_flow_records(running)) == 2  # the connector and the remote model

        remote.writer.commit_and_push({"flow.yaml": None}, "remove the workflow")
        undo = await wait_until(
            "the undo ran",
            lambda: (
                (r := [e for e in running.executions("remote-model") if e.action == "delete"])
                and r[0].status == "succeeded"
                and r[0]
            ),
        )
        assert running.daemon.store is not None
        steps = sorted(running.daemon.store.get_steps(undo.id), key=lambda s: s.started_at)
        assert [(s.node_id, s.type) for s in steps] == [
            ("undo_deploy_model_3", "undeploy_model"),
            ("undo_register_model_2", "delete_model"),
            ("undo_create_connector_1", "delete_connector"),
        ]
        assert steps[2].inputs is not None
        assert steps[2].inputs["connector_id"] == made[0]["resource_id"]
        assert _flow_records(running) == []
        await wait_until(
            "the status forgotten", lambda: not running.status("Workflow/remote-model")
        )
    finally:
        await running.stop()


async def test_a_deprovision_on_request_is_announced_with_its_action(
    tmp_path: Path, make_git_remote: MakeGitRemote, receiver: Receiver
) -> None:
    _secrets(tmp_path)
    text = notified_workflow(receiver.url) + (
        "    deprovision:\n      nodes:\n        - {id: teardown, type: noop}\n"
    )
    remote = make_git_remote(files={"w.yaml": text})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        provisioned = await wait_until(
            "the provision announced",
            lambda: len(receiver.delivered) >= 2 and list(receiver.delivered),
        )
        assert [b["execution"]["action"] for _, b, _ in provisioned] == ["execute", "execute"]
        view = DaemonAdapter(running.daemon)
        execution_id = view.deprovision_workflow(name="announced", requested_by="alice")
        delivered = await wait_until(
            "the deprovision announced", lambda: len(receiver.delivered) >= 4 and receiver
        )
        later = [
            (b["event"], b["execution"]["id"], b["execution"]["action"])
            for _, b, _ in delivered.delivered[2:]
        ]
        assert later == [
            ("start", execution_id, "deprovision"),
            ("complete", execution_id, "deprovision"),
        ]
        steps = [s["id"] for s in delivered.delivered[3][1]["execution"]["steps"]]
        assert steps == ["teardown"]
    finally:
        await running.stop()
