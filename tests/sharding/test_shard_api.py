"""The API of a sharded daemon: any replica answers; what concerns one object goes to the
replica working on it, and ``reconciler shards`` / ``GET /api/v1/shards`` show who holds
what. Two real replicas, each with its API on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import wait_for
from tests.sharding.conftest import Home
from tests.sharding.replica_kit import (
    TOKEN,
    WEBHOOK_SECRET,
    Fleet,
    Recorder,
    free_port,
    names_on,
    workflow,
)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder(hold_s=0.0)
    yield made
    made.stop()


@pytest.fixture
def remote(make_git_remote: MakeGitRemote, recorder: Recorder) -> GitRemote:
    names = names_on({0, 1, 2, 3}, 8)
    files = {f"workflows/{n}.yaml": workflow(n, recorder.base) for n in names}
    return make_git_remote(files=files)


@pytest.fixture
def fleet(home: Home, remote: GitRemote, tmp_path: Path, recorder: Recorder) -> Iterator[Fleet]:
    made = Fleet(home=home, remote=remote.path, tmp=tmp_path, recorder=recorder)
    yield made
    made.stop()


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read() or b"null")


def test_any_replica_answers_and_forwards_to_the_owner(fleet: Fleet) -> None:
    ports = {"r-0": free_port(), "r-1": free_port()}
    for identity, port in ports.items():
        fleet.start(identity, api_port=port)
    wait_for(
        "two shards each",
        lambda: fleet.working("r-0", {0, 2}) and fleet.working("r-1", {1, 3}),
        timeout=120,  # two daemons start first: slow on a loaded machine
    )

    def holders(identity: str) -> dict[int, str | None]:
        status, _, answer = call(ports[identity], "GET", "/api/v1/shards")
        assert status == 200 and answer["enabled"] and answer["identity"] == identity
        return {item["shard"]: item["holder"] for item in answer["items"]}

    # each replica sees the other's leases at its next tick
    expected = {0: "r-0", 1: "r-1", 2: "r-0", 3: "r-1"}
    wait_for("both maps", lambda: holders("r-0") == expected == holders("r-1"))
    _, _, answer = call(ports["r-0"], "GET", "/api/v1/shards")
    assert {m["identity"]: m["url"] for m in answer["members"]} == {
        identity: f"http://127.0.0.1:{port}" for identity, port in ports.items()
    }
    printed = subprocess.run(
        [sys.executable, "-m", "reconciler", "shards", "--url", f"127.0.0.1:{ports['r-1']}"],
        capture_output=True,
        text=True,
        env={"RECONCILER_TOKEN": TOKEN, "PATH": ""},
        check=True,
    ).stdout
    lines = printed.splitlines()
    assert lines[0].split() == [
        "SHARD",
        "HOLDER",
        "ASSIGNED",
        "STATE",
        "MOVES",
        "CLUSTERS",
        "OBJECTS",
    ]
    assert lines[2].split()[:4] == ["1", "r-1", "r-1", "active"]
    assert lines[1].split()[:4] == ["0", "r-0", "r-0", "-"]  # asked r-1: not its own
    assert "replica r-0: alive, API http://127.0.0.1:" in printed

    [theirs] = names_on({1}, 8)[:1]
    status, headers, started = call(
        ports["r-0"], "POST", f"/api/v1/workflows/{theirs}/executions", {"params": {}}
    )
    assert status == 201, started
    assert headers["X-Reconciler-Replica"] == "r-1"  # started where the workflow lives
    wait_for(
        "the run stored on r-1",
        lambda: any(
            row["id"] == started["id"]
            for row in fleet.replicas["r-1"].process.executions("Workflow", theirs)
        ),
    )
    assert not any(
        row["id"] == started["id"]
        for row in fleet.replicas["r-0"].process.executions("Workflow", theirs)
    )
    # known by its id on r-1 only: r-0 asks its peers
    status, headers, record = call(ports["r-0"], "GET", f"/api/v1/executions/{started['id']}")
    assert status == 200 and record["id"] == started["id"]
    assert headers["X-Reconciler-Replica"] == "r-1"
    status, headers, detail = call(ports["r-0"], "GET", f"/api/v1/objects/Workflow/{theirs}")
    assert status == 200 and headers["X-Reconciler-Replica"] == "r-1"
    assert any(e["id"] == started["id"] for e in detail["last_executions"])
    [mine] = names_on({0}, 8)[:1]
    status, headers, _ = call(ports["r-0"], "GET", f"/api/v1/objects/Workflow/{mine}")
    assert status == 200 and headers["X-Reconciler-Replica"] == "r-0"
    status, _, _ = call(ports["r-0"], "GET", "/api/v1/executions/no-such-id")
    assert status == 404


def webhook_count(port: int) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith("reconciler_webhook_requests_total{") and 'outcome="accepted"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_webhook_reaching_one_replica_is_passed_on_to_each_other_once(fleet: Fleet) -> None:
    ports = {"r-0": free_port(), "r-1": free_port()}
    for identity, port in ports.items():
        fleet.start(identity, api_port=port)
    wait_for(
        "two shards each",
        lambda: fleet.working("r-0", {0, 2}) and fleet.working("r-1", {1, 3}),
        timeout=120,  # two daemons start first: slow on a loaded machine
    )
    wait_for(
        "r-0 sees r-1's API",
        lambda: len(call(ports["r-0"], "GET", "/api/v1/shards")[2]["members"]) == 2,
    )
    body = b'{"ref": "refs/heads/main"}'
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports['r-0']}/api/v1/webhooks/git", data=body, method="POST"
    )
    for name, value in {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": "delivery-1",
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202
    wait_for("r-1 got it too", lambda: webhook_count(ports["r-1"]) == 1)
    assert webhook_count(ports["r-0"]) == 1
    # passed on once: r-1 did not send it back, nor on to anyone
    assert webhook_count(ports["r-1"]) == 1 and webhook_count(ports["r-0"]) == 1
