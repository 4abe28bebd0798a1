"""A Deployment's ``autoscaling`` rendered as the cluster's own autoscaler objects.

The HPA (autoscaling/v2 on per-pod custom metrics) is checked against the real
Kubernetes schemas (kubernetes-validate) and both it and KEDA's ScaledObject (a custom
resource, which kubernetes-validate has no schema for: the API double serves its kind as
a cluster with KEDA's CRD installed would, with the CRD's required fields) are applied to
the API double with server-side apply and read back. ``validate`` takes the field where a
driver applies it, and says why a template cannot have it on Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from reconciler.core.render import autoscaling as render
from reconciler.core.render.placeholders import RenderError
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile
from reconciler.specs.autoscaling import Autoscaling
from reconciler.specs.deployment import DeploymentSpec
from tests.k8s.apiserver_double import ApiServerDouble

LABELS = {"app.kubernetes.io/managed-by": "reconciler", "reconciler/deployment": "chat"}


def _autoscaling(**extra: Any) -> Autoscaling:
    return Autoscaling.model_validate(
        {
            "min_workers": 1,
            "max_workers": 4,
            "targets": {"queue_depth": 4, "ttft_ms": 250, "kv_cache_usage": 0.8},
            "scale_down_delay_s": 120,
            **extra,
        }
    )


def _render(autoscaling: Autoscaling, metrics: str | None = "vllm") -> dict[str, Any]:
    return render.render_autoscaler(
        autoscaling=autoscaling,
        metrics=metrics,
        target_name="chat",
        namespace="models",
        labels=LABELS,
        where="Deployment/chat",
    )


def test_the_hpa_scales_on_per_pod_llm_metrics_within_bounds() -> None:
    hpa = _render(_autoscaling())
    kubernetes_validate.validate(hpa, "1.31", strict=True)
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat"}
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in spec["metrics"]}
    assert targets == {
        "llm_requests_waiting": {"type": "AverageValue", "averageValue": "4"},
        "llm_time_to_first_token_p90_seconds": {"type": "AverageValue", "averageValue": "250m"},
        "llm_kv_cache_usage_ratio": {"type": "AverageValue", "averageValue": "800m"},
    }
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120


def test_the_scaled_object_queries_the_servers_own_metrics() -> None:
    scaled = _render(
        _autoscaling(engine="keda", prometheus_url="http://prometheus.monitoring:9090")
    )
    assert scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["kind"] == "ScaledObject"
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    triggers = {t["name"]: t for t in spec["triggers"]}
    selector = 'namespace="models",pod=~"chat-.*"'
    queue = triggers["queue-depth"]
    assert queue["metricType"] == "AverageValue"
    assert queue["metadata"] == {
        "serverAddress": "http://prometheus.monitoring:9090",
        "query": f"sum(vllm:num_requests_waiting{{{selector}}})",
        "threshold": "4",
    }
    ttft = triggers["ttft-ms"]
    assert ttft["metricType"] == "Value"
    assert ttft["metadata"]["query"] == (
        "histogram_quantile(0.9, sum by (le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{{{selector}}}[2m])))"
    )
    assert ttft["metadata"]["threshold"] == "0.25"
    assert triggers["kv-cache-usage"]["metadata"]["threshold"] == "0.8"


def test_a_target_the_server_does_not_measure_is_refused() -> None:
    with pytest.raises(RenderError, match=r"llama\.cpp server does not measure ttft_ms"):
        _render(_autoscaling(), metrics="llama.cpp")
    with pytest.raises(RenderError, match=r"runtime\.metrics is unset"):
        _render(_autoscaling(), metrics=None)
    queue_only = Autoscaling.model_validate(
        {"min_workers": 1, "max_workers": 2, "targets": {"queue_depth": 2}}
    )
    hpa = _render(queue_only, metrics="llama.cpp")
    kubernetes_validate.validate(hpa, "1.31", strict=True)


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    double = ApiServerDouble().start()
    configuration = client.Configuration()
    loader = kube_config.KubeConfigLoader(config_dict=yaml.safe_load(double.kubeconfig()))
    loader.load_and_set(configuration)
    api_client = client.ApiClient(configuration)
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": "models"}})
    try:
        yield api_client
    finally:
        api_client.close()
        double.stop()


def test_both_objects_apply_to_the_api_server(api: client.ApiClient) -> None:
    hpa = _render(_autoscaling())
    client.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(
        "chat",
        "models",
        hpa,
        field_manager="reconciler",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    read = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("chat", "models")
    assert (read.spec.min_replicas, read.spec.max_replicas) == (1, 4)
    assert [m.pods.metric.name for m in read.spec.metrics] == [
        "llm_requests_waiting",
        "llm_time_to_first_token_p90_seconds",
        "llm_kv_cache_usage_ratio",
    ]

    scaled = _render(_autoscaling(engine="keda", prometheus_url="http://prometheus:9090"))
    custom = client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object(
        "keda.sh",
        "v1alpha1",
        "models",
        "scaledobjects",
        "chat",
        scaled,
        field_manager="reconciler",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    stored = custom.get_namespaced_custom_object(
        "keda.sh", "v1alpha1", "models", "scaledobjects", "chat"
    )
    assert stored["spec"]["triggers"] == scaled["spec"]["triggers"]
    assert stored["metadata"]["labels"] == LABELS

    broken = dict(scaled, spec=dict(scaled["spec"], triggers=[]))
    with pytest.raises(client.ApiException) as refused:
        custom.patch_namespaced_custom_object(
            "keda.sh",
            "v1alpha1",
            "models",
            "scaledobjects",
            "chat",
            broken,
            field_manager="reconciler",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    assert refused.value.status == 422


DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat}}
spec:
  model: smol
  cluster: {cluster}
  template: {template}
  endpoint_name: chat
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 64, avg_context_length: 64}}
  autoscaling:
    min_workers: 1
    max_workers: 3
    targets: {{queue_depth: 2}}
"""
REPO = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpus}
spec:
  driver: kubernetes
  kubeconfig: {secret: gpus-kubeconfig}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: smol}
spec:
  modality: llm
  source: {provider_type: disk, uri: /srv/models/smol}
"""


def _check(*, cluster: str, template: str) -> list[str]:
    sources = [
        SourceFile("repo.yaml", REPO.encode()),
        SourceFile(
            "deployments.yaml", DEPLOYMENT.format(cluster=cluster, template=template).encode()
        ),
    ]
    return [d.format() for d in validate_sources(sources).diagnostics]


def test_validate_takes_autoscaling_where_a_driver_applies_it() -> None:
    assert _check(cluster="gpus", template="vllm") == []
    # locally the proxy measures the signals: the template's server metrics are not read
    assert _check(cluster="local", template="text-embeddings") == []


def test_validate_names_a_template_without_metrics() -> None:
    problems = _check(cluster="gpus", template="text-embeddings")
    assert any("names no server metrics" in problem for problem in problems), problems


def test_workers_and_autoscaling_together_are_a_schema_error() -> None:
    with pytest.raises(ValueError, match="leave workers unset"):
        DeploymentSpec.model_validate(
            {
                "model": "smol",
                "endpoint_name": "chat",
                "deploy_config": {
                    "concurrent_requests": 1,
                    "avg_sequence_length": 1,
                    "avg_context_length": 1,
                },
                "workers": 2,
                "autoscaling": {"min_workers": 1, "max_workers": 2, "targets": {"ttft_ms": 300}},
            }
        )


@pytest.mark.parametrize(
    ("autoscaling", "message"),
    [
        ({"min_workers": 3, "max_workers": 2, "targets": {"queue_depth": 1}}, "more than"),
        ({"min_workers": 1, "max_workers": 2, "targets": {}}, "at least one of"),
        (
            {"min_workers": 1, "max_workers": 2, "targets": {"queue_depth": 1}, "engine": "keda"},
            "set autoscaling.prometheus_url",
        ),
    ],
    ids=["bounds", "no target", "keda without prometheus"],
)
def test_autoscaling_shape_errors(autoscaling: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Autoscaling.model_validate(autoscaling)
