"""A Deployment's autoscaling on a kubernetes Cluster: the cluster's own autoscaler object.

Through the deploy step and the real driver, against the API double (and a real
kube-apiserver when ``KUBEBUILDER_ASSETS`` has one): the rendered HPA is applied aimed at
the serving revision's Deployment and re-aimed at each rollout; ``replicas`` is the
autoscaler's (an HPA's change through the scale subresource is never reported as drift,
nor undone by a redeploy); a new revision starts with the serving revision's count; a
KEDA ScaledObject replaces the HPA when the engine changes; dropping autoscaling removes
the object and gives ``replicas`` back to the spec; deleting the endpoint removes it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client

from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.drivers.clusters import kubernetes_autoscaling as autoscalers
from reconciler.drivers.clusters.kubernetes_drift import APPLIED_ANNOTATION
from reconciler.drivers.clusters.protocol import Drift, EndpointObservation
from reconciler.engine import outcomes
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE, until
from tests.clusters.kubernetes.test_deploy_steps import SPEC, Facts, context, steps_for

AUTOSCALING = {
    "min_workers": 2,
    "max_workers": 5,
    "targets": {"queue_depth": 4, "ttft_ms": 500},
    "scale_down_delay_s": 60,
}
SCALED: dict[str, Any] = {
    **{k: v for k, v in SPEC.items() if k != "workers"},
    "autoscaling": AUTOSCALING,
}
GPU = {"type": "nvidia-a100-80gb", "count": 8}


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


def deployments(backend: Backend) -> list[dict[str, Any]]:
    listed = backend.apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"{k8s.OWNER_LABEL}=chat"
    )
    return [backend.raw(item) for item in listed.items]


def hpa(backend: Backend) -> dict[str, Any] | None:
    try:
        found = client.AutoscalingV2Api(backend.api).read_namespaced_horizontal_pod_autoscaler(
            "chat", NAMESPACE
        )
    except client.ApiException as error:
        assert error.status == 404
        return None
    return backend.raw(found)


def scaled_object(backend: Backend) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.CustomObjectsApi(backend.api).get_namespaced_custom_object(
            "keda.sh", "v1alpha1", NAMESPACE, "scaledobjects", "chat"
        )
    except client.ApiException as error:
        assert error.status == 404
        return None
    return found


def replicas_managers(deployment: dict[str, Any]) -> set[str]:
    """The field managers that own ``spec.replicas``."""
    return {
        entry["manager"]
        for entry in deployment["metadata"].get("managedFields") or []
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    }


async def deploy(driver: k8s.KubernetesDriver, spec: dict[str, Any]) -> dict[str, Any]:
    done = await steps_for(driver, Facts(gpu=GPU))["deploy_model"](context("deploy_model", spec))
    assert isinstance(done, outcomes.Done), done
    status: dict[str, Any] = done.outputs["status"]
    return status


async def test_the_hpa_follows_the_serving_revision_and_owns_replicas(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    reported: list[Drift] = []
    driver.watch_drift(lambda _name, found: reported.extend(found))
    scaled: list[tuple[str, EndpointObservation]] = []
    driver.add_scale_listener(lambda name, seen: scaled.append((name, seen)))

    status = await deploy(driver, dict(SCALED))
    [first] = deployments(backend)
    name = first["metadata"]["name"]
    assert status["autoscaling"] == {
        "kind": "HorizontalPodAutoscaler",
        "name": "chat",
        "target": name,
        "min_workers": 2,
        "max_workers": 5,
    }
    assert first["spec"]["replicas"] == 2, "it starts at min_workers"
    applied = json.loads(first["metadata"]["annotations"][APPLIED_ANNOTATION])
    assert "replicas" not in applied["spec"], "what drift is found against has no replicas"
    assert replicas_managers(first) == {autoscalers.REPLICAS_MANAGER}
    found = hpa(backend)
    assert found is not None and found["spec"]["scaleTargetRef"]["name"] == name
    assert (found["spec"]["minReplicas"], found["spec"]["maxReplicas"]) == (2, 5)

    # the HPA scales the Deployment through its scale subresource
    backend.apps.patch_namespaced_deployment_scale(
        name,
        NAMESPACE,
        {"spec": {"replicas": 4}},
        field_manager="horizontal-pod-autoscaler",
        _content_type="application/merge-patch+json",
    )
    await until(lambda: _ready(backend, name) == 4, what="four workers ready")
    # ... which the watch reports as a scale event, to the listener and in observations
    await until(lambda: bool(scaled), what="the scale event")
    [(endpoint, seen)] = scaled
    assert (endpoint, seen.workers_desired) == ("chat", 4)
    [event] = seen.scale_events
    assert (event.from_workers, event.to_workers) == (2, 4)
    assert event.why == f"horizontal-pod-autoscaler set replicas of Deployment {name} from 2 to 4"
    assert (await driver.observe_endpoint("chat")).scale_events == (event,)
    # then someone edits the image: the watch reports that, and never the replicas
    backend.apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"metadata": {"labels": {"edited": "by-hand"}}},
        field_manager="kubectl-label",
        _content_type="application/merge-patch+json",
    )
    backend.apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": "x:y"}]}}}},
        field_manager="kubectl-edit",
        _content_type="application/strategic-merge-patch+json",
    )
    await until(lambda: any(".image" in d.field for d in reported), what="the image drift")
    assert not any("replicas" in d.field for d in reported), reported
    assert [d.field for d in (await driver.observe_endpoint("chat")).drift] == [
        f'Deployment/{name}.spec.template.spec.containers[name="server"].image'
    ]

    # a redeploy repairs the image and leaves the autoscaler's count alone
    again = await deploy(driver, dict(SCALED))
    assert [d["field"] for d in again["drift"]] == [
        f'Deployment/{name}.spec.template.spec.containers[name="server"].image'
    ]
    [same] = deployments(backend)
    assert same["spec"]["replicas"] == 4
    assert len(scaled) == 1, "our own redeploy and edits are no scale events"

    # a new revision starts with the serving revision's four, and the HPA follows it
    changed = dict(SCALED, deploy_config=dict(SCALED["deploy_config"], concurrent_requests=16))
    status = await deploy(driver, changed)
    [second] = deployments(backend)
    assert second["metadata"]["name"] != name
    assert second["spec"]["replicas"] == 4
    assert status["autoscaling"]["target"] == second["metadata"]["name"]
    found = hpa(backend)
    assert found is not None
    assert found["spec"]["scaleTargetRef"]["name"] == second["metadata"]["name"]


async def test_engine_keda_then_no_autoscaling_then_removal(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await deploy(driver, dict(SCALED))
    assert hpa(backend) is not None
    keda = dict(
        SCALED,
        autoscaling=dict(AUTOSCALING, engine="keda", prometheus_url="http://prometheus:9090"),
    )
    status = await deploy(driver, keda)
    [current] = deployments(backend)
    assert status["autoscaling"]["kind"] == "ScaledObject"
    assert hpa(backend) is None, "the HPA gave way to the ScaledObject"
    scaled = scaled_object(backend)
    assert scaled is not None
    assert scaled["spec"]["scaleTargetRef"]["name"] == current["metadata"]["name"]
    assert "vllm:num_requests_waiting" in scaled["spec"]["triggers"][0]["metadata"]["query"]

    pinned = {**{k: v for k, v in SCALED.items() if k != "autoscaling"}, "workers": 3}
    status = await deploy(driver, pinned)
    assert "autoscaling" not in status
    assert (hpa(backend), scaled_object(backend)) == (None, None)
    [current] = deployments(backend)
    assert current["spec"]["replicas"] == 3
    assert k8s.FIELD_MANAGER in replicas_managers(current), "the spec owns replicas again"

    await deploy(driver, dict(SCALED))
    assert hpa(backend) is not None
    assert await driver.delete_endpoint("chat") is True
    assert (hpa(backend), deployments(backend)) == (None, [])


def _ready(backend: Backend, name: str) -> int:
    found = backend.apps.read_namespaced_deployment(name, NAMESPACE)
    return int((found.status.ready_replicas if found.status else 0) or 0)
