"""Gated rollouts on a Kubernetes Cluster, through the deploy step and the real driver.

A new revision becomes ready beside the serving one; an ingress-nginx canary Ingress
gives it the gate's share of the requests through the Cluster's ingress, and its pods'
own ``/metrics`` (vLLM's names, written by prometheus_client as vLLM writes them) are read
through the API server's pod proxy at the start and the end of the window. A revision
whose time to first token breaks the Deployment's SLO is rolled back: the canary goes,
the Service still selects the old revision, the measurements are in status, and the same
spec is not tried again. One that meets its SLOs is promoted.

The double serves the pod proxy (no container runs: ``serve_pods`` names the HTTP server
that answers for the pods), so these run against it only; envtest has no nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from reconciler.drivers.clusters import kubernetes as k8s
from reconciler.drivers.clusters import kubernetes_gate
from reconciler.engine import outcomes
from tests.clusters.kubernetes.conftest import Backend
from tests.clusters.kubernetes.endpoint_kit import NAMESPACE
from tests.clusters.kubernetes.test_deploy_steps import SPEC, context, steps_for
from tests.clusters.kubernetes.test_ingress import INGRESS_URL, IngressFacts

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0)
GATE = {"traffic_percent": 20, "window_s": 1, "min_requests": 5, "max_error_rate": 0.1}
SLO = {"ttft": [50, 500]}


def _spec(concurrent_requests: int) -> dict[str, Any]:
    """The Deployment; a new ``concurrent_requests`` is a new revision (the server's args)."""
    config = {**SPEC["deploy_config"], **SLO, "concurrent_requests": concurrent_requests}
    return {**SPEC, "workers": 1, "deploy_config": config, "rollout_gate": dict(GATE)}


class VllmMetrics:
    """A vLLM server's ``/metrics`` as the pod proxy reaches it: each read finds
    ``per_read`` more chat requests answered (``errors`` of them with a 500), each after
    ``ttft_s`` to its first token. What the canary objects were at each read is kept."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.ttft_s = 0.05
        self.per_read = 5
        self.errors = 0
        self.reads = 0
        self.seen_canary: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
        self.registry = CollectorRegistry()
        labels = ["model_name"]
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            labels,
            buckets=E2E_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=self.registry,
        )

    async def handle(self, request: web.Request) -> web.Response:
        self.reads += 1
        double = self.backend.double
        assert double is not None
        canary = kubernetes_gate.canary_name("chat")
        self.seen_canary.append(
            await asyncio.to_thread(
                lambda: (
                    double.get("ingresses", NAMESPACE, canary),
                    double.get("services", NAMESPACE, canary),
                )
            )
        )
        for index in range(self.per_read):
            failed = index < self.errors
            status = "5xx" if failed else "2xx"
            self.requests.labels("POST", status, "/v1/chat/completions").inc()
            if not failed:
                self.ttft.labels("phi").observe(self.ttft_s)
                self.e2e.labels("phi").observe(self.ttft_s + 0.4)
        self.requests.labels("GET", "2xx", "/v1/models").inc(50)  # not a chat request
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


@pytest.fixture
def pods(backend: Backend) -> Iterator[Backend]:
    if backend.double is None:
        pytest.skip("the pod proxy reaches a running container; envtest has no nodes")
    backend.kubelet.deployment_pods = True
    yield backend


@pytest.fixture
async def metrics(pods: Backend) -> AsyncIterator[VllmMetrics]:
    served = VllmMetrics(pods)
    app = web.Application()
    app.router.add_get("/metrics", served.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    assert pods.double is not None
    pods.double.serve_pods(
        namespace=NAMESPACE, labels={k8s.OWNER_LABEL: "chat"}, url=f"http://127.0.0.1:{port}"
    )
    yield served
    await runner.cleanup()


@pytest.fixture
async def driver(pods: Backend) -> AsyncIterator[k8s.KubernetesDriver]:
    made = k8s.KubernetesDriver(kubeconfig=pods.kubeconfig, context=None, namespace=NAMESPACE)
    yield made
    await made.close()


def _revisions(backend: Backend) -> list[str]:
    listed = backend.apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"{k8s.OWNER_LABEL}=chat"
    ).items
    return sorted(d.metadata.labels[k8s.REVISION_LABEL] for d in listed)


def _serving(backend: Backend) -> str:
    service = backend.core.read_namespaced_service("chat", NAMESPACE)
    return str(service.spec.selector[k8s.REVISION_LABEL])


def _canary_gone(backend: Backend) -> bool:
    assert backend.double is not None
    canary = kubernetes_gate.canary_name("chat")
    return (
        backend.double.get("ingresses", NAMESPACE, canary) is None
        and backend.double.get("services", NAMESPACE, canary) is None
    )


async def test_a_revision_that_breaks_its_ttft_slo_is_rolled_back_and_not_tried_again(
    pods: Backend, metrics: VllmMetrics, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))
    first = await steps["deploy_model"](context("deploy_model", _spec(8)))
    assert isinstance(first, outcomes.Done), first
    assert metrics.reads == 0  # a first deploy has nothing to be measured beside
    [old] = _revisions(pods)

    metrics.ttft_s = 2.0
    failed = await steps["deploy_model"](context("deploy_model", _spec(16)))

    assert isinstance(failed, outcomes.Stalled), failed
    assert "RolloutFailed" in failed.reason and "time to first token" in failed.reason
    report = failed.outputs["status"]["rollout"]
    assert report["verdict"] == "rolled_back"
    assert report["requests"] >= 5 and report["traffic_percent"] == 20
    assert 1000 <= report["ttft_p90_ms"] <= 2500, report  # inside vLLM's 1-2.5 s bucket
    assert report["slo"]["ttft_p90_ms"] == 500
    # the old revision serves on, at the URL callers use (through the ingress)
    assert failed.outputs["status"]["endpoint_url"] == f"{INGRESS_URL}/{NAMESPACE}/chat/v1"
    # While it was measured, the canary took 20% at the ingress and selected the new pods.
    ingress, service = metrics.seen_canary[-1]
    assert ingress is not None and service is not None
    annotations = ingress["metadata"]["annotations"]
    assert annotations[kubernetes_gate.CANARY] == "true"
    assert annotations[kubernetes_gate.CANARY_WEIGHT] == "20"
    [rule] = ingress["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "chat-canary"
    new = service["spec"]["selector"][k8s.REVISION_LABEL]
    assert new != old
    # Afterwards: the old revision alone, the Service on it, no canary, status says why.
    assert _revisions(pods) == [old] and _serving(pods) == old
    assert _canary_gone(pods)
    seen = await driver.observe_endpoint("chat")
    assert seen.ready and seen.rollout is not None and seen.rollout.verdict == "rolled_back"

    # The same spec again: refused from what the Service remembers, nothing measured.
    reads = metrics.reads
    again = await steps["deploy_model"](context("deploy_model", _spec(16)))
    assert isinstance(again, outcomes.Stalled), again
    assert "not tried again" in again.reason
    assert again.outputs["status"]["rollout"]["revision"] == new
    assert metrics.reads == reads and _revisions(pods) == [old]


async def test_a_revision_that_meets_its_slos_is_promoted_with_its_measurements(
    pods: Backend, metrics: VllmMetrics, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))
    assert isinstance(await steps["deploy_model"](context("deploy_model", _spec(8))), outcomes.Done)
    metrics.ttft_s, metrics.errors = 0.05, 0

    done = await steps["deploy_model"](context("deploy_model", _spec(16)))

    assert isinstance(done, outcomes.Done), done
    report = done.outputs["status"]["rollout"]
    assert report["verdict"] == "promoted", report
    assert report["errors"] == 0 and report["requests"] >= 5
    assert report["ttft_p90_ms"] is not None and report["ttft_p90_ms"] <= 60
    [new] = _revisions(pods)
    assert _serving(pods) == new and _canary_gone(pods)
    assert metrics.seen_canary and all(i is not None for i, _ in metrics.seen_canary)

    # A later apply of the same revision keeps the verdict in status.
    same = await steps["deploy_model"](context("deploy_model", _spec(16)))
    assert isinstance(same, outcomes.Done), same
    assert same.outputs["status"]["rollout"]["verdict"] == "promoted"


async def test_errors_above_the_gates_rate_roll_back(
    pods: Backend, metrics: VllmMetrics, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))
    assert isinstance(await steps["deploy_model"](context("deploy_model", _spec(8))), outcomes.Done)
    metrics.errors = 2  # of 5 a read: 40%, above the gate's 10%

    failed = await steps["deploy_model"](context("deploy_model", _spec(16)))

    assert isinstance(failed, outcomes.Stalled), failed
    report = failed.outputs["status"]["rollout"]
    assert report["verdict"] == "rolled_back" and report["error_rate"] >= 0.3
    assert any("error rate" in reason for reason in report["reasons"])


async def test_a_revision_whose_metrics_cannot_be_read_is_rolled_back(
    pods: Backend, driver: k8s.KubernetesDriver
) -> None:
    steps = steps_for(driver, IngressFacts(INGRESS_URL))
    assert isinstance(await steps["deploy_model"](context("deploy_model", _spec(8))), outcomes.Done)
    [old] = _revisions(pods)

    failed = await steps["deploy_model"](context("deploy_model", _spec(16)))

    assert isinstance(failed, outcomes.Stalled), failed
    report = failed.outputs["status"]["rollout"]
    assert report["verdict"] == "rolled_back"
    [reason] = report["reasons"]
    assert reason.startswith("not measured: pod chat-") and "503" in reason
    assert _revisions(pods) == [old] and _canary_gone(pods)
