"""The kubernetes driver against a real HTTP API (the double, or envtest's kube-apiserver)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.drivers.clusters import kubernetes_errors as errors
from reconciler.drivers.clusters import protocol
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE, endpoint, until


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


def _deployments(backend: Backend, name: str) -> list[client.V1Deployment]:
    return list(
        backend.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"{k8s.OWNER_LABEL}={name}"
        ).items
    )


async def test_rollout_creates_namespace_and_labelled_objects(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    with pytest.raises(client.ApiException) as missing:
        backend.core.read_namespace(NAMESPACE)
    assert missing.value.status == 404

    observed = await driver.rollout(endpoint(), timeout_s=20)

    assert observed.ready, observed.message
    assert observed.workers_desired == observed.workers_ready == 2
    assert observed.endpoint_url == f"http://chat.{NAMESPACE}.svc:8000/v1"
    assert observed.resources == protocol.WorkerResources(gpus=1, cpu="8", memory="32Gi")
    [deployment] = _deployments(backend, "chat")
    assert deployment.metadata.labels["app.kubernetes.io/managed-by"] == "reconciler"
    assert deployment.metadata.labels[k8s.OWNER_LABEL] == "chat"
    managers = {(m.manager, m.operation) for m in deployment.metadata.managed_fields}
    assert ("reconciler", "Apply") in managers
    container = deployment.spec.template.spec.containers[0]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.readiness_probe.http_get.path == "/health"
    service = backend.core.read_namespaced_service("chat", NAMESPACE)
    assert (
        service.spec.selector[k8s.REVISION_LABEL] == deployment.metadata.labels[k8s.REVISION_LABEL]
    )


async def test_conflicting_apply_without_force_is_refused_naming_manager_and_field(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await driver.rollout(endpoint(), timeout_s=20)
    [deployment] = _deployments(backend, "chat")
    name = deployment.metadata.name
    backend.apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )
    ours = k8s.drift.applied_manifest(
        backend.raw(backend.apps.read_namespaced_deployment(name, NAMESPACE))
    )
    assert ours is not None
    with pytest.raises(client.ApiException) as refused:
        backend.apps.patch_namespaced_deployment(
            name,
            NAMESPACE,
            ours,
            field_manager="reconciler",
            _content_type="application/apply-patch+yaml",
        )
    assert refused.value.status == 409
    status = json.loads(refused.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"][0]["field"] == ".spec.replicas"
    assert 'conflict with "kubectl-edit"' in status["message"]
    with pytest.raises(protocol.EndpointConflictError, match=r"kubectl-edit.*spec\.replicas"):
        errors.raise_for(refused.value, action="apply", scrub=errors.Scrubber([]))

    # with force (what the driver does) the same apply takes the field back
    await driver.apply_endpoint(endpoint())
    assert backend.apps.read_namespaced_deployment(name, NAMESPACE).spec.replicas == 2


async def test_drift_names_field_and_manager_and_reapply_heals(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await driver.rollout(endpoint(), timeout_s=20)
    assert (await driver.observe_endpoint("chat")).drift == ()
    [deployment] = _deployments(backend, "chat")
    backend.apps.patch_namespaced_deployment(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )

    observed = await driver.observe_endpoint("chat")

    [drift] = observed.drift
    assert drift.field == f"Deployment/{deployment.metadata.name}.spec.replicas"
    assert drift.manager == "kubectl-edit"
    assert (drift.expected, drift.observed) == ("2", "5")
    await driver.apply_endpoint(endpoint())
    healed = await driver.observe_endpoint("chat")
    assert healed.drift == ()
    assert healed.workers_desired == 2


async def test_rollout_reads_the_live_objects_once_and_reports_the_drift_it_healed(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    first = await driver.rollout(endpoint(), timeout_s=20)
    assert first.ready, first.message
    assert first.healed == ()
    [deployment] = _deployments(backend, "chat")
    backend.apps.patch_namespaced_deployment(
        deployment.metadata.name,
        NAMESPACE,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )
    before = len(backend.double.requests) if backend.double is not None else 0

    observed = await driver.rollout(endpoint(), timeout_s=20)

    made = backend.double.requests[before:] if backend.double is not None else []
    assert observed.ready, observed.message
    [healed] = observed.healed
    assert healed.field == f"Deployment/{deployment.metadata.name}.spec.replicas"
    assert (healed.manager, healed.expected, healed.observed) == ("kubectl-edit", "2", "5")
    assert observed.drift == ()
    assert observed.workers_desired == observed.workers_ready == 2
    live = backend.apps.read_namespaced_deployment(deployment.metadata.name, NAMESPACE)
    assert live.spec.replicas == 2
    if backend.double is None:
        return
    ours = sorted(
        (r.method, r.path.rsplit("/", 1)[-1], r.content_type)
        for r in made
        if f"/namespaces/{NAMESPACE}/" in r.path
        and r.query.get("watch") != "true"
        and r.query.get("fieldManager") in {None, "reconciler"}
    )
    # one list and one read before applying, the two applies, and nothing read after
    assert ours == sorted(
        [
            ("GET", "deployments", ""),
            ("GET", "chat", ""),
            ("PATCH", deployment.metadata.name, k8s.APPLY),
            ("PATCH", "chat", k8s.APPLY),
        ]
    )


async def test_a_change_between_the_rollouts_read_and_its_apply_is_reported_as_reapplied(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    """The apply overwrites a change its read did not see: the rollout cannot name it, the
    watch can (a state older than the apply's answer), as re-applied drift, never as
    drift still to repair."""
    first = await driver.rollout(endpoint(), timeout_s=20)
    assert first.ready, first.message
    reported: list[protocol.Drift] = []
    driver.watch_drift(lambda _name, found: reported.extend(found))
    [deployment] = _deployments(backend, "chat")
    apply = driver._apply_sync

    def scaled_first(manifest: dict[str, Any]) -> dict[str, Any]:
        if manifest["kind"] == "Deployment":  # `kubectl scale` lands after the read
            backend.apps.patch_namespaced_deployment(
                deployment.metadata.name,
                NAMESPACE,
                {"spec": {"replicas": 5}},
                field_manager="kubectl-scale",
                _content_type="application/merge-patch+json",
            )
        return apply(manifest)

    driver._apply_sync = scaled_first  # type: ignore[method-assign]
    again = await driver.rollout(endpoint(), timeout_s=20)

    assert again.ready, again.message
    assert again.healed == () and again.drift == ()
    await until(lambda: bool(reported), what="the overwritten change reported")
    # each event of that state tells it (the kubelet's status write is one more)
    [drift] = set(reported)
    assert drift.field == f"Deployment/{deployment.metadata.name}.spec.replicas"
    assert (drift.manager, drift.observed, drift.expected) == ("kubectl-scale", "5", "2")
    assert drift.reapplied is True
    live = backend.apps.read_namespaced_deployment(deployment.metadata.name, NAMESPACE)
    assert live.spec.replicas == 2


async def test_a_watch_the_client_closes_ends_on_the_server(backend: Backend) -> None:
    if backend.double is None:
        pytest.skip("counting the server's watches needs the double")
    # watches that would run 300 s if the server kept them after the client left
    driver = k8s.KubernetesDriver(
        kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE, watch_chunk_s=300
    )
    names = ("one", "two", "three")
    try:
        backend.kubelet.enabled.clear()
        for name in names:
            await driver.apply_endpoint(endpoint(name))
        waits = [
            asyncio.create_task(driver.wait_endpoint_ready(name, timeout_s=60)) for name in names
        ]
        await until(
            lambda: (
                backend.double is not None
                and backend.double.open_watches(namespace=NAMESPACE) == len(names)
            ),
            what="one readiness watch per endpoint",
        )
        backend.kubelet.enabled.set()
        for observed in await asyncio.gather(*waits):
            assert observed.ready, observed.message
    finally:
        backend.kubelet.enabled.set()
        await driver.close()
    await until(
        lambda: (
            backend.double is not None and backend.double.open_watches(namespace=NAMESPACE) == 0
        ),
        timeout=30,
        what="the closed readiness watches to end on the server",
    )


async def test_rollouts_at_once_wait_on_one_shared_watch(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    if backend.double is None:
        pytest.skip("counting the server's watches needs the double")
    backend.kubelet.enabled.clear()
    names = [f"chat-{index}" for index in range(6)]
    rollouts = [asyncio.create_task(driver.rollout(endpoint(name), timeout_s=60)) for name in names]
    await until(
        lambda: backend.double is not None and backend.double.count("deployments") == len(names),
        what="every Deployment applied",
    )
    assert backend.double.open_watches(namespace=NAMESPACE) == 1
    assert not any(task.done() for task in rollouts)
    backend.kubelet.enabled.set()

    observed = await asyncio.gather(*rollouts)

    assert [o.name for o in observed if o.ready] == names


async def test_the_shared_watch_relists_after_410_gone(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    if backend.double is None:
        pytest.skip("forcing 410 Gone needs the double's control")
    backend.kubelet.enabled.clear()
    backend.double.answer_next_watches_gone(1, namespace=NAMESPACE)
    rollout = asyncio.create_task(driver.rollout(endpoint(), timeout_s=60))
    await until(lambda: driver.relists >= 1, what="a re-list after 410")
    backend.kubelet.enabled.set()

    observed = await asyncio.wait_for(rollout, 60)

    assert observed.ready, observed.message


async def test_readiness_watch_relists_after_410_gone(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    if backend.double is None:
        pytest.skip("forcing 410 Gone needs the double's control")
    backend.kubelet.enabled.clear()
    await driver.apply_endpoint(endpoint())
    backend.double.answer_next_watches_gone(1, namespace=NAMESPACE)
    waiting = asyncio.create_task(driver.wait_endpoint_ready("chat", timeout_s=30))
    await until(lambda: driver.relists >= 1, what="a re-list after 410")
    watches = [
        r
        for r in backend.double.requests
        if r.query.get("watch") == "true"
        and r.path.endswith("/deployments")
        and "fieldSelector" in r.query
    ]
    assert len(watches) >= 1
    backend.kubelet.enabled.set()
    observed = await asyncio.wait_for(waiting, 30)
    assert observed.ready, observed.message


async def test_green_rollout_switches_service_and_removes_old_revision(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await driver.rollout(endpoint(image="vllm/vllm-openai:v0.6.3"), timeout_s=20)
    [old] = _deployments(backend, "chat")

    observed = await driver.rollout(endpoint(image="vllm/vllm-openai:v0.6.4"), timeout_s=20)

    assert observed.ready, observed.message
    await until(lambda: len(_deployments(backend, "chat")) == 1, what="old revision removed")
    [new] = _deployments(backend, "chat")
    assert new.metadata.name != old.metadata.name
    assert new.spec.template.spec.containers[0].image == "vllm/vllm-openai:v0.6.4"
    service = backend.core.read_namespaced_service("chat", NAMESPACE)
    assert service.spec.selector[k8s.REVISION_LABEL] == new.metadata.labels[k8s.REVISION_LABEL]


async def test_failed_green_rollout_leaves_old_revision_serving_and_says_why(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await driver.rollout(endpoint(image="vllm/vllm-openai:v0.6.3"), timeout_s=20)
    [old] = _deployments(backend, "chat")
    backend.kubelet.failing_images.add("registry.invalid/vllm:broken")

    with pytest.raises(errors.RolloutFailedError, match="ProgressDeadlineExceeded") as failed:
        await driver.rollout(endpoint(image="registry.invalid/vllm:broken"), timeout_s=20)

    assert old.metadata.labels[k8s.REVISION_LABEL] in str(failed.value)
    await until(lambda: len(_deployments(backend, "chat")) == 1, what="new revision removed")
    [left] = _deployments(backend, "chat")
    assert left.metadata.name == old.metadata.name
    service = backend.core.read_namespaced_service("chat", NAMESPACE)
    assert service.spec.selector[k8s.REVISION_LABEL] == old.metadata.labels[k8s.REVISION_LABEL]
    assert (await driver.observe_endpoint("chat")).ready


async def test_rollout_timeout_says_what_is_missing(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    backend.kubelet.enabled.clear()
    with pytest.raises(errors.RolloutTimeoutError, match=r"not ready: .*after waiting 1s"):
        await driver.rollout(endpoint(), timeout_s=1)


async def test_prune_removes_only_unlisted_owners(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    await driver.apply_endpoint(endpoint("keep"))
    await driver.apply_endpoint(endpoint("gone"))
    backend.core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": "theirs", "labels": {k8s.OWNER_LABEL: "gone"}},
            "spec": {"ports": [{"port": 80}]},
        },
    )

    removed = await driver.prune(keep={"keep"})

    assert removed == 2
    assert _deployments(backend, "gone") == []
    assert len(_deployments(backend, "keep")) == 1
    backend.core.read_namespaced_service("theirs", NAMESPACE)  # not ours: still there
    assert await driver.delete_endpoint("keep") is True
    assert await driver.delete_endpoint("keep") is False
    assert not (await driver.observe_endpoint("keep")).exists


async def test_inventory_counts_gpus_by_product_total_and_free(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    for name, product, count in [
        ("n1", "NVIDIA-H100-80GB-HBM3", 8),
        ("n2", "NVIDIA-H100-80GB-HBM3", 8),
        ("n3", "NVIDIA-L4", 4),
        ("cpu", None, 0),
    ]:
        labels = {"nvidia.com/gpu.product": product} if product else {}
        backend.core.create_node({"metadata": {"name": name, "labels": labels}})
        backend.core.patch_node_status(
            name,
            {"status": {"allocatable": {"nvidia.com/gpu": str(count), "cpu": "32"}}},
            _content_type="application/merge-patch+json",
        )
    backend.core.create_namespace({"metadata": {"name": "work"}})
    backend.core.create_namespaced_pod(
        "work",
        {
            "metadata": {"name": "trainer"},
            "spec": {
                "nodeName": "n1",
                "containers": [
                    {
                        "name": "t",
                        "image": "trainer:1",
                        "resources": {"limits": {"nvidia.com/gpu": "3"}},
                    }
                ],
            },
        },
    )

    inventory = await driver.inventory()

    assert inventory.gpus == {
        "NVIDIA-H100-80GB-HBM3": protocol.GpuCount("NVIDIA-H100-80GB-HBM3", total=16, free=13),
        "NVIDIA-L4": protocol.GpuCount("NVIDIA-L4", total=4, free=4),
    }


async def test_job_runs_to_its_exit_code_and_logs(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    if backend.double is None:
        pytest.skip("pod logs need a kubelet; envtest has none")
    ok = await driver.run_job(
        protocol.JobSpec(
            name="convert",
            owner_labels={"reconciler/workflow": "w1"},
            image="busybox:1.36",
            command=("sh", "-c", "echo converted $WHAT"),
            env={"WHAT": "weights"},
        )
    )
    bad = await driver.run_job(
        protocol.JobSpec(
            name="broken",
            owner_labels={},
            image="busybox:1.36",
            command=("sh", "-c", "echo about to fail; exit 3"),
        )
    )
    statuses: dict[str, protocol.JobStatus] = {}

    async def ended(handle: protocol.JobHandle) -> bool:
        statuses[handle.name] = await driver.job_status(handle)
        return statuses[handle.name].state in {"succeeded", "failed"}

    for handle in (ok, bad):
        deadline = asyncio.get_running_loop().time() + 20
        while not await ended(handle):
            assert asyncio.get_running_loop().time() < deadline, statuses
            await asyncio.sleep(0.05)
    assert statuses["convert"] == protocol.JobStatus(state="succeeded", exit_code=0)
    assert statuses["broken"].state == "failed"
    assert statuses["broken"].exit_code == 3
    assert "BackoffLimitExceeded" in statuses["broken"].message
    assert await driver.job_logs(ok) == "converted weights\n"
    assert await driver.job_logs(bad, tail_bytes=5) == "fail\n"
    with pytest.raises(protocol.JobNotFoundError):
        await driver.job_status(protocol.JobHandle(name="nope", namespace=NAMESPACE))


async def test_invalid_manifest_is_surfaced_with_the_field(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    spec = endpoint()
    manifest = json.loads(json.dumps(spec.manifests["Deployment"]))
    del manifest["spec"]["template"]["spec"]["containers"][0]["image"]
    broken = dataclasses.replace(spec, manifests={**spec.manifests, "Deployment": manifest})

    with pytest.raises(protocol.InvalidEndpointError) as invalid:
        await driver.apply_endpoint(broken)

    assert "HTTP 422" in str(invalid.value)
    assert "spec.template.spec.containers[0].image" in str(invalid.value)
    assert "Required value" in str(invalid.value)


async def test_check_reports_version_and_unreachable_as_a_value(
    backend: Backend, driver: k8s.KubernetesDriver
) -> None:
    check = await driver.check()
    assert check.reachable and check.version and check.version.startswith("v1.")
    server = yaml.safe_load(backend.kubeconfig)["clusters"][0]["cluster"]["server"]
    closed = backend.kubeconfig.replace(server, "http://127.0.0.1:9")  # discard port: refused
    gone = k8s.KubernetesDriver(kubeconfig=closed, context=None, namespace=NAMESPACE)
    down = await gone.check()
    assert not down.reachable
    assert "did not answer" in down.message
    await gone.close()


async def test_context_is_honoured_and_unknown_context_is_an_error(backend: Backend) -> None:
    other = k8s.KubernetesDriver(
        kubeconfig=backend.kubeconfig, context="other", namespace=NAMESPACE
    )
    assert (await other.check()).reachable
    await other.close()
    with pytest.raises(errors.KubeconfigError, match="no context 'missing'"):
        k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context="missing", namespace=NAMESPACE)
    with pytest.raises(errors.KubeconfigError, match="not valid YAML at line"):
        k8s.KubernetesDriver(kubeconfig="a: [\n", context=None, namespace=NAMESPACE)


async def test_token_never_reaches_logs_or_exceptions(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = backend.kubeconfig.replace(backend.token, backend.token + "x")
    refused = k8s.KubernetesDriver(kubeconfig=wrong, context=None, namespace=NAMESPACE)
    with pytest.raises(protocol.ClusterAuthError) as denied:
        await refused.apply_endpoint(endpoint())
    good = k8s.KubernetesDriver(kubeconfig=backend.kubeconfig, context=None, namespace=NAMESPACE)
    await good.rollout(endpoint(), timeout_s=20)
    spec = endpoint()
    manifest = json.loads(json.dumps(spec.manifests["Deployment"]))
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(protocol.InvalidEndpointError) as invalid:
        await good.apply_endpoint(
            dataclasses.replace(spec, manifests={**spec.manifests, "Deployment": manifest})
        )
    texts = [caplog.text]
    for error in (denied.value, invalid.value):
        while error is not None:
            texts += [str(error), repr(error)]
            error = error.__cause__ or error.__context__  # type: ignore[assignment]
    assert "HTTP 401" in str(denied.value)
    for text in texts:
        assert backend.token not in text
    await refused.close()
    await good.close()
