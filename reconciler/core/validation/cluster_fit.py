"""What an object asks of its Cluster, checked against what the Cluster spec declares.

A Deployment on a kubernetes Cluster with a declared ``gpu.count`` may not need more GPUs
(workers x GPUs per worker, from the Deployment and its template) than that; a
``k8s_job`` node may not ask for more ``gpus`` than its Cluster has (a local Cluster
without a ``gpu`` block has none), must give an ``image`` on kubernetes, and on a local
Cluster must give a ``command`` and no ``image`` (the host runs programs, not images).
Each problem names both numbers, at the field that asks. Only what the repo decides is
checked: a value given as a ``${{ }}`` placeholder is the daemon's to check at run time,
and a Deployment whose worker count is left to sizing is checked at its smallest (one
worker), the plan's sizing doing the rest.

What a driver would refuse (or ignore) at deploy time is refused up front too:

- on a ``driver: local`` Cluster, autoscaling is the driver's own loop on the signals of
  the proxy in front of the workers (queue depth, time to first token): the proxy does
  not see the KV cache (``targets.kv_cache_usage``), and ``engine: keda`` with its
  ``prometheus_url`` is for Kubernetes;
- a Deployment without a Cluster (a cloud model) is served and scaled by its provider:
  ``autoscaling`` and ``rollout_gate`` mean nothing there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.validation.objects import SpecObject
from reconciler.core.validation.references import Index

JOB_STEP = "k8s_job"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(int_like: Any) -> int | None:
    return int_like if isinstance(int_like, int) and not isinstance(int_like, bool) else None


def declared_gpus(cluster: Mapping[str, Any]) -> int | None:
    """The GPUs a Cluster spec declares (``gpu.count``); a local Cluster without a ``gpu``
    block has none; a kubernetes one without it leaves the number to its nodes (None)."""
    gpu = cluster.get("gpu")
    if isinstance(gpu, Mapping):
        return _count(gpu.get("count"))
    return 0 if cluster.get("driver", "local") == "local" else None


def _cluster(index: Index, name: Any) -> SpecObject | None:
    if not isinstance(name, str) or "${{" in name:
        return None
    return index.get("Cluster", {}).get(name)


def _template_gpus(obj: SpecObject, index: Index) -> int | None:
    name = obj.spec.get("template")
    if not isinstance(name, str):
        return None
    found = index.get("DeploymentTemplate", {}).get(name)
    template = found.spec if found is not None else BUILTIN_TEMPLATES.get(name)
    return _count(_mapping(_mapping(template).get("resources")).get("gpus_per_worker"))


def deployment_fit(obj: SpecObject, index: Index) -> list[Diagnostic]:
    """A Deployment's GPUs (at their fewest) against its kubernetes Cluster's count."""
    cluster_name = obj.spec.get("cluster")
    cluster = _cluster(index, cluster_name)
    if cluster is None or cluster.spec.get("driver") != "kubernetes":
        return []  # a local Cluster serves endpoints on its host's CPU
    have = declared_gpus(cluster.spec)
    if have is None:
        return []
    per_worker = _template_gpus(obj, index)
    pinned = _count(obj.spec.get("workers"))
    workers = pinned or 1
    if per_worker is None:
        per_worker_text, per_worker = "at least 1 GPU per worker (sized)", 1
    else:
        per_worker_text = f"{per_worker} GPU(s) per worker (template {obj.spec['template']})"
    need = workers * per_worker
    if need <= have:
        return []
    workers_text = f"{workers} worker(s)" if pinned else "at least 1 worker (sized)"
    where = ("spec", "workers") if pinned else ("spec", "cluster")
    return [
        obj.problem(
            where,
            f"needs {need} GPU(s) ({workers_text} x {per_worker_text}) and Cluster "
            f"'{cluster_name}' has {have} (its spec.gpu.count); lower the workers, or run "
            "it on a Cluster with more GPUs",
        )
    ]


def _job_nodes(obj: SpecObject) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    workflows = obj.spec.get("workflows")
    for graph_name, graph in _mapping(workflows).items():
        nodes = _mapping(graph).get("nodes")
        for index, node in enumerate(nodes if isinstance(nodes, list) else []):
            if isinstance(node, Mapping) and node.get("type") == JOB_STEP:
                yield ("spec", "workflows", str(graph_name), "nodes", index), node


def job_fit(obj: SpecObject, index: Index) -> list[Diagnostic]:
    """Each k8s_job node against the Cluster it names (when it names one literally)."""
    found: list[Diagnostic] = []
    for where, node in _job_nodes(obj):
        inputs = _mapping(node.get("user_inputs"))
        cluster_name = inputs.get("cluster")
        cluster = _cluster(index, cluster_name)
        if cluster is None:
            continue
        node_id = node.get("id")
        passed = {str(v) for v in _mapping(node.get("previous_node_inputs")).values()}
        given = set(inputs) | passed
        local = cluster.spec.get("driver", "local") == "local"
        at = (*where, "user_inputs")
        if local and "image" in given:
            found.append(
                obj.problem(
                    (*at, "image") if "image" in inputs else at,
                    f"node '{node_id}' ({JOB_STEP}): Cluster '{cluster_name}' is local and "
                    "runs `command` on its host; it cannot run an image: remove image, or "
                    "run the job on a kubernetes Cluster",
                    key="image" in inputs,
                )
            )
        if local and "command" not in given:
            found.append(
                obj.problem(
                    at,
                    f"node '{node_id}' ({JOB_STEP}): Cluster '{cluster_name}' is local: give "
                    "the program to run on its host in `command`",
                )
            )
        if not local and "image" not in given:
            found.append(
                obj.problem(
                    at,
                    f"node '{node_id}' ({JOB_STEP}) is missing required input 'image': "
                    f"Cluster '{cluster_name}' runs containers",
                )
            )
        gpus = _count(inputs.get("gpus"))
        have = declared_gpus(cluster.spec)
        if gpus is not None and have is not None and gpus > have:
            found.append(
                obj.problem(
                    (*at, "gpus"),
                    f"node '{node_id}' ({JOB_STEP}) asks for {gpus} GPU(s) and Cluster "
                    f"'{cluster_name}' has {have} (its spec.gpu.count)",
                )
            )
    return found


def check_cluster_fit(
    deployment: SpecObject, clusters: Mapping[str, SpecObject]
) -> list[Diagnostic]:
    spec = deployment.spec
    cluster_name = spec.get("cluster")
    autoscaling = spec.get("autoscaling")
    if cluster_name is None:
        return [
            deployment.problem(
                ("spec", field),
                f"{field} on a Deployment without a cluster: a cloud model is served and "
                "scaled by its provider; remove it",
            )
            for field in ("autoscaling", "rollout_gate")
            if spec.get(field) is not None
        ]
    cluster = clusters.get(cluster_name) if isinstance(cluster_name, str) else None
    if cluster is None:
        return []
    driver = cluster.spec.get("driver")
    found: list[Diagnostic] = []
    if driver == "local" and isinstance(autoscaling, Mapping):
        targets = autoscaling.get("targets")
        if isinstance(targets, Mapping) and targets.get("kv_cache_usage") is not None:
            found.append(
                deployment.problem(
                    ("spec", "autoscaling", "targets", "kv_cache_usage"),
                    f"Cluster '{cluster_name}' is local: its driver scales on what the proxy "
                    "in front of the workers measures (queue_depth, ttft_ms), which does not "
                    "include the KV cache; remove kv_cache_usage",
                )
            )
        for field, why in (("engine", "keda"), ("prometheus_url", None)):
            value = autoscaling.get(field)
            if value is not None and (why is None or value == why):
                found.append(
                    deployment.problem(
                        ("spec", "autoscaling", field),
                        f"Cluster '{cluster_name}' is local: its driver scales with its own "
                        f"loop on its proxy's signals; {field} is for kubernetes Clusters "
                        "(remove it)",
                    )
                )
    return found
