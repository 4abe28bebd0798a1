"""A gated rollout on a Kubernetes Cluster: a share of the traffic, measured from the pods.

The new revision's Deployment is ready beside the serving one (KubernetesDriver.rollout);
the endpoint's Service still selects the serving revision. Then, for the window:

- the Service ``NAME-canary`` selects only the new revision's pods, and the Ingress
  ``NAME-canary`` (the endpoint's Ingress with ingress-nginx's canary annotations,
  ``canary-weight`` the gate's ``traffic_percent``) sends that share of the requests that
  come through the Cluster's ingress to it. So a gate needs the Cluster's ``ingress_url``
  (validate says so): in-cluster callers of the Service are not weighted;
- the new pods' ``/metrics`` are read through the API server's pod proxy at the start and
  at the end of the window (server_metrics); with fewer than ``min_requests`` answered,
  the window grows, up to ``WINDOW_STRETCH`` times, as on the local driver;
- rollout_gate.judge decides. Promoted: the Service selects the new revision, then the
  canary objects go, then the old revision. Rolled back: the canary Ingress goes first
  (its share returns to the serving revision), then the canary Service and the new
  revision's Deployment.

The verdict is kept on the endpoint's Service (``ROLLOUT_ANNOTATION``, shown in status as
``rollout``), and a rolled-back revision with its gate is remembered there
(``REJECTED_ANNOTATION``): the same spec is not tried again, a changed one is.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.drivers.clusters import rollout_gate, server_metrics
from reconciler.drivers.clusters.protocol import ClusterError, GateReport, RolloutGate

CANARY_SUFFIX = "-canary"
ROLLOUT_ANNOTATION = "reconciler/rollout"
REJECTED_ANNOTATION = "reconciler/rejected-rollout"
KEPT_ANNOTATIONS = (ROLLOUT_ANNOTATION, REJECTED_ANNOTATION)
"""What a re-apply of the endpoint's Service carries over from the live one."""
CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
WINDOW_STRETCH = 4
METRICS_PATH = "metrics"


class ScrapeError(ClusterError):
    """The new revision's metrics could not be read; the message says which pod and why."""


def canary_name(name: str) -> str:
    return f"{name}{CANARY_SUFFIX}"


def canary_service(selecting: Mapping[str, Any]) -> dict[str, Any]:
    """The canary Service: ``selecting`` (the endpoint's Service manifest, selecting the
    new revision) under the canary name, without the endpoint's own annotations."""
    manifest = copy.deepcopy(dict(selecting))
    metadata = manifest["metadata"]
    metadata["name"] = canary_name(metadata["name"])
    metadata.pop("annotations", None)
    return manifest


def canary_ingress(ingress: Mapping[str, Any], *, weight: int) -> dict[str, Any]:
    """The endpoint's Ingress as ingress-nginx's canary of itself: the same host and path,
    ``weight`` percent of its requests to the canary Service."""
    manifest = copy.deepcopy(dict(ingress))
    metadata = manifest["metadata"]
    service = canary_name(metadata["name"])
    metadata["name"] = service
    metadata.setdefault("annotations", {}).update({CANARY: "true", CANARY_WEIGHT: str(weight)})
    for rule in manifest["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["backend"]["service"]["name"] = service
    return manifest


def report_annotation(report: GateReport) -> str:
    return json.dumps(dataclasses.asdict(report), sort_keys=True)


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def report_in(service: Mapping[str, Any] | None) -> GateReport | None:
    """The last gate's report kept on the endpoint's Service, if any (and readable)."""
    text = annotations_of(service).get(ROLLOUT_ANNOTATION)
    if not text:
        return None
    try:
        return rollout_gate.report_from(json.loads(text))
    except (ValueError, TypeError):
        return None


def rejected(service: Mapping[str, Any] | None, *, revision: str, gate: RolloutGate) -> bool:
    """Whether this revision, with this gate, was rolled back before."""
    key = rollout_gate.rollout_key(revision, gate)
    return annotations_of(service).get(REJECTED_ANNOTATION) == key


def read_metrics(
    core: client.CoreV1Api, *, namespace: str, selector: str, port: int, timeout: float
) -> dict[str, str]:
    """Each running pod's ``/metrics`` text, through the API server's pod proxy."""
    listing: Any = core.list_namespaced_pod(
        namespace, label_selector=selector, _request_timeout=timeout, _preload_content=False
    )
    pods: list[dict[str, Any]] = json.loads(listing.data).get("items") or []
    running = [
        str(pod["metadata"]["name"])
        for pod in pods
        if (pod.get("status") or {}).get("phase") == "Running"
    ]
    if not running:
        raise ScrapeError(f"no running pod matches {selector}")
    texts: dict[str, str] = {}
    for pod in running:
        try:
            answer: Any = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{port}",
                namespace,
                METRICS_PATH,
                _preload_content=False,
                _request_timeout=timeout,
            )
        except ApiException as error:
            raise ScrapeError(
                f"pod {pod}: GET /{METRICS_PATH} on port {port} answered {error.status} "
                f"{error.reason}"
            ) from None
        texts[pod] = answer.data.decode("utf-8", errors="replace")
    return texts


Scrape = Callable[[], Awaitable[Mapping[str, str]]]


async def _snapshot(scrape: Scrape) -> server_metrics.Snapshot:
    return server_metrics.snapshot(await scrape())


async def measure(gate: RolloutGate, *, revision: str, scrape: Scrape) -> GateReport:
    """The verdict on ``revision`` after its window: read, wait, read again, judge."""
    started = time.monotonic()
    try:
        before = await _snapshot(scrape)
    except (ScrapeError, server_metrics.MetricsError):
        before = server_metrics.Snapshot({})  # not serving yet: its counters start at zero
    next_read = started + gate.window_s
    step = max(gate.window_s / WINDOW_STRETCH, 0.5)
    while True:
        await asyncio.sleep(max(next_read - time.monotonic(), 0.0))
        elapsed = time.monotonic() - started
        last = elapsed >= gate.window_s * WINDOW_STRETCH
        try:
            measured = server_metrics.window(before, await _snapshot(scrape))
        except (ScrapeError, server_metrics.MetricsError) as error:
            if last:
                return rollout_gate.not_measured(gate, revision=revision, why=str(error))
        else:
            if int(measured["requests"] or 0) >= gate.min_requests or last:
                return rollout_gate.judge(
                    gate, revision=revision, measured=measured, window_s=elapsed
                )
        next_read = time.monotonic() + step
