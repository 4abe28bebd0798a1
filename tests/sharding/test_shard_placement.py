"""Which shard an object is in, and which replica a shard goes to (pure arithmetic)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler.core import shards


def test_the_hash_is_the_same_in_every_process() -> None:
    """Replicas are separate processes: no per-process hash seed may leak in."""
    here = [shards.stable_shard(f"Cluster/gpu-{i}", 4) for i in range(20)]
    code = (
        "from reconciler.core import shards;"
        "print([shards.stable_shard(f'Cluster/gpu-{i}', 4) for i in range(20)])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout
    assert there.strip() == str(here)
    assert set(here) == {0, 1, 2, 3}  # 20 clusters spread over every shard


def test_deployments_follow_their_cluster_pinned_or_hashed() -> None:
    pins = {"gpu-a": None, "gpu-b": 3}
    a = shards.object_shard("Cluster", "gpu-a", {"driver": "local"}, pins=pins, shards=4)
    b = shards.object_shard("Cluster", "gpu-b", {"shard": 3}, pins=pins, shards=4)
    assert b == 3
    on_a = shards.object_shard("Deployment", "chat", {"cluster": "gpu-a"}, pins=pins, shards=4)
    on_b = shards.object_shard("Deployment", "embed", {"cluster": "gpu-b"}, pins=pins, shards=4)
    assert (on_a, on_b) == (a, 3)
    # a cluster not (yet) in Git: its Deployments meet it where its hash puts it
    later = shards.object_shard("Deployment", "x", {"cluster": "gpu-c"}, pins=pins, shards=4)
    assert later == shards.object_shard("Cluster", "gpu-c", {}, pins={}, shards=4)


def test_cluster_less_objects_go_by_kind_and_name() -> None:
    workflow = shards.object_shard("Workflow", "nightly", {}, pins={}, shards=8)
    assert workflow == shards.stable_shard("Workflow/nightly", 8)
    cloud = shards.object_shard("Deployment", "gpt", {"cluster": None}, pins={}, shards=8)
    assert cloud == shards.stable_shard("Deployment/gpt", 8)


def test_a_pin_past_the_last_shard_wraps_around() -> None:
    assert shards.cluster_shard("gpu", 9, 4) == 1
    assert shards.wraps(9, 4) and not shards.wraps(3, 4)


def test_shards_are_dealt_round_robin_in_ordinal_order() -> None:
    members = ["reconciler-10", "reconciler-2", "reconciler-0", "reconciler-1"]
    assert shards.assign(6, members) == {
        0: "reconciler-0",
        1: "reconciler-1",
        2: "reconciler-2",
        3: "reconciler-10",
        4: "reconciler-0",
        5: "reconciler-1",
    }
    assert shards.assign(4, []) == {}


@pytest.mark.parametrize(("before", "after", "moved"), [(1, 2, 2), (2, 4, 2), (4, 2, 2)])
def test_scaling_moves_only_the_shards_whose_turn_changed(
    before: int, after: int, moved: int
) -> None:
    old = shards.assign(4, [f"r-{i}" for i in range(before)])
    new = shards.assign(4, [f"r-{i}" for i in range(after)])
    assert sum(old[s] != new[s] for s in range(4)) == moved
    counts = [list(new.values()).count(m) for m in set(new.values())]
    assert max(counts) - min(counts) <= 1
