"""Two replicas, four shards, one Git remote, one home API server: real daemon processes.

- kill -9 of a replica in the middle of its chains: the other takes its shards within
  the lease duration + 5 s and continues every interrupted chain exactly once, from the
  handover the dead one saved (only the step that was running runs again); when the
  killed replica comes back, the shards it is assigned move back to it at a step
  boundary, and its own stale copy of those chains is not run again;
- a replica cut off from the API server stops acting on its shards before their leases
  can lapse, and starts nothing under the lost leases;
- a replica added while chains run takes its shards over at a step boundary: no step
  lost, none run twice.

Deadlines everywhere; no fixed sleeps. Lease 4 s, renew deadline 3 s, retry 0.5 s.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import DaemonProcess, wait_for
from tests.sharding.conftest import Home
from tests.sharding.replica_kit import (
    LEASE_S,
    RENEW_S,
    SHARDS,
    Fleet,
    Recorder,
    names_on,
    workflow,
)

ALL = set(range(SHARDS))
HANDED_OVER = "handed over: another replica continued this object"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder(hold_s=4.0)
    yield made
    made.stop()


@pytest.fixture
def remote(make_git_remote: MakeGitRemote) -> GitRemote:
    return make_git_remote(files={"README.md": "specs\n"})


@pytest.fixture
def fleet(home: Home, remote: GitRemote, tmp_path: Path, recorder: Recorder) -> Iterator[Fleet]:
    made = Fleet(home=home, remote=remote.path, tmp=tmp_path, recorder=recorder)
    yield made
    made.stop()


def push_workflows(remote: GitRemote, recorder: Recorder, names: list[str]) -> str:
    files = {f"workflows/{name}.yaml": workflow(name, recorder.base) for name in names}
    return remote.writer.commit_and_push(files, f"{len(names)} workflows")


def ready(fleet: Fleet, names: list[str], revision: str) -> bool:
    for name in names:
        status = fleet.status(name)
        if not status or status.get("phase") != "Ready":
            return False
        if status.get("observed_revision") != revision:
            return False
    return True


def executions(db: Path, name: str) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return list(
            conn.execute(
                "SELECT id, status, error FROM executions WHERE name = ? ORDER BY rowid", (name,)
            )
        )
    finally:
        conn.close()


def step_fences(db: Path, node: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT fence FROM steps WHERE node_id = ? AND fence IS NOT NULL", (node,)
        )
        return [row[0] for row in rows]
    finally:
        conn.close()


def logged(process: DaemonProcess, prefix: str) -> list[dict[str, Any]]:
    return [r for r in process.logs() if str(r.get("msg", "")).startswith(prefix)]


def saved_mid_chain(fleet: Fleet, shard_set: set[int], names: list[str]) -> bool:
    """The handovers of these shards hold every one of ``names`` with its first step done
    and its middle step running."""
    saved: dict[str, dict[str, str]] = {}
    for shard in shard_set:
        saved.update(fleet.handover_steps(shard))
    return set(saved) == set(names) and all(
        steps.get("first") == "done" and steps.get("hold") == "running" for steps in saved.values()
    )


def test_kill9_mid_chain_shards_taken_over_and_each_chain_resumes_once(
    fleet: Fleet, remote: GitRemote, recorder: Recorder
) -> None:
    recorder.hold_s = 120.0  # middle steps hold until released below, not for a time
    fleet.start("r-0")
    fleet.start("r-1")
    wait_for(
        "two shards each",
        lambda: fleet.working("r-0", {0, 2}) and fleet.working("r-1", {1, 3}),
        timeout=120,  # two daemons start first: slow on a loaded machine
    )
    victims = names_on({1, 3}, 8)
    survivors = names_on({0, 2}, 8)
    assert victims and survivors
    revision = push_workflows(remote, recorder, victims + survivors)
    # killed while every chain of r-1 holds its middle step, with that saved in the
    # handover of its shards (first done, hold running)
    wait_for(
        "r-1's chains in their middle step, saved, each one's call received",
        lambda: (
            saved_mid_chain(fleet, {1, 3}, victims)
            and all(recorder.count(f"/hold/{name}") == 1 for name in victims)
        ),
        timeout=45,
        every=0.05,
    )
    killed_at = time.monotonic()
    fleet.replicas["r-1"].kill9()

    wait_for("r-0 holds every shard", lambda: fleet.shards_of("r-0") == ALL, timeout=LEASE_S + 20)
    taken_after = time.monotonic() - killed_at
    assert taken_after <= LEASE_S + 5, f"took {taken_after:.1f}s"
    recorder.released.set()

    wait_for(
        "every workflow Ready", lambda: ready(fleet, victims + survivors, revision), timeout=45
    )
    for name in victims + survivors:
        assert recorder.count(f"/first/{name}") == 1, name
        assert recorder.count(f"/last/{name}") == 1, name
    for name in victims:  # the step the kill interrupted ran again, nothing else
        assert recorder.count(f"/hold/{name}") == 2, name
    for name in survivors:
        assert recorder.count(f"/hold/{name}") == 1, name

    r0 = fleet.replicas["r-0"].process.state_dir / "state.db"
    r1 = fleet.replicas["r-1"].process.state_dir / "state.db"
    for name in victims:
        [(execution_id, status, _)] = executions(r0, name)  # continued, not started anew
        assert status == "succeeded"
        assert [row[0] for row in executions(r1, name)] == [execution_id]  # the same one
        assert executions(r1, name)[0][1] == "running"  # left there by the kill
    assert all(f.startswith("r-1@") for f in step_fences(r1, "hold"))
    assert any(f.startswith("r-0@reconciler-shard-1#") for f in step_fences(r0, "last"))

    # the pod comes back: its shards move back at a step boundary; its stale copy of the
    # chains r-0 finished is closed as handed over, not run again
    fleet.start("r-1")
    wait_for("r-1 back on its shards", lambda: fleet.working("r-1", {1, 3}), timeout=45)
    wait_for(
        "r-1's stale copies closed from the handover",
        lambda: all([r[1] for r in executions(r1, name)] == ["succeeded"] for name in victims),
        timeout=30,
    )
    for name in victims:
        rows = executions(r1, name)
        assert [r[1] for r in rows] == ["succeeded"], rows  # the handed-over record
        assert recorder.count(f"/last/{name}") == 1
        assert recorder.count(f"/hold/{name}") == 2
    assert fleet.replicas["r-0"].process.alive()


def test_a_partitioned_replica_stops_acting_before_its_leases_can_lapse(
    fleet: Fleet, remote: GitRemote, recorder: Recorder
) -> None:
    recorder.hold_s = 120.0  # still in its middle step when its lease is lost: held until
    # released below
    fleet.start("r-0")
    r1 = fleet.start("r-1")
    wait_for(
        "two shards each",
        lambda: fleet.working("r-0", {0, 2}) and fleet.working("r-1", {1, 3}),
        timeout=120,  # two daemons start first: slow on a loaded machine
    )
    victims = names_on({1, 3}, 8)
    revision = push_workflows(remote, recorder, victims)
    wait_for("r-1's chains in their middle step", lambda: saved_mid_chain(fleet, {1, 3}, victims))
    cut_at = time.monotonic()
    r1.proxy.cut()  # r-1 still reaches Git and the workflows' server, not the API server
    wait_for(
        "r-1 stops",
        lambda: len(logged(r1.process, "lost shard")) >= 2,
        timeout=RENEW_S + 5,
    )
    stopped_after = time.monotonic() - cut_at
    wait_for("r-0 holds every shard", lambda: fleet.shards_of("r-0") == ALL, timeout=LEASE_S + 20)
    taken_after = time.monotonic() - cut_at
    recorder.released.set()
    assert stopped_after < taken_after  # r-1 stopped before anyone could take over
    assert stopped_after <= RENEW_S + 1.5
    wait_for("the victims Ready", lambda: ready(fleet, victims, revision), timeout=45)
    for name in victims:  # r-1 never went on to the last step; r-0 ran it once
        assert recorder.count(f"/first/{name}") == 1, name
        assert recorder.count(f"/hold/{name}") == 2, name
        assert recorder.count(f"/last/{name}") == 1, name
    r1_db = r1.process.state_dir / "state.db"
    conn = sqlite3.connect(r1_db)
    try:
        started_last = conn.execute(
            "SELECT count(*) FROM steps WHERE node_id = 'last' AND attempts > 0"
        ).fetchone()[0]
    finally:
        conn.close()
    assert started_last == 0
    r1.proxy.heal()
    wait_for("r-1 back on its shards", lambda: fleet.working("r-1", {1, 3}), timeout=45)
    for name in victims:
        assert recorder.count(f"/last/{name}") == 1, name


def test_a_replica_added_takes_its_shards_at_a_step_boundary_with_no_step_lost_or_rerun(
    fleet: Fleet, remote: GitRemote, recorder: Recorder
) -> None:
    recorder.hold_s = 120.0  # held until released below, not for a time
    fleet.start("r-0")
    wait_for("r-0 on every shard", lambda: fleet.working("r-0", ALL), timeout=45)
    names = [f"wf-{i}" for i in range(8)]
    revision = push_workflows(remote, recorder, names)
    wait_for("every chain in its middle step", lambda: saved_mid_chain(fleet, ALL, names))
    fleet.start("r-1")
    # The middle steps hold until r-0 hands its shards over: the handover waits for them,
    # at a step boundary, however long r-1 takes to come up (no timing involved).
    wait_for(
        "r-0 handing shards 1 and 3 over",
        lambda: (
            {r["shard"] for r in logged(fleet.replicas["r-0"].process, "handing shard")} >= {1, 3}
        ),
        timeout=45,
    )
    recorder.released.set()
    wait_for("r-1 on its shards", lambda: fleet.working("r-1", {1, 3}), timeout=45)
    wait_for("every workflow Ready", lambda: ready(fleet, names, revision), timeout=45)
    for name in names:
        assert recorder.count(f"/first/{name}") == 1, name
        assert recorder.count(f"/hold/{name}") == 1, name
        assert recorder.count(f"/last/{name}") == 1, name
    moved = names_on({1, 3}, 8)
    r0 = fleet.replicas["r-0"].process.state_dir / "state.db"
    r1 = fleet.replicas["r-1"].process.state_dir / "state.db"
    for name in moved:  # one chain, started on r-0, finished on r-1
        [(execution_id, status, _)] = executions(r1, name)
        assert status == "succeeded"
        assert executions(r0, name) == [(execution_id, "superseded", HANDED_OVER)]
    assert all(f.startswith("r-1@") for f in step_fences(r1, "last"))
    handed = logged(fleet.replicas["r-0"].process, "handed shard")
    assert {r["shard"] for r in handed} == {1, 3}
