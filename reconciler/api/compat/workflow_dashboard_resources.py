"""A dashboard workflow's ``config.computeProfile`` and ``config.resources``, derived from
what its provision graph runs.

Two kinds of node ask a cluster for compute: a ``k8s_job`` (its ``gpus``, on its
``cluster``, whose declared GPU type names them), and any node that names a Deployment
(``deployment``: ``wait_ready``, ``scale_deployment``...), which holds that Deployment's
workers: each worker has its template's ``resources`` (``cpu``, ``memory``,
``gpus_per_worker``; a repo DeploymentTemplate or a built-in one), and there are
``workers`` of them (the spec's number, else what the daemon sized and recorded, else
one). GPUs are named by the type the daemon sized for, else the cluster's declared type.
The totals are upper bounds: every node counted, as if all ran at once. A ``${{ param }}``
input counts when the workflow's own ``user_params`` give it a value.

``computeProfile`` says which kind of compute that is: ``GPU-Optimized`` (any GPU),
``CPU-Only`` (compute without GPUs) or ``None`` (the graph runs nothing on a cluster:
HTTP calls, waits, model registrations).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from typing import Any

from reconciler.api.documents import status_of
from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.chain_builders import literal_name
from reconciler.core.diff import ObjectState
from reconciler.engine.store import Store

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_GIB = 2.0**30


def quantity(value: object) -> float | None:
    """A Kubernetes quantity (``8``, ``500m``, ``32Gi``) or a number, as a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    found = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        return None
    return float(found.group(1)) * _FACTORS[found.group(2)]


class _Totals:
    def __init__(self) -> None:
        self.cpu = 0.0
        self.memory = 0.0
        self.gpus: collections.Counter[str] = collections.Counter()
        self.compute = False

    def add(self, *, count: int, cpu: object, memory: object, gpus: int, gpu_type: str) -> None:
        self.compute = True
        self.cpu += count * (quantity(cpu) or 0.0)
        self.memory += count * (quantity(memory) or 0.0)
        if gpus > 0:
            self.gpus[gpu_type] += count * gpus


def _spec(desired: Mapping[str, ObjectState], key: str) -> Mapping[str, Any] | None:
    state = desired.get(key)
    return state.spec if state is not None else None


def _cluster_gpu(desired: Mapping[str, ObjectState], cluster: object) -> str | None:
    spec = _spec(desired, f"Cluster/{cluster}") if isinstance(cluster, str) else None
    gpu = spec.get("gpu") if spec is not None else None
    return str(gpu["type"]) if isinstance(gpu, Mapping) and gpu.get("type") else None


def _template(desired: Mapping[str, ObjectState], name: object) -> Mapping[str, Any]:
    if not isinstance(name, str):
        return {}
    found = _spec(desired, f"DeploymentTemplate/{name}") or BUILTIN_TEMPLATES.get(name) or {}
    resources = found.get("resources")
    return resources if isinstance(resources, Mapping) else {}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add_deployment(
    totals: _Totals, name: str, desired: Mapping[str, ObjectState], store: Store
) -> None:
    spec = _spec(desired, f"Deployment/{name}")
    if spec is None:
        return
    resources = _template(desired, spec.get("template"))
    status = status_of(store.get_object("Deployment", name)) or {}
    sizing = status.get("sizing") if isinstance(status.get("sizing"), Mapping) else {}
    assert isinstance(sizing, Mapping)
    workers = _count(spec.get("workers")) or _count(status.get("workers")) or 1
    gpus = _count(resources.get("gpus_per_worker"))
    if gpus is None:
        gpus = _count(sizing.get("gpus_per_worker")) or 0
    gpu_type = sizing.get("gpu_type") or _cluster_gpu(desired, spec.get("cluster")) or "GPU"
    totals.add(
        count=workers,
        cpu=resources.get("cpu"),
        memory=resources.get("memory"),
        gpus=gpus,
        gpu_type=str(gpu_type),
    )


def _cores(cpu: float) -> str:
    return f"{cpu:g} core{'' if cpu == 1 else 's'}"


def compute_of(
    spec: Mapping[str, Any], desired: Mapping[str, ObjectState], store: Store
) -> tuple[str, dict[str, str]]:
    """``(computeProfile, resources)`` of a Workflow spec's provision graph."""
    params = spec.get("user_params") or {}
    graph = (spec.get("workflows") or {}).get("provision") or {}
    totals = _Totals()
    deployments: list[str] = []
    for node in graph.get("nodes") or []:
        if not isinstance(node, Mapping):
            continue
        inputs = node.get("user_inputs") or {}
        if node.get("type") == "k8s_job":
            cluster = literal_name(inputs.get("cluster"), params)
            gpus = _count(inputs.get("gpus")) or 0
            gpu_type = _cluster_gpu(desired, cluster) or "GPU"
            totals.add(count=1, cpu=None, memory=None, gpus=gpus, gpu_type=gpu_type)
        name = literal_name(inputs.get("deployment"), params)
        if name is not None and name not in deployments:
            deployments.append(name)
    for name in deployments:
        _add_deployment(totals, name, desired, store)
    gpu = " + ".join(f"{count}x {kind}" for kind, count in sorted(totals.gpus.items()))
    resources = {
        "cpu": _cores(totals.cpu) if totals.cpu else "not requested",
        "memory": f"{totals.memory / _GIB:g} GiB" if totals.memory else "not requested",
        "gpu": gpu or "none",
    }
    if totals.gpus:
        profile = "GPU-Optimized"
    elif totals.compute:
        profile = "CPU-Only"
    else:
        profile = "None"
    return profile, resources
