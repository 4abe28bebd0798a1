"""A Deployment's ``autoscaling`` as the cluster's own autoscaler object (pure).

Two forms, by ``autoscaling.engine``:

- ``hpa``: an ``autoscaling/v2`` HorizontalPodAutoscaler on per-pod custom metrics
  (``type: Pods``, ``AverageValue`` targets), which a metrics adapter (prometheus-adapter)
  serves from the model server's Prometheus metrics under the names in ``HPA_METRICS``
  (docs/llm.md has the adapter rules); ``scale_down_delay_s`` is the scale-down
  stabilization window.
- ``keda``: a ``keda.sh/v1alpha1`` ScaledObject with one Prometheus trigger per target,
  its PromQL over the pods of the endpoint (``namespace`` and pod name prefix): queue depth
  and KV cache use per worker (``AverageValue``: KEDA divides by the worker count), TTFT as
  the p90 over 2 minutes (``Value``).

Both target the endpoint's Deployment by ``target_name`` and carry the endpoint's owner
labels. Metric names come from the template's ``runtime.metrics``; a target its server
does not measure is a RenderError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.render.placeholders import RenderError
from reconciler.specs.autoscaling import Autoscaling

QUEUE = "queue_depth"
TTFT = "ttft_ms"
KV_CACHE = "kv_cache_usage"

PROMETHEUS_METRICS: Mapping[str, Mapping[str, str]] = {
    "vllm": {
        QUEUE: "vllm:num_requests_waiting",
        TTFT: "vllm:time_to_first_token_seconds",
        KV_CACHE: "vllm:gpu_cache_usage_perc",
    },
    "llama.cpp": {
        QUEUE: "llamacpp:requests_deferred",
        KV_CACHE: "llamacpp:kv_cache_usage_ratio",
    },
}
"""The server's own metric per target (TTFT a histogram, the others gauges)."""

HPA_METRICS: Mapping[str, str] = {
    QUEUE: "llm_requests_waiting",
    TTFT: "llm_time_to_first_token_p90_seconds",
    KV_CACHE: "llm_kv_cache_usage_ratio",
}
"""The names under which the metrics adapter serves each target per pod."""


def _targets(autoscaling: Autoscaling) -> dict[str, float]:
    targets = autoscaling.targets
    found: dict[str, float] = {}
    if targets.queue_depth is not None:
        found[QUEUE] = targets.queue_depth
    if targets.ttft_ms is not None:
        found[TTFT] = targets.ttft_ms / 1000.0
    if targets.kv_cache_usage is not None:
        found[KV_CACHE] = targets.kv_cache_usage
    return found


def _metrics_of(metrics: str | None, targets: Mapping[str, float], *, where: str) -> None:
    known = PROMETHEUS_METRICS.get(metrics or "")
    if known is None:
        raise RenderError(
            f"{where}: autoscaling needs the server's metrics, and the template's "
            "runtime.metrics is unset (vllm and llama.cpp are known)"
        )
    missing = sorted(set(targets) - set(known))
    if missing:
        raise RenderError(
            f"{where}: the {metrics} server does not measure {', '.join(missing)}; "
            f"autoscale it on {', '.join(sorted(known))}"
        )


def _quantity(value: float) -> str:
    """A positive number as a Kubernetes quantity (milli-units below 1000)."""
    millis = round(value * 1000)
    if millis <= 0:
        raise RenderError(f"autoscaling target {value} is below a milli-unit")
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def render_hpa(
    *,
    autoscaling: Autoscaling,
    metrics: str | None,
    target_name: str,
    namespace: str,
    labels: Mapping[str, str],
    where: str,
) -> dict[str, Any]:
    """The HorizontalPodAutoscaler (autoscaling/v2) of one endpoint."""
    targets = _targets(autoscaling)
    _metrics_of(metrics, targets, where=where)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target_name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target_name},
            "minReplicas": autoscaling.min_workers,
            "maxReplicas": autoscaling.max_workers,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": HPA_METRICS[target]},
                        "target": {"type": "AverageValue", "averageValue": _quantity(value)},
                    },
                }
                for target, value in targets.items()
            ],
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": autoscaling.scale_down_delay_s}
            },
        },
    }


def _query(metrics: str, target: str, *, namespace: str, pods: str) -> str:
    name = PROMETHEUS_METRICS[metrics][target]
    selector = f'namespace="{namespace}",pod=~"{pods}-.*"'
    if target == TTFT:
        return f"histogram_quantile(0.9, sum by (le) (rate({name}_bucket{{{selector}}}[2m])))"
    return f"sum({name}{{{selector}}})"


def render_scaled_object(
    *,
    autoscaling: Autoscaling,
    metrics: str | None,
    target_name: str,
    namespace: str,
    labels: Mapping[str, str],
    where: str,
) -> dict[str, Any]:
    """The KEDA ScaledObject (keda.sh/v1alpha1) of one endpoint."""
    targets = _targets(autoscaling)
    _metrics_of(metrics, targets, where=where)
    if autoscaling.prometheus_url is None:
        raise RenderError(f"{where}: autoscaling.engine keda needs autoscaling.prometheus_url")
    assert metrics is not None
    triggers = [
        {
            "type": "prometheus",
            "name": target.replace("_", "-"),
            "metricType": "Value" if target == TTFT else "AverageValue",
            "metadata": {
                "serverAddress": autoscaling.prometheus_url,
                "query": _query(metrics, target, namespace=namespace, pods=target_name),
                "threshold": f"{value:g}",
            },
        }
        for target, value in targets.items()
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": target_name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target_name},
            "minReplicaCount": autoscaling.min_workers,
            "maxReplicaCount": autoscaling.max_workers,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": autoscaling.scale_down_delay_s}
                    }
                }
            },
            "triggers": triggers,
        },
    }


def render_autoscaler(
    *,
    autoscaling: Autoscaling,
    metrics: str | None,
    target_name: str,
    namespace: str,
    labels: Mapping[str, str],
    where: str,
) -> dict[str, Any]:
    """The object ``autoscaling.engine`` asks for."""
    render = render_scaled_object if autoscaling.engine == "keda" else render_hpa
    return render(
        autoscaling=autoscaling,
        metrics=metrics,
        target_name=target_name,
        namespace=namespace,
        labels=labels,
        where=where,
    )
