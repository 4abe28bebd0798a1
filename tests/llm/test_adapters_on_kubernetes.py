"""LoRA adapters rendered for Kubernetes: a vllm-style template gets them as server
arguments (the manifest still valid against the real schemas); a llama-cpp-python-style
one is refused there, saying so."""

from __future__ import annotations

import kubernetes_validate
import pytest

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render import kubernetes as render
from reconciler.core.render.llm_server import AdapterFiles
from reconciler.core.render.placeholders import RenderError
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

DEPLOYMENT = DeploymentSpec.model_validate(
    {
        "model": "llama",
        "cluster": "gpus",
        "endpoint_name": "chat",
        "deploy_config": {
            "concurrent_requests": 8,
            "avg_sequence_length": 100,
            "avg_context_length": 100,
        },
        "adapters": [{"name": "sql", "model": "sql-lora"}, {"name": "poet", "model": "poet"}],
    }
)
ADAPTERS = (AdapterFiles("sql", "org/sql-lora"), AdapterFiles("poet", "/models/poet"))


def _render(template_name: str) -> render.KubernetesManifests:
    return render.render_kubernetes(
        template_name=template_name,
        template=DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES[template_name]),
        deployment_name="chat",
        deployment=DEPLOYMENT,
        namespace="models",
        model_path="org/base",
        workers=1,
        adapters=ADAPTERS,
    )


def test_vllm_gets_each_adapter_as_a_lora_module() -> None:
    manifests = _render("vllm")
    kubernetes_validate.validate(manifests.deployment, "1.31", strict=True)
    args = manifests.deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    tail = args[args.index("--enable-lora") :]
    assert tail == [
        "--enable-lora",
        "--max-loras",
        "2",
        "--lora-modules",
        "sql=org/sql-lora",
        "poet=/models/poet",
    ]


def test_llama_cpp_python_adapters_are_refused_on_kubernetes() -> None:
    with pytest.raises(RenderError, match="not supported on Kubernetes yet"):
        _render("llama-cpp")


def test_a_template_without_lora_is_refused() -> None:
    with pytest.raises(RenderError, match="takes no LoRA adapters"):
        _render("text-embeddings")
