"""A shard's handover: collected from one real store, saved as ConfigMaps in the API double,
read back and taken into another store.

Large handovers are split over several ConfigMaps and read back whole; a writer holding
an old resourceVersion (a replica that lost the shard) cannot overwrite the new holder's
handover; a torn one (a part missing) is refused, not half-read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.chains import Chain, StepNode
from reconciler.daemon import shard_handover
from reconciler.daemon.shard_handover import HandoverError, HandoverStore
from reconciler.drivers.leases import LeaseConflict
from reconciler.engine.store import Store
from tests.sharding.conftest import NAMESPACE, Home


def seeded(path: Path, names: list[str]) -> Store:
    store = Store(path)
    for name in names:
        chain = Chain(
            kind="Workflow",
            name=name,
            action="execute",
            revision="rev1",
            spec_hash=f"hash-{name}",
            steps=(
                StepNode(id="a", type="noop", inputs={}),
                StepNode(id="b", type="noop", after=("a",), inputs={}),
            ),
        )
        submitted = store.submit_execution(chain)
        execution_id = submitted.execution.id
        store.mark_execution_running(execution_id)
        store.start_step(execution_id, "a", attempt=1, inputs={"n": name})
        store.finish_step(execution_id, "a", status="done", outputs={"x": name * 50}, log="ok\n")
        store.put_object(
            kind="Workflow",
            name=name,
            spec_hash=f"hash-{name}",
            revision="rev1",
            phase="Reconciling",
            status={"attempted_execution": execution_id, "attempted_sig": "sig", "born_seq": 0},
        )
    return store


def test_a_handover_carries_objects_and_unfinished_chains_to_another_store(
    tmp_path: Path,
) -> None:
    source = seeded(tmp_path / "a.db", ["wf-1", "wf-2"])
    handover = shard_handover.decode(
        shard_handover.collect(
            source, ["Workflow/wf-1", "Workflow/wf-2"], shard=2, holder="r-0", transitions=4
        )
    )
    assert handover.object_keys() == {"Workflow/wf-1", "Workflow/wf-2"}
    assert (handover.shard, handover.holder, handover.transitions) == (2, "r-0", 4)
    target = Store(tmp_path / "b.db")
    stale = seeded(tmp_path / "b.db", ["wf-1"])  # an older life of wf-1 on the new holder
    stale.close()
    rows = shard_handover.adopt(target, handover, local_keys=["Workflow/wf-1"])
    assert {r["name"] for r in rows} == {"wf-1", "wf-2"}
    unfinished = target.unfinished_executions()
    assert sorted(r.name for r in unfinished) == ["wf-1", "wf-2"]
    for record in unfinished:
        steps = {s.node_id: (s.status, s.outputs) for s in target.get_steps(record.id)}
        assert steps["a"] == ("done", {"x": record.name * 50})
        assert steps["b"] == ("pending", None)
    closed = [r for r in target.list_executions(kind="Workflow", name="wf-1") if r.finished]
    assert [r.status for r in closed] == ["superseded"]  # the stale local chain


def test_a_large_handover_spans_several_config_maps_and_reads_back_whole(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shard_handover, "PART_BYTES", 2000)
    names = [f"wf-{i}" for i in range(40)]
    store = seeded(tmp_path / "a.db", names)
    keys = [f"Workflow/{n}" for n in names]
    handovers = HandoverStore(home.coordination(), prefix="reconciler")
    first = shard_handover.collect(store, keys, shard=1, holder="r-0", transitions=1)
    version = handovers.write(first, shard=1, holder="r-0", transitions=1, expect=None)
    maps = home_maps(home)
    assert len([m for m in maps if m.startswith("reconciler-handover-1-")]) >= 2
    read, read_version = handovers.read(1)
    assert read == shard_handover.decode(first) and read_version == version
    assert len(read.objects) == 40 and len(read.executions) == 40
    second = shard_handover.collect(store, keys[:3], shard=1, holder="r-0", transitions=1)
    handovers.write(second, shard=1, holder="r-0", transitions=1, expect=version)
    assert handovers.read(1)[0] == shard_handover.decode(second)
    assert len(home_maps(home)) == 1  # one part now: the old generation's parts are gone


def test_a_replica_that_lost_the_shard_cannot_overwrite_its_handover(
    home: Home, tmp_path: Path
) -> None:
    store = seeded(tmp_path / "a.db", ["wf-1"])
    handovers = HandoverStore(home.coordination(), prefix="reconciler")
    old = shard_handover.collect(store, ["Workflow/wf-1"], shard=0, holder="r-0", transitions=1)
    version = handovers.write(old, shard=0, holder="r-0", transitions=1, expect=None)
    new = shard_handover.assemble([], shard=0, holder="r-1", transitions=2)
    handovers.write(new, shard=0, holder="r-1", transitions=2, expect=version)  # claimed
    with pytest.raises(LeaseConflict):
        handovers.write(old, shard=0, holder="r-0", transitions=1, expect=version)
    with pytest.raises(LeaseConflict):
        handovers.write(old, shard=0, holder="r-0", transitions=1, expect=None)
    assert handovers.read(0)[0] == shard_handover.decode(new)


def test_a_torn_handover_is_refused(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shard_handover, "PART_BYTES", 2000)
    store = seeded(tmp_path / "a.db", [f"wf-{i}" for i in range(20)])
    handovers = HandoverStore(home.coordination(), prefix="reconciler")
    handover = shard_handover.collect(
        store, [f"Workflow/wf-{i}" for i in range(20)], shard=3, holder="r-0", transitions=1
    )
    handovers.write(handover, shard=3, holder="r-0", transitions=1, expect=None)
    part = next(m for m in home_maps(home) if m.startswith("reconciler-handover-3-"))
    home.double_core.delete_namespaced_config_map(part, NAMESPACE)
    with pytest.raises(HandoverError, match="missing"):
        handovers.read(3)


def home_maps(home: Home) -> list[str]:
    return sorted(
        m.metadata.name for m in home.double_core.list_namespaced_config_map(NAMESPACE).items
    )
