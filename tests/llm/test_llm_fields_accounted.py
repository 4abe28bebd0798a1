"""Every field of the LLM features is honoured by the daemon or refused by validate.

The walk goes over the JSON Schema of the Deployment's ``adapters`` and ``autoscaling``
and the template runtime's ``lora`` and ``metrics``: each field found must be listed
below, either with the test that shows the daemon acting on it, or as refused, which is
then checked here: a Deployment setting it fails ``validate`` with "not supported yet".
A field added to these parts of the spec and listed nowhere fails this test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

LOCAL_SCALING = "tests/clusters/local/test_local_autoscaling.py"
K8S_SCALING = "tests/clusters/kubernetes/test_autoscaling_applied.py"
GATE = (
    "tests/clusters/local/test_local_gated_rollout.py, tests/llm/test_scaling_e2e.py, "
    "tests/clusters/kubernetes/test_gated_rollout.py"
)
HONOURED = {
    "deployment.adapters": "tests/llm/test_lora_adapters.py",
    "deployment.adapters[].name": "tests/llm/test_lora_adapters.py",
    "deployment.adapters[].model": "tests/llm/test_lora_adapters.py",
    "template.runtime.lora": "tests/render/test_local_command.py, test_adapters_on_kubernetes.py",
    "template.runtime.metrics": "tests/llm/test_autoscaling_render.py, " + K8S_SCALING,
    "deployment.autoscaling": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.autoscaling.min_workers": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.autoscaling.max_workers": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.autoscaling.targets": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.autoscaling.targets.queue_depth": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.autoscaling.targets.ttft_ms": f"{K8S_SCALING}, local_autoscaler votes",
    "deployment.autoscaling.targets.kv_cache_usage": "tests/llm/test_autoscaling_render.py",
    "deployment.autoscaling.engine": K8S_SCALING,
    "deployment.autoscaling.prometheus_url": K8S_SCALING,
    "deployment.autoscaling.scale_down_delay_s": f"{LOCAL_SCALING}, {K8S_SCALING}",
    "deployment.rollout_gate": GATE,
    "deployment.rollout_gate.traffic_percent": GATE,
    "deployment.rollout_gate.window_s": GATE,
    "deployment.rollout_gate.max_error_rate": GATE,
    "deployment.rollout_gate.min_requests": GATE,
}
REFUSED_ON = {
    "deployment.autoscaling.targets.kv_cache_usage": ("local", "does not include the KV cache"),
    "deployment.autoscaling.engine": ("local", "engine is for kubernetes Clusters"),
    "deployment.autoscaling.prometheus_url": ("local", "prometheus_url is for kubernetes"),
    "deployment.rollout_gate": ("gpus", "needs the Cluster's ingress_url"),
}
"""Honoured on some clusters, refused by validate on the others: where, and the words."""


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _resolve(root["$defs"][ref.rsplit("/", 1)[1]], root)
    if "properties" in schema:
        return schema
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or ():
            if option.get("type") != "null":
                return _resolve(option, root)
    return schema


def _fields(prefix: str, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Iterator[str]:
    schema = _resolve(schema, root)
    if schema.get("type") == "array" and "items" in schema:
        yield from _fields(f"{prefix}[]", schema["items"], root)
        return
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        yield path
        yield from _fields(path, sub, root)


def _walk() -> set[str]:
    deployment = DeploymentSpec.model_json_schema()
    found = set()
    for name in ("adapters", "autoscaling", "rollout_gate"):
        found.add(f"deployment.{name}")
        found |= set(_fields(f"deployment.{name}", deployment["properties"][name], deployment))
    template = DeploymentTemplateSpec.model_json_schema()
    runtime = _resolve(template["properties"]["runtime"], template)
    for name in ("lora", "metrics"):
        found.add(f"template.runtime.{name}")
    assert {"lora", "metrics"} <= set(runtime["properties"])
    return found


def test_every_llm_field_is_honoured_or_refused() -> None:
    walked = _walk()
    assert walked == set(HONOURED), sorted(walked ^ set(HONOURED))
    assert set(REFUSED_ON) <= set(HONOURED)


DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat}}
spec:
  model: smol
  cluster: {cluster}
  template: vllm
  endpoint_name: chat
  deploy_config: {{concurrent_requests: 4, avg_sequence_length: 64, avg_context_length: 64}}
  autoscaling:
    min_workers: 1
    max_workers: 3
    targets: {{queue_depth: 2, ttft_ms: 300, kv_cache_usage: 0.9}}
    engine: keda
    prometheus_url: http://prometheus:9090
    scale_down_delay_s: 60
  rollout_gate: {{traffic_percent: 20, window_s: 30}}
"""
REPO = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpus}
spec:
  driver: kubernetes
  kubeconfig: {secret: gpus-kubeconfig}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: local}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: smol}
spec:
  modality: llm
  source: {provider_type: disk, uri: /srv/models/smol}
"""


def test_what_a_cluster_cannot_honour_is_refused_there_by_validate() -> None:
    found: dict[str, list[str]] = {}
    for cluster in ("gpus", "local"):
        sources = [
            SourceFile("repo.yaml", REPO.encode()),
            SourceFile("deployments.yaml", DEPLOYMENT.format(cluster=cluster).encode()),
        ]
        found[cluster] = [d.format() for d in validate_sources(sources).diagnostics]
    for field, (cluster, words) in REFUSED_ON.items():
        assert any(words in problem for problem in found[cluster]), (field, found[cluster])
    refused = {field for field, (cluster, _) in REFUSED_ON.items()}
    assert len(found["gpus"]) == sum(1 for c, _ in REFUSED_ON.values() if c == "gpus")
    assert len(found["local"]) == sum(1 for c, _ in REFUSED_ON.values() if c == "local")
    assert refused
