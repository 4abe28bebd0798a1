"""deploy/kubernetes/rbac.yaml is exactly what the sharded daemon uses.

Two replicas run against the API double (start, hand shards over, stop cleanly), and a
handover large enough to span several ConfigMaps is written twice through the daemon's
own client (its older parts deleted); every request the daemon's client made (its
User-Agent tells them from the test's) must be allowed by the Role, in the Role's
namespace, and every verb the Role grants must have been used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon import shard_handover
from reconciler.daemon.shard_handover import HandoverStore
from reconciler.drivers.leases import USER_AGENT
from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import wait_for
from tests.k8s.apiserver_double import RequestRecord
from tests.sharding.conftest import NAMESPACE, Home
from tests.sharding.replica_kit import Fleet, Recorder, names_on, workflow
from tests.sharding.test_handover import seeded
from tests.sharding.test_manifests import by_kind, rendered

ALL = {0, 1, 2, 3}


@dataclasses.dataclass(frozen=True)
class Access:
    verb: str
    group: str
    resource: str
    namespace: str | None


def access(record: RequestRecord) -> Access:
    parts = [p for p in record.path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise AssertionError(f"a non-resource request {record.method} {record.path}")
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    named = len(rest) >= 2
    verb = {
        "GET": "get" if named else ("watch" if record.query.get("watch") else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[record.method]
    return Access(verb, group, rest[0], namespace)


def granted() -> set[Access]:
    role = by_kind(rendered())[("Role", "reconciler")]
    return {
        Access(verb, group, resource, role["metadata"]["namespace"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder(hold_s=0.0)
    yield made
    made.stop()


@pytest.fixture
def remote(make_git_remote: MakeGitRemote, recorder: Recorder) -> GitRemote:
    files = {f"workflows/{n}.yaml": workflow(n, recorder.base) for n in names_on(ALL, 6)}
    return make_git_remote(files=files)


def test_the_role_allows_every_call_of_the_daemon_and_nothing_unused(
    home: Home,
    remote: GitRemote,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert home.double is not None
    fleet = Fleet(home=home, remote=remote.path, tmp=tmp_path, recorder=recorder)
    try:
        fleet.start("r-0")
        wait_for("r-0 on every shard", lambda: fleet.working("r-0", ALL), timeout=45)
        fleet.start("r-1")
        wait_for("r-1 on its shards", lambda: fleet.working("r-1", {1, 3}), timeout=45)
    finally:
        fleet.stop()  # clean stops: handovers saved, leases given back
    monkeypatch.setattr(shard_handover, "PART_BYTES", 2000)
    store = seeded(tmp_path / "big.db", [f"wf-{i}" for i in range(30)])
    handovers = HandoverStore(home.coordination(), prefix="reconciler-big")
    keys = [f"Workflow/wf-{i}" for i in range(30)]
    first = shard_handover.collect(store, keys, shard=0, holder="r-0", transitions=1)
    version = handovers.write(first, shard=0, holder="r-0", transitions=1, expect=None)
    again = shard_handover.collect(store, keys, shard=0, holder="r-0", transitions=2)
    handovers.write(again, shard=0, holder="r-0", transitions=2, expect=version)

    daemon_calls = [r for r in home.double.requests if r.agent == USER_AGENT]
    assert daemon_calls
    used = {access(r) for r in daemon_calls}
    allowed = granted()
    assert used - allowed == set(), "calls the Role does not allow"
    assert allowed - used == set(), "grants the daemon never uses"
    assert {a.namespace for a in used} == {NAMESPACE}
