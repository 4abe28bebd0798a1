"""A window of a vLLM server's own metrics, as a gate on Kubernetes measures it: counts from
two reads of each pod's ``/metrics`` (written by prometheus_client, as vLLM writes them),
the p90 from histogram buckets as Prometheus interpolates it, resets and new pods counted
as Prometheus counts them; and the canary objects are valid Kubernetes objects."""

from __future__ import annotations

import math

import kubernetes_validate
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from reconciler.core.render import kubernetes as render
from reconciler.drivers.clusters import kubernetes_gate, server_metrics

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5)


class Server:
    """One pod's vLLM metrics: what it answered so far."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "ttft",
            ["model_name"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "e2e",
            ["model_name"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.http = Counter(
            "http_requests_total",
            "requests",
            ["method", "status", "handler"],
            registry=self.registry,
        )

    def answer(self, ttft_s: float, *, status: str = "2xx") -> None:
        self.http.labels("POST", status, "/v1/chat/completions").inc()
        if status == "2xx":
            self.ttft.labels("m").observe(ttft_s)
            self.e2e.labels("m").observe(ttft_s * 2)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_a_window_counts_what_was_answered_between_the_reads() -> None:
    pod = Server()
    for _ in range(7):
        pod.answer(5.0)  # before the window: not counted
    before = server_metrics.snapshot({"p0": pod.text()})
    for _ in range(8):
        pod.answer(0.2)
    pod.answer(0.2, status="5xx")
    pod.answer(0.7)
    pod.http.labels("GET", "2xx", "/v1/models").inc(40)  # not a chat request
    pod.http.labels("POST", "4xx", "/v1/chat/completions").inc()  # the client's error

    found = server_metrics.window(before, server_metrics.snapshot({"p0": pod.text()}))

    assert found["requests"] == 11 and found["errors"] == 1
    assert found["error_rate"] == pytest.approx(1 / 11)
    # 9 observations: 8 in (0.1, 0.25], 1 in (0.5, 1.0]; rank 8.1 falls in the latter
    assert found["ttft_p90_ms"] == pytest.approx((0.5 + 0.5 * (8.1 - 8) / 1) * 1000, abs=0.1)
    assert found["e2e_p90_s"] == pytest.approx(1.0 + 1.5 * (8.1 - 8) / 1)


def test_a_restarted_server_and_a_new_pod_count_from_zero() -> None:
    old, restarted, new = Server(), Server(), Server()
    for _ in range(10):
        old.answer(0.05)
    before = server_metrics.snapshot({"p0": old.text()})
    for _ in range(3):
        restarted.answer(0.05)  # p0's counters went down: a restart, 3 since then
    for _ in range(4):
        new.answer(0.05)

    found = server_metrics.window(
        before, server_metrics.snapshot({"p0": restarted.text(), "p1": new.text()})
    )

    assert found["requests"] == 7 and found["errors"] == 0


def test_nothing_answered_measures_nothing() -> None:
    pod = Server()
    text = pod.text()
    found = server_metrics.window(
        server_metrics.snapshot({"p0": text}), server_metrics.snapshot({"p0": text})
    )
    assert found == {
        "requests": 0,
        "errors": 0,
        "error_rate": None,
        "ttft_p90_ms": None,
        "e2e_p90_s": None,
    }


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ([(1.0, 0.0), (2.0, 10.0), (math.inf, 10.0)], 0.5, 1.5),
        ([(1.0, 10.0), (math.inf, 10.0)], 0.9, 0.9),
        ([(1.0, 0.0), (math.inf, 4.0)], 0.9, 1.0),  # past the last bound: that bound
        ([(1.0, 0.0), (math.inf, 0.0)], 0.9, None),
    ],
)
def test_quantiles_interpolate_inside_the_bucket(
    buckets: list[tuple[float, float]], q: float, expected: float | None
) -> None:
    assert server_metrics.quantile(q, buckets) == expected


def test_what_is_not_prometheus_text_names_the_pod() -> None:
    with pytest.raises(server_metrics.MetricsError, match="pod p3: /metrics is not Prometheus"):
        server_metrics.snapshot({"p3": "<html>502 Bad Gateway</html>\n"})


def test_the_canary_ingress_and_service_are_valid_and_weighted() -> None:
    ingress = render.render_ingress(
        deployment_name="chat", namespace="models", ingress_url="https://ml.example.com/"
    )
    canary = kubernetes_gate.canary_ingress(ingress, weight=15)
    kubernetes_validate.validate(canary, "1.31", strict=True)
    assert canary["metadata"]["name"] == "chat-canary"
    assert canary["metadata"]["annotations"][kubernetes_gate.CANARY_WEIGHT] == "15"
    assert canary["spec"]["rules"][0]["host"] == "ml.example.com"
    path = canary["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == ingress["spec"]["rules"][0]["http"]["paths"][0]["path"]
    assert path["backend"]["service"]["name"] == "chat-canary"
    assert ingress["metadata"]["name"] == "chat"  # the endpoint's own is left as it was

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "chat",
            "labels": {"reconciler/deployment": "chat"},
            "annotations": {"reconciler/target-revision": "abc"},
        },
        "spec": {
            "selector": {"reconciler/deployment": "chat", "reconciler/revision": "abc"},
            "ports": [{"name": "http", "port": 8000, "targetPort": "http"}],
        },
    }
    made = kubernetes_gate.canary_service(service)
    kubernetes_validate.validate(made, "1.31", strict=True)
    assert made["metadata"] == {"name": "chat-canary", "labels": {"reconciler/deployment": "chat"}}
    assert made["spec"]["selector"] == service["spec"]["selector"]
