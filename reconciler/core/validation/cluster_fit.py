"""What a Deployment asks of its Cluster that the cluster's driver cannot give.

Checked up front, so ``validate`` and ``plan`` refuse what the driver would refuse at
deploy time: the local driver runs exactly one worker per endpoint (local servers have
no load balancer in front of them), so a Deployment on a ``driver: local`` Cluster that
pins ``workers`` to more than one is an error at ``spec.workers``.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.objects import SpecObject

LOCAL_WORKERS = 1


def check_cluster_fit(
    deployment: SpecObject, clusters: Mapping[str, SpecObject]
) -> list[Diagnostic]:
    spec = deployment.spec
    workers = spec.get("workers")
    cluster_name = spec.get("cluster")
    if (
        not isinstance(workers, int)
        or isinstance(workers, bool)
        or workers == LOCAL_WORKERS
        or not isinstance(cluster_name, str)
    ):
        return []
    cluster = clusters.get(cluster_name)
    if cluster is None or cluster.spec.get("driver") != "local":
        return []
    return [
        deployment.problem(
            ("spec", "workers"),
            f"workers: {workers} on Cluster '{cluster_name}', whose driver is local: the "
            "local driver runs one worker per endpoint (no load balancer in front of local "
            "servers); set workers: 1, or deploy to a kubernetes Cluster",
        )
    ]
