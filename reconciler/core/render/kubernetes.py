"""A Deployment spec and its template made into a Kubernetes Deployment and Service (pure).

The plan shows these objects and the kubernetes driver applies them, so they are built
here, without a cluster: the template's image and args (placeholders filled, the server
listening on every address of its pod), container limits ``nvidia.com/gpu``, readiness and
liveness probes on the template's ``health_path``, the labels by which the driver finds and
prunes what it manages, and the Cluster's namespace. The driver adds only what depends on
the live cluster (revision names and the Service's switch between revisions). A Cluster
with an ``ingress_url`` also gets an Ingress per endpoint (:func:`render_ingress`), and the
endpoint's URL is then ``<ingress_url>/<namespace>/<deployment>/v1``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from reconciler.core.render import llm_server, placeholders
from reconciler.core.render.placeholders import RenderError
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "reconciler"
NAME_LABEL = "app.kubernetes.io/name"
OWNER_LABEL = "reconciler/deployment"
"""Names the reconciler Deployment (``metadata.name``) that owns the object."""
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
CONTAINER_NAME = "server"
PORT_NAME = "http"
POD_HOST = "0.0.0.0"


@dataclasses.dataclass(frozen=True)
class KubernetesManifests:
    """The objects of one endpoint, as JSON-shaped dicts ready for server-side apply."""

    deployment: dict[str, Any]
    service: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        """The labels every object of the endpoint carries (for selection and pruning)."""
        return dict(self.deployment["metadata"]["labels"])


def owner_labels(deployment_name: str) -> dict[str, str]:
    """The labels that mark an object as ours and name the Deployment that owns it."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        OWNER_LABEL: deployment_name,
        NAME_LABEL: deployment_name,
    }


def quantity(value: str | int | float) -> str:
    """A CPU or memory amount as a Kubernetes quantity string (0.5 -> "500m")."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not value.is_integer():
        millis = Decimal(str(value)) * 1000
        if millis != millis.to_integral_value():
            raise RenderError(f"{value} cores is finer than a millicore")
        return f"{int(millis)}m"
    return str(int(value))


def _probe(path: str, *, liveness: bool) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": path, "port": PORT_NAME}}
    if liveness:
        # Loading weights takes minutes for large models; only a server that stopped
        # answering for two minutes after that is restarted.
        probe.update(initialDelaySeconds=120, periodSeconds=20, failureThreshold=6)
    else:
        probe.update(periodSeconds=5, failureThreshold=3)
    return probe


def render_kubernetes(
    *,
    template_name: str,
    template: DeploymentTemplateSpec,
    deployment_name: str,
    deployment: DeploymentSpec,
    namespace: str,
    model_path: str,
    workers: int,
    gpus_per_worker: int | None = None,
    gpu_product: str | None = None,
    adapters: Sequence[llm_server.AdapterFiles] = (),
) -> KubernetesManifests:
    """The Deployment and Service of ``deployment``; RenderError names what cannot render.

    ``workers`` and ``gpus_per_worker`` come from sizing (``gpus_per_worker`` None keeps
    the template's); ``gpu_product`` pins the pods to nodes with that
    ``nvidia.com/gpu.product`` label. ``adapters`` (LoRA) reach a vllm-style server as
    arguments; other styles are not supported on Kubernetes yet.
    """
    runtime = template.runtime
    where = f"DeploymentTemplate/{template_name}"
    if not runtime.image:
        raise RenderError(
            f"{where}: runtime.image is empty, and the kubernetes driver runs a container "
            "image (runtime.command is for the local driver)"
        )
    if workers < 0:
        raise RenderError(f"Deployment/{deployment_name}: workers must be 0 or more, not {workers}")
    values = {
        placeholders.MODEL_PATH: model_path,
        placeholders.PORT: str(runtime.port),
        placeholders.HOST: POD_HOST,
        placeholders.CONCURRENT_REQUESTS: str(deployment.deploy_config.concurrent_requests),
        placeholders.DEPLOYMENT: deployment_name,
        placeholders.ENDPOINT_NAME: deployment.endpoint_name,
    }
    args = [
        placeholders.fill(part, values, where=f"{where} runtime.args[{index}]")
        for index, part in enumerate(runtime.args)
    ]
    llm_server.check_adapters_supported(
        template_name=template_name,
        lora=runtime.lora,
        adapters=adapters,
        where=f"Deployment/{deployment_name}",
    )
    if adapters and runtime.lora != llm_server.VLLM:
        raise RenderError(
            f"{where}: LoRA adapters in the {runtime.lora} style are not supported on "
            "Kubernetes yet (only vllm-style templates take adapters there)"
        )
    args += llm_server.vllm_lora_args(adapters)
    env = [
        {"name": key, "value": placeholders.fill(value, values, where=f"{where} runtime.env.{key}")}
        for key, value in sorted(runtime.env.items())
    ]
    gpus = template.resources.gpus_per_worker if gpus_per_worker is None else gpus_per_worker
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if template.resources.cpu is not None:
        requests["cpu"] = quantity(template.resources.cpu)
    if template.resources.memory is not None:
        requests["memory"] = limits["memory"] = quantity(template.resources.memory)
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": runtime.image,
        "args": args,
        "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "readinessProbe": _probe(runtime.health_path, liveness=False),
        "livenessProbe": _probe(runtime.health_path, liveness=True),
    }
    if env:
        container["env"] = env
    if requests or limits:
        container["resources"] = {
            key: section for key, section in (("requests", requests), ("limits", limits)) if section
        }
    labels = owner_labels(deployment_name)
    pod_spec: dict[str, Any] = {"containers": [container]}
    if gpu_product:
        pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: gpu_product}
    strategy = (
        {"type": "Recreate"} if deployment.strategy == "recreate" else {"type": "RollingUpdate"}
    )
    metadata = {"name": deployment_name, "namespace": namespace, "labels": labels}
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": workers,
            "selector": {"matchLabels": {OWNER_LABEL: deployment_name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(metadata, labels=dict(labels)),
        "spec": {
            "type": "ClusterIP",
            "selector": {OWNER_LABEL: deployment_name},
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": runtime.port,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
    return KubernetesManifests(deployment=manifest, service=service)


# --- the way in from outside the cluster (Cluster.spec.ingress_url) --------------------

INGRESS_REWRITE_ANNOTATION = "nginx.ingress.kubernetes.io/rewrite-target"
INGRESS_REGEX_ANNOTATION = "nginx.ingress.kubernetes.io/use-regex"


def ingress_prefix(ingress_url: str, *, namespace: str, deployment_name: str) -> str:
    """The path under which an endpoint is reached through the Cluster's ingress:
    ``<path of ingress_url>/<namespace>/<deployment>``."""
    base = urlsplit(ingress_url).path.rstrip("/")
    return f"{base}/{namespace}/{deployment_name}"


def ingress_endpoint_url(ingress_url: str, *, namespace: str, deployment_name: str) -> str:
    """The endpoint's OpenAI-compatible base URL through the ingress, ending in ``/v1``."""
    parts = urlsplit(ingress_url)
    prefix = ingress_prefix(ingress_url, namespace=namespace, deployment_name=deployment_name)
    return f"{parts.scheme}://{parts.netloc}{prefix}/v1"


def render_ingress(
    *, deployment_name: str, namespace: str, ingress_url: str
) -> dict[str, Any]:
    """An Ingress routing ``<ingress_url>/<namespace>/<deployment>/...`` to the endpoint's
    Service, the prefix stripped (the server serves ``/v1`` at its root). The rewrite is
    ingress-nginx's (``use-regex`` and ``rewrite-target``); the Ingress names no class, so
    the cluster's default IngressClass serves it. ``host`` is set when ``ingress_url``
    names a DNS host (an IP address matches any host)."""
    prefix = ingress_prefix(ingress_url, namespace=namespace, deployment_name=deployment_name)
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": f"{prefix}(/|$)(.*)",
                    "pathType": "ImplementationSpecific",
                    "backend": {
                        "service": {"name": deployment_name, "port": {"name": PORT_NAME}}
                    },
                }
            ]
        }
    }
    host = urlsplit(ingress_url).hostname or ""
    if host and not _is_ip(host):
        rule = {"host": host, **rule}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": deployment_name,
            "namespace": namespace,
            "labels": owner_labels(deployment_name),
            "annotations": {
                INGRESS_REGEX_ANNOTATION: "true",
                INGRESS_REWRITE_ANNOTATION: "/$2",
            },
        },
        "spec": {"rules": [rule]},
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
