"""What a Deployment's LLM features ask that the repo or its cluster cannot give.

``autoscaling`` on a kubernetes Cluster is the cluster's own HPA or KEDA on the server's
Prometheus metrics, so it needs a template whose server's metrics are known
(``runtime.metrics``) and that measures each target. On a local Cluster the driver's
proxy measures the signals itself (what it cannot measure is cluster_fit's to refuse).

A ``rollout_gate`` on a kubernetes Cluster gives the new revision its share at the
Cluster's ingress (an ingress-nginx canary Ingress), so the Cluster needs an
``ingress_url``; and it measures the revision from its server's own Prometheus metrics,
so the template's ``runtime.metrics`` must be one whose time to first token, latency and
errors are known (vllm; llama.cpp's server counts none of them).

A Deployment's ``adapters`` (LoRA) are checked up front, so ``validate`` and ``plan``
refuse what the deploy step would stall on: each adapter's Model must exist; the template
(repo or built-in) must say how its server takes adapters (``runtime.lora``); and on a
Kubernetes Cluster only vllm-style templates take them (llama-cpp-python's config file is
written on the daemon's host, so it is local-only: not supported on Kubernetes yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.render.autoscaling import PROMETHEUS_METRICS
from reconciler.core.validation.objects import SpecObject, did_you_mean
from reconciler.core.validation.references import Index, Names


def _template_runtime(name: Any, templates: Mapping[str, SpecObject]) -> Mapping[str, Any] | None:
    if not isinstance(name, str):
        return None
    found = templates.get(name)
    raw = found.spec if found is not None else BUILTIN_TEMPLATES.get(name)
    runtime = (raw or {}).get("runtime")
    return runtime if isinstance(runtime, Mapping) else None


def check_adapters(deployment: SpecObject, index: Index, names: Names) -> list[Diagnostic]:
    spec = deployment.spec
    adapters = spec.get("adapters")
    if not isinstance(adapters, list) or not adapters:
        return []
    found: list[Diagnostic] = []
    models = names.get("Model", frozenset())
    for position, adapter in enumerate(adapters):
        model = adapter.get("model") if isinstance(adapter, Mapping) else None
        if isinstance(model, str) and model not in models:
            hint = did_you_mean(model, sorted(models))
            found.append(
                deployment.problem(
                    ("spec", "adapters", position, "model"),
                    f"Model '{model}' does not exist{hint}",
                )
            )
    template = spec.get("template")
    runtime = _template_runtime(template, index.get("DeploymentTemplate", {}))
    if runtime is None:
        return found
    lora = runtime.get("lora")
    if lora is None:
        found.append(
            deployment.problem(
                ("spec", "adapters"),
                f"DeploymentTemplate '{template}' takes no LoRA adapters (its runtime.lora is "
                "unset): use a template whose server takes them (llama-cpp, vllm)",
            )
        )
        return found
    cluster_name = spec.get("cluster")
    cluster = index.get("Cluster", {}).get(cluster_name) if isinstance(cluster_name, str) else None
    if cluster is not None and cluster.spec.get("driver") == "kubernetes" and lora != "vllm":
        found.append(
            deployment.problem(
                ("spec", "adapters"),
                f"LoRA adapters in the {lora} style (DeploymentTemplate '{template}') on "
                f"Cluster '{cluster_name}', a kubernetes Cluster: not supported yet; use a "
                "vllm-style template there, or a local Cluster",
            )
        )
    return found


def check_autoscaling(deployment: SpecObject, index: Index) -> list[Diagnostic]:
    spec = deployment.spec
    autoscaling = spec.get("autoscaling")
    if not isinstance(autoscaling, Mapping):
        return []
    cluster_name = spec.get("cluster")
    cluster = index.get("Cluster", {}).get(cluster_name) if isinstance(cluster_name, str) else None
    if cluster is None or cluster.spec.get("driver") != "kubernetes":
        return []  # local: the proxy's signals (cluster_fit); none: cluster_fit refuses it
    found: list[Diagnostic] = []
    template = spec.get("template")
    runtime = _template_runtime(template, index.get("DeploymentTemplate", {}))
    if runtime is None:
        return found
    metrics = runtime.get("metrics")
    known = PROMETHEUS_METRICS.get(metrics) if isinstance(metrics, str) else None
    targets = autoscaling.get("targets")
    if known is None:
        found.append(
            deployment.problem(
                ("spec", "autoscaling"),
                f"DeploymentTemplate '{template}' names no server metrics (runtime.metrics "
                f"is unset): on Cluster '{cluster_name}' autoscaling reads the server's "
                "Prometheus metrics (vllm, llama.cpp)",
            )
        )
    elif isinstance(targets, Mapping):
        for target, value in targets.items():
            if value is not None and target not in known:
                found.append(
                    deployment.problem(
                        ("spec", "autoscaling", "targets", target),
                        f"the {metrics} server of DeploymentTemplate '{template}' does not "
                        f"measure {target}; use {', '.join(sorted(known))}",
                    )
                )
    return found


GATE_METRICS = frozenset({"vllm"})
"""The server metrics a gate on a kubernetes Cluster measures a revision from."""


def check_rollout_gate(deployment: SpecObject, index: Index) -> list[Diagnostic]:
    spec = deployment.spec
    if not isinstance(spec.get("rollout_gate"), Mapping):
        return []
    cluster_name = spec.get("cluster")
    cluster = index.get("Cluster", {}).get(cluster_name) if isinstance(cluster_name, str) else None
    if cluster is None or cluster.spec.get("driver") != "kubernetes":
        return []  # local: the proxy measures; none: cluster_fit refuses it
    found: list[Diagnostic] = []
    if not cluster.spec.get("ingress_url"):
        found.append(
            deployment.problem(
                ("spec", "rollout_gate"),
                f"a rollout_gate on Cluster '{cluster_name}' needs the Cluster's ingress_url: "
                "the new revision's share of the traffic is set at the ingress (an "
                "ingress-nginx canary); set spec.ingress_url on the Cluster",
            )
        )
    template = spec.get("template")
    runtime = _template_runtime(template, index.get("DeploymentTemplate", {}))
    metrics = (runtime or {}).get("metrics")
    if runtime is not None and metrics not in GATE_METRICS:
        shown = "names no server metrics" if metrics is None else f"has {metrics} metrics"
        found.append(
            deployment.problem(
                ("spec", "rollout_gate"),
                f"DeploymentTemplate '{template}' {shown}: on Cluster '{cluster_name}' the gate "
                "measures the new revision from its server's time to first token, latency and "
                f"5xx counts, which only {', '.join(sorted(GATE_METRICS))} servers expose",
            )
        )
    return found
