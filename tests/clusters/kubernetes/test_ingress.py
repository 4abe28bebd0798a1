"""A Cluster's ``ingress_url``: each endpoint gets an Ingress leading to its Service, and
its ``endpoint_url`` is ``<ingress_url>/<namespace>/<deployment>/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from reconciler.core.render import kubernetes as render
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.engine import outcomes
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE
from tests.clusters.kubernetes.test_deploy_steps import SPEC, Facts, context, steps_for

INGRESS_URL = "https://20.244.107.114:10001"


class IngressFacts(Facts):
    def __init__(self, ingress_url: str | None) -> None:
        super().__init__(gpu={"type": "nvidia-a100-80gb", "count": 8})
        self.ingress_url = ingress_url

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        spec = super().cluster(name)
        if spec is None or self.ingress_url is None:
            return spec
        return {**spec, "ingress_url": self.ingress_url}


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


def _ingresses(backend: Backend) -> list[client.V1Ingress]:
    return list(client.NetworkingV1Api(backend.api).list_namespaced_ingress(NAMESPACE).items)


async def test_an_endpoint_is_reached_through_the_clusters_ingress(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))

    done = await steps["deploy_model"](context("deploy_model", dict(SPEC)))

    assert isinstance(done, outcomes.Done), done
    url = f"{INGRESS_URL}/{NAMESPACE}/chat/v1"
    assert done.outputs["endpoint_url"] == url
    assert done.outputs["status"]["endpoint_url"] == url
    [ingress] = _ingresses(backend)
    assert ingress.metadata.name == "chat"
    [rule] = ingress.spec.rules
    assert rule.host is None  # an IP address: any host
    [path] = rule.http.paths
    assert path.path == f"/{NAMESPACE}/chat(/|$)(.*)"
    assert path.backend.service.name == "chat" and path.backend.service.port.name == "http"
    assert ingress.metadata.annotations[render.INGRESS_REWRITE_ANNOTATION] == "/$2"

    # The Cluster drops its ingress_url: the next rollout removes the Ingress.
    plain = steps_for(driver, IngressFacts(None))
    again = await plain["deploy_model"](context("deploy_model", {**SPEC, "workers": 1}))
    assert isinstance(again, outcomes.Done), again
    assert again.outputs["endpoint_url"] == f"http://chat.{NAMESPACE}.svc:8000/v1"
    assert _ingresses(backend) == []


async def test_removing_the_endpoint_removes_its_ingress(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))
    assert isinstance(
        await steps["deploy_model"](context("deploy_model", dict(SPEC))), outcomes.Done
    )
    assert len(_ingresses(backend)) == 1

    removed = await steps["undeploy_model"](context("undeploy_model", dict(SPEC)))

    assert removed == outcomes.Done({"removed": True})
    assert _ingresses(backend) == []


@pytest.mark.parametrize(
    ("ingress_url", "host", "path", "url"),
    [
        (INGRESS_URL, None, "/models/chat(/|$)(.*)", f"{INGRESS_URL}/models/chat/v1"),
        (
            "https://ml.example.com/gateway/",
            "ml.example.com",
            "/gateway/models/chat(/|$)(.*)",
            "https://ml.example.com/gateway/models/chat/v1",
        ),
    ],
)
def test_rendered_ingresses_are_valid_and_match_the_url(
    ingress_url: str, host: str | None, path: str, url: str
) -> None:
    ingress = render.render_ingress(
        deployment_name="chat", namespace="models", ingress_url=ingress_url
    )
    kubernetes_validate.validate(ingress, "1.31", strict=True)
    [rule] = ingress["spec"]["rules"]
    assert rule.get("host") == host
    assert rule["http"]["paths"][0]["path"] == path
    assert (
        render.ingress_endpoint_url(ingress_url, namespace="models", deployment_name="chat") == url
    )
