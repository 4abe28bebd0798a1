"""The shard map: who holds which shard, as ``GET /api/v1/shards`` and ``reconciler
shards`` show it to an operator (docs/operations.md, "Reading the shard map").

Per shard: its Lease, the replica holding it now and the one it is dealt to (they differ
while it moves), its state on the replica asked, the Lease's transitions and last
renewal, its Clusters and how many objects of each kind it has; then the replicas and
the API address each advertises.
"""

from __future__ import annotations

from typing import Any

from reconciler.daemon.sharding import ShardManager, ShardPlacement


def describe(manager: ShardManager, placement: ShardPlacement | None) -> dict[str, Any]:
    counts: dict[int, dict[str, int]] = {}
    clusters: dict[int, list[str]] = {}
    if placement is not None:
        for key in placement.known_keys():
            kind, name = key.split("/", 1)
            shard = placement.shard_of(key)
            by_kind = counts.setdefault(shard, {})
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if kind == "Cluster":
                clusters.setdefault(shard, []).append(name)
    active = manager.active()
    items = []
    for shard in range(manager.shard_count):
        record = manager.leases.get(shard)
        held = manager.held.get(shard)
        state = "active" if shard in active else (held.state.value if held is not None else None)
        renewed = record.renew_time if record is not None else None
        items.append(
            {
                "shard": shard,
                "lease": manager.lease_name(shard),
                "holder": manager.holder_of(shard),
                "assigned_to": manager.assignment.get(shard),
                "state": state,
                "transitions": record.transitions if record is not None else None,
                "renewed_at": renewed.isoformat() if renewed is not None else None,
                "clusters": sorted(clusters.get(shard, [])),
                "objects": dict(sorted(counts.get(shard, {}).items())),
            }
        )
    return {
        "enabled": True,
        "identity": manager.identity,
        "shards": manager.shard_count,
        "held_here": sorted(active),
        "members": [
            {"identity": m.identity, "url": m.url, "alive": m.alive} for m in manager.members
        ],
        "items": items,
    }
