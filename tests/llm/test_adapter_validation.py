"""A Deployment's LoRA adapters are checked by ``validate`` up front: each names a Model
that exists, the template's server takes adapters, and Kubernetes gets only vllm-style
ones; the plan's reference graph makes the Deployment depend on its adapters' Models."""

from __future__ import annotations

import pytest

from reconciler.core.diff import ObjectState
from reconciler.core.plan import references_of
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile
from reconciler.specs.deployment import DeploymentSpec

CLUSTERS = """\
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
"""
MODELS = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: smol}
spec:
  modality: llm
  source: {provider_type: disk, uri: /srv/models/smol}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: sql-lora}
spec:
  modality: llm
  source: {provider_type: disk, uri: /srv/models/sql-lora}
"""


def _deployment(*, template: str, cluster: str = "local", adapter_model: str = "sql-lora") -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Deployment
metadata: {{name: chat}}
spec:
  model: smol
  cluster: {cluster}
  template: {template}
  endpoint_name: chat
  deploy_config: {{concurrent_requests: 1, avg_sequence_length: 16, avg_context_length: 64}}
  adapters:
    - {{name: sql, model: {adapter_model}}}
"""


def _check(deployment: str) -> list[str]:
    sources = [
        SourceFile("clusters.yaml", CLUSTERS.encode()),
        SourceFile("models.yaml", MODELS.encode()),
        SourceFile("deployments.yaml", deployment.encode()),
    ]
    return [d.format() for d in validate_sources(sources).diagnostics]


@pytest.mark.parametrize(
    ("template", "cluster"),
    [("llama-cpp", "local"), ("vllm", "gpus")],
    ids=["llama-cpp-python on local", "vllm on kubernetes"],
)
def test_adapters_on_a_template_that_takes_them_validate(template: str, cluster: str) -> None:
    assert _check(_deployment(template=template, cluster=cluster)) == []


def test_an_adapter_model_that_does_not_exist_is_named_at_its_field() -> None:
    [problem] = _check(_deployment(template="llama-cpp", adapter_model="sql-lorra"))
    assert problem.startswith("deployments.yaml:11:")
    assert "Model 'sql-lorra' does not exist" in problem
    assert "sql-lora" in problem  # did you mean


def test_a_template_without_lora_is_refused() -> None:
    [problem] = _check(_deployment(template="text-embeddings"))
    assert "DeploymentTemplate 'text-embeddings' takes no LoRA adapters" in problem


def test_llama_cpp_python_adapters_on_kubernetes_are_not_supported_yet() -> None:
    [problem] = _check(_deployment(template="llama-cpp", cluster="gpus"))
    assert "not supported yet" in problem and "Cluster 'gpus'" in problem


def test_an_adapter_name_used_twice_is_a_schema_error() -> None:
    with pytest.raises(ValueError, match="used twice"):
        DeploymentSpec.model_validate(
            {
                "model": "smol",
                "endpoint_name": "chat",
                "deploy_config": {
                    "concurrent_requests": 1,
                    "avg_sequence_length": 1,
                    "avg_context_length": 1,
                },
                "adapters": [{"name": "chat", "model": "sql-lora"}],
            }
        )


def test_the_deployment_depends_on_its_adapter_models() -> None:
    spec = {"model": "smol", "cluster": "local", "adapters": [{"name": "sql", "model": "sql-lora"}]}
    state = ObjectState(kind="Deployment", name="chat", document={"spec": spec}, spec_hash="unused")
    assert "Model/sql-lora" in references_of(state)
