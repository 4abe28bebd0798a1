"""Rendered Deployment and Service manifests, checked against the real Kubernetes schemas."""

from __future__ import annotations

import kubernetes_validate
import pytest

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render import kubernetes as render
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec
from tests.clusters.kubernetes.endpoint_kit import endpoint

K8S_VERSION = "1.31"


def _deployment(strategy: str = "green") -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "model": "phi",
            "cluster": "gpu",
            "endpoint_name": "chat",
            "strategy": strategy,
            "deploy_config": {
                "concurrent_requests": 16,
                "avg_sequence_length": 100,
                "avg_context_length": 100,
            },
        }
    )


@pytest.mark.parametrize(
    "template_name",
    # cloud-gateway has no image: a kubernetes Cluster cannot run it (validate says so)
    sorted(name for name, t in BUILTIN_TEMPLATES.items() if t["runtime"].get("image")),
)
def test_builtin_templates_render_valid_objects(template_name: str) -> None:
    template = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES[template_name])
    manifests = render.render_kubernetes(
        template_name=template_name,
        template=template,
        deployment_name="chat",
        deployment=_deployment(),
        namespace="models",
        model_path="/models/phi",
        workers=3,
        gpu_product="NVIDIA-H100-80GB-HBM3",
    )
    for manifest in (manifests.deployment, manifests.service):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    spec = manifests.deployment["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["replicas"] == 3
    assert manifests.deployment["metadata"]["namespace"] == "models"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert manifests.labels[render.MANAGED_BY_LABEL] == "reconciler"
    assert manifests.labels[render.OWNER_LABEL] == "chat"
    assert container["readinessProbe"]["httpGet"]["path"] == template.runtime.health_path
    assert container["livenessProbe"]["httpGet"]["path"] == template.runtime.health_path
    assert "{" not in " ".join(container["args"])
    gpus = template.resources.gpus_per_worker or 0
    assert container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") == (
        str(gpus) if gpus else None
    )
    assert spec["template"]["spec"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"
    }


def test_vllm_args_are_filled_and_gpus_follow_sizing() -> None:
    template = DeploymentTemplateSpec.model_validate(BUILTIN_TEMPLATES["vllm"])
    manifests = render.render_kubernetes(
        template_name="vllm",
        template=template,
        deployment_name="chat",
        deployment=_deployment("recreate"),
        namespace="models",
        model_path="/m",
        workers=1,
        gpus_per_worker=4,
    )
    container = manifests.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--model", "/m", "--port", "8000", "--max-num-seqs", "16"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert manifests.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert manifests.service["spec"]["ports"][0]["port"] == 8000


def test_the_driver_manifests_stay_valid_per_revision() -> None:
    spec = endpoint(workers=2)
    driver_view = k8s.KubernetesDriver.__new__(k8s.KubernetesDriver)
    deployment, revision = driver_view._revision_manifest(spec)
    service = driver_view._service_manifest(spec, select=revision, target=revision)
    for manifest in (deployment, service):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert k8s.OWNER_LABEL == render.OWNER_LABEL


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"command": ["serve"]}, "runtime.image is empty"),
        ({"image": "x:1", "args": ["--flag", "{nope}"]}, "unknown placeholder {nope}"),
    ],
)
def test_unrenderable_templates_say_why(runtime: dict[str, object], message: str) -> None:
    template = DeploymentTemplateSpec.model_validate({"modality": "llm", "runtime": runtime})
    with pytest.raises(RenderError, match=message):
        render.render_kubernetes(
            template_name="t",
            template=template,
            deployment_name="chat",
            deployment=_deployment(),
            namespace="models",
            model_path="/m",
            workers=1,
        )


def test_fractional_cpu_becomes_millicores() -> None:
    assert render.quantity(0.5) == "500m"
    assert render.quantity(8) == "8"
    assert render.quantity("32Gi") == "32Gi"
