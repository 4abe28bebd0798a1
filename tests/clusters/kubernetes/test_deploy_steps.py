"""deploy_model, undeploy_model and check_cluster on a kubernetes Cluster, through the real
kubernetes driver against a real HTTP API (the double, or envtest's kube-apiserver)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from kubernetes import client

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE

PHI = {"provider_type": "hugging_face", "uri": "microsoft/Phi-3.5-mini-instruct"}


class Facts:
    """A Ready Hugging Face Model, the built-in vllm template, one kubernetes Cluster."""

    def __init__(self, *, gpu: Mapping[str, Any] | None) -> None:
        self.gpu = gpu

    def model(self, name: str) -> ModelFacts | None:
        return ModelFacts(
            path="/var/lib/reconciler/models/phi",
            parameters="3.8B",
            dtype="bfloat16",
            layers=32,
            kv_heads=32,
            head_dim=96,
            source=PHI,
        )

    def template(self, name: str) -> Mapping[str, Any] | None:
        return None

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        spec: dict[str, Any] = {"driver": "kubernetes", "namespace": NAMESPACE}
        if self.gpu is not None:
            spec["gpu"] = dict(self.gpu)
        return spec if name == "gpu" else None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        return None


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


SPEC: dict[str, Any] = {
    "deployment": "chat",
    "model": "phi",
    "cluster": "gpu",
    "template": "vllm",
    "endpoint_name": "chat endpoint",
    "workers": 2,
    "deploy_config": {
        "concurrent_requests": 8,
        "avg_sequence_length": 100,
        "avg_context_length": 100,
    },
    "ready_timeout_s": 20,
}


def context(step_type: str, inputs: dict[str, Any]) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step_type,
        step_type=step_type,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/chat",
        revision="r1",
        cluster="gpu",
        log=StepLog(prefix=step_type),
        services=StepServices(readiness_poll_interval_s=0.05),
    )


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


def steps_for(driver: k8s.KubernetesDriver, facts: Facts) -> Registry:
    steps = Registry()
    register_endpoint_steps(steps, drivers={"gpu": driver}, facts=facts)
    return steps


def deployments(backend: Backend) -> list[client.V1Deployment]:
    return list(
        backend.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"{k8s.OWNER_LABEL}=chat"
        ).items
    )


async def test_deploy_renders_rolls_out_and_records_resources_url_and_sizing(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, Facts(gpu={"type": "nvidia-a100-80gb", "count": 8}))

    done = await steps["deploy_model"](context("deploy_model", dict(SPEC)))

    assert isinstance(done, outcomes.Done), done
    status = done.outputs["status"]
    [deployment] = deployments(backend)
    assert status["endpoint_url"] == f"http://chat.{NAMESPACE}.svc:8000/v1"
    assert (status["workers"], status["ready_workers"], status["cluster"]) == (2, 2, "gpu")
    assert status["resources"] == [
        {"kind": "Deployment", "namespace": NAMESPACE, "name": deployment.metadata.name},
        {"kind": "Service", "namespace": NAMESPACE, "name": "chat"},
    ]
    assert status["sizing"]["gpu_type"] == "A100-80GB"
    assert status["sizing"]["workers"] == 2 and status["sizing"]["feasible"] is True
    assert "drift" not in status
    container = deployment.spec.template.spec.containers[0]
    assert container.args[:2] == ["--model", "microsoft/Phi-3.5-mini-instruct"]
    assert container.resources.limits["nvidia.com/gpu"] == str(status["sizing"]["gpus_per_worker"])
    assert deployment.metadata.labels["app.kubernetes.io/managed-by"] == "reconciler"


async def test_drift_by_another_manager_is_reported_and_reapplied(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, Facts(gpu={"type": "nvidia-a100-80gb"}))
    assert isinstance(
        await steps["deploy_model"](context("deploy_model", dict(SPEC))), outcomes.Done
    )
    [deployment] = deployments(backend)
    backend.apps.patch_namespaced_deployment(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-scale",
        _content_type="application/merge-patch+json",
    )

    again = await steps["deploy_model"](context("deploy_model", dict(SPEC)))

    assert isinstance(again, outcomes.Done), again
    [drift] = again.outputs["status"]["drift"]
    assert drift["field"] == f"Deployment/{deployment.metadata.name}.spec.replicas"
    assert (drift["manager"], drift["expected"], drift["observed"]) == ("kubectl-scale", "2", "5")
    assert drift["reapplied"] is True
    [healed] = deployments(backend)
    assert healed.spec.replicas == 2
    assert (await driver.observe_endpoint("chat")).drift == ()


async def test_gpu_type_comes_from_the_inventory_and_pins_the_pods(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    for name, product, count in [("n1", "NVIDIA-L4", 4), ("n2", "NVIDIA-H100-80GB-HBM3", 8)]:
        backend.core.create_node(
            {"metadata": {"name": name, "labels": {k8s.GPU_PRODUCT_LABEL: product}}}
        )
        backend.core.patch_node_status(
            name,
            {"status": {"allocatable": {"nvidia.com/gpu": str(count)}}},
            _content_type="application/merge-patch+json",
        )
    steps = steps_for(driver, Facts(gpu=None))

    done = await steps["deploy_model"](context("deploy_model", dict(SPEC)))

    assert isinstance(done, outcomes.Done), done
    assert done.outputs["status"]["sizing"]["gpu_type"] == "H100"
    [deployment] = deployments(backend)
    selector = deployment.spec.template.spec.node_selector
    assert selector == {k8s.GPU_PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3"}


async def test_a_failed_green_rollout_stalls_and_the_old_revision_keeps_serving(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, Facts(gpu={"type": "nvidia-a100-80gb"}))
    assert isinstance(
        await steps["deploy_model"](context("deploy_model", dict(SPEC))), outcomes.Done
    )
    [old] = deployments(backend)
    backend.kubelet.failing_images.add("registry.invalid/vllm:broken")

    class Broken(Facts):
        def template(self, name: str) -> Mapping[str, Any] | None:
            raw = dict(BUILTIN_TEMPLATES["vllm"])
            raw["runtime"] = dict(raw["runtime"], image="registry.invalid/vllm:broken")
            return raw

    broken = steps_for(driver, Broken(gpu={"type": "nvidia-a100-80gb"}))
    failed = await broken["deploy_model"](context("deploy_model", dict(SPEC)))

    assert isinstance(failed, outcomes.Stalled), failed
    assert failed.reason.startswith("RolloutFailed: Deployment/chat: ")
    assert "ProgressDeadlineExceeded" in failed.reason
    assert f"revision {old.metadata.labels[k8s.REVISION_LABEL]} keeps serving" in failed.reason
    assert (await driver.observe_endpoint("chat")).ready


async def test_undeploy_prunes_every_object_of_the_deployment(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, Facts(gpu={"type": "nvidia-a100-80gb"}))
    assert isinstance(
        await steps["deploy_model"](context("deploy_model", dict(SPEC))), outcomes.Done
    )

    removed = await steps["undeploy_model"](context("undeploy_model", dict(SPEC)))

    assert removed == outcomes.Done({"removed": True})
    assert deployments(backend) == []
    assert backend.core.list_namespaced_service(NAMESPACE).items == []
    checked = await steps["check_cluster"](context("check_cluster", {"cluster": "gpu"}))
    assert isinstance(checked, outcomes.Done)
    assert checked.outputs["status"]["reachable"] is True
    assert checked.outputs["status"]["version"].startswith("v1.")


async def test_a_template_without_an_image_stalls_naming_the_field(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    class HostOnly(Facts):
        def template(self, name: str) -> Mapping[str, Any] | None:
            return {
                "modality": "llm",
                "runtime": {"command": ["/usr/bin/server", "--port", "{port}"]},
            }

    steps = steps_for(driver, HostOnly(gpu={"type": "nvidia-a100-80gb"}))
    stalled = await steps["deploy_model"](
        context("deploy_model", {**SPEC, "template": "host-only"})
    )
    assert isinstance(stalled, outcomes.Stalled)
    assert "DeploymentTemplate/host-only: runtime.image is empty" in stalled.reason
    assert deployments(backend) == []


async def test_a_deployment_needing_more_gpus_than_the_cluster_declares_stalls(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, Facts(gpu={"type": "nvidia-a100-80gb", "count": 1}))

    stalled = await steps["deploy_model"](context("deploy_model", dict(SPEC)))

    assert stalled == outcomes.Stalled(
        "Deployment/chat: infeasible: GPUs: 2 worker(s) x 1 GPU(s) = 2 needed to meet the "
        "targets; the Cluster has 1 (spec.gpu.count)"
    )
    assert deployments(backend) == []
