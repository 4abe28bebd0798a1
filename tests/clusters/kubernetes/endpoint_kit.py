"""Endpoint specs for the kubernetes driver tests, rendered by core like the steps do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render import kubernetes as render
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

NAMESPACE = "models"


def endpoint(
    name: str = "chat",
    *,
    image: str = "vllm/vllm-openai:v0.6.3",
    workers: int = 2,
    strategy: str = "green",
) -> k8s.protocol.EndpointSpec:
    raw = dict(BUILTIN_TEMPLATES["vllm"])
    raw["runtime"] = dict(raw["runtime"], image=image)
    template = DeploymentTemplateSpec.model_validate(raw)
    deployment = DeploymentSpec.model_validate(
        {
            "model": "phi",
            "cluster": "gpu",
            "template": "vllm",
            "endpoint_name": "chat endpoint",
            "strategy": strategy,
            "deploy_config": {
                "concurrent_requests": 8,
                "avg_sequence_length": 100,
                "avg_context_length": 100,
            },
        }
    )
    manifests = render.render_kubernetes(
        template_name="vllm",
        template=template,
        deployment_name=name,
        deployment=deployment,
        namespace=NAMESPACE,
        model_path="/models/phi",
        workers=workers,
    )
    container = manifests.deployment["spec"]["template"]["spec"]["containers"][0]
    return k8s.protocol.EndpointSpec(
        name=name,
        owner_labels=render.owner_labels(name),
        image=image,
        command=(),
        args=tuple(container["args"]),
        env={},
        port=template.runtime.port,
        health_path=template.runtime.health_path,
        resources=k8s.protocol.WorkerResources(gpus=1, cpu="8", memory="32Gi"),
        workers=workers,
        strategy=deployment.strategy,
        manifests={"Deployment": manifests.deployment, "Service": manifests.service},
    )


async def until(condition: Callable[[], bool], *, timeout: float = 60.0, what: str) -> None:
    """Wait for ``condition`` with a deadline (checked between short yields)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
