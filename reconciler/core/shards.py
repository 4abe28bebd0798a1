"""Which shard each object belongs to, and which replica each shard goes to.

When the daemon runs as several replicas, the objects are split into a fixed number of
shards and each shard is worked by one replica at a time. Everything an object does on a
cluster follows that cluster, so the unit of placement is the Cluster:

- a Cluster's shard is its ``spec.shard`` when set (a pin; it wraps around the shard
  count), otherwise a stable hash of its name;
- a Deployment is in its cluster's shard (the hash of the cluster's name when no such
  Cluster exists, so the Deployment and the Cluster, once added, meet in one shard);
- every other object (Workflows, Models, Credentials, ..., a Deployment served by a cloud
  provider) is placed by a stable hash of ``kind/name``.

Clusters, Deployments and Workflows are *placed*: only their shard's replica reconciles
them. What they use (Models, DeploymentTemplates, Credentials, Projects) is *shared*:
each replica that needs one reconciles its own copy (a Model's files are local to the
replica that serves from them), and only the replica of the object's own shard publishes
its status. Pure: the daemon supplies the specs, this module does the arithmetic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

PLACED_KINDS = frozenset({"Cluster", "Deployment", "Workflow"})
"""Kinds reconciled only by their shard's replica (their state moves with the shard)."""


def stable_shard(text: str, shards: int) -> int:
    """A shard for ``text`` that every replica and every release computes alike."""
    if shards < 1:
        raise ValueError("the shard count must be at least 1")
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def cluster_shard(name: str, pinned: int | None, shards: int) -> int:
    """The shard of Cluster ``name`` (``pinned``: its ``spec.shard``)."""
    if pinned is not None:
        return pinned % shards
    return stable_shard(f"Cluster/{name}", shards)


def object_shard(
    kind: str,
    name: str,
    spec: Mapping[str, Any] | None,
    *,
    pins: Mapping[str, int | None],
    shards: int,
) -> int:
    """The shard of one object from its spec; ``pins`` maps Cluster names to their
    ``spec.shard`` (None: not pinned; a name absent: no such Cluster)."""
    spec = spec or {}
    if kind == "Cluster":
        pinned = spec.get("shard")
        return cluster_shard(name, pinned if isinstance(pinned, int) else None, shards)
    if kind == "Deployment":
        cluster = spec.get("cluster")
        if isinstance(cluster, str) and cluster:
            return cluster_shard(cluster, pins.get(cluster), shards)
    return stable_shard(f"{kind}/{name}", shards)


def wraps(pinned: int, shards: int) -> bool:
    """Whether a ``spec.shard`` of ``pinned`` is past the last shard (and wraps around)."""
    return pinned >= shards


_ORDINAL = re.compile(r"^(.*?)(\d+)$")


def member_order(identity: str) -> tuple[str, int, str]:
    """Sort key of replica names: StatefulSet pods by ordinal (``r-2`` before ``r-10``)."""
    found = _ORDINAL.match(identity)
    if found is None:
        return (identity, -1, identity)
    return (found.group(1), int(found.group(2)), identity)


def assign(shards: int, members: Iterable[str]) -> dict[int, str]:
    """Shard -> replica, round robin over the replicas in ordinal order.

    With StatefulSet names, growing from N to M replicas moves only the shards whose
    ``shard mod M`` changed, and every replica gets the same number of shards, give or
    take one. No members: no assignment.
    """
    ordered = sorted(set(members), key=member_order)
    if not ordered:
        return {}
    return {shard: ordered[shard % len(ordered)] for shard in range(shards)}
