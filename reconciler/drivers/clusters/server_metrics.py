"""What a model server's own Prometheus metrics say about a window of its requests.

On a Kubernetes Cluster no proxy of ours stands in front of the pods, so a gated rollout
measures the new revision from what its servers count themselves: each pod's ``/metrics``
is read at the start and at the end of the window, and the difference is the window.
This module is pure: Prometheus text in, a :class:`Snapshot` out (counters and histogram
buckets summed over the series of each pod), and :func:`window` gives the measurements
rollout_gate.judge takes (requests, errors, p90 time to first token, p90 end-to-end).

Only the vLLM server's metrics are known here (the names are those vLLM exposes): its
``vllm:time_to_first_token_seconds`` and ``vllm:e2e_request_latency_seconds`` histograms,
and the ``http_requests_total`` counter its API server keeps per handler, method and
status class (``2xx``, ``5xx``...). A request is a POST to an ``/v1/`` handler; an error
is such a request answered with a 5xx status. A counter that went down between the two
reads is a restarted server: its whole value is the window's, as Prometheus' ``rate``
counts a reset. A pod that appears during the window counts from zero.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

TTFT = "vllm:time_to_first_token_seconds"
E2E = "vllm:e2e_request_latency_seconds"
REQUESTS = "http_requests_total"
KNOWN_STYLES = frozenset({"vllm"})
"""The template ``runtime.metrics`` values this module can measure a window from."""

Series = tuple[str, str, tuple[tuple[str, str], ...]]
"""(pod, sample name, labels) of one counter or bucket."""


class MetricsError(ValueError):
    """A ``/metrics`` answer that is not Prometheus text."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Each pod's cumulative counts at one moment, by series."""

    values: Mapping[Series, float]


def snapshot(texts: Mapping[str, str]) -> Snapshot:
    """The counts in each pod's ``/metrics`` text (``texts``: by pod name)."""
    values: dict[Series, float] = {}
    for pod, text in texts.items():
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError as error:
            raise MetricsError(f"pod {pod}: /metrics is not Prometheus text: {error}") from None
        for family in families:
            for sample in family.samples:
                if sample.name in {f"{TTFT}_bucket", f"{E2E}_bucket"} or (
                    sample.name == REQUESTS and _is_request(sample.labels)
                ):
                    key = (pod, sample.name, tuple(sorted(sample.labels.items())))
                    values[key] = values.get(key, 0.0) + float(sample.value)
    return Snapshot(values)


def _is_request(labels: Mapping[str, str]) -> bool:
    return labels.get("method") == "POST" and labels.get("handler", "").startswith("/v1/")


def _increase(before: Snapshot, after: Snapshot) -> dict[Series, float]:
    grown: dict[Series, float] = {}
    for key, value in after.values.items():
        start = before.values.get(key, 0.0)
        grown[key] = value - start if value >= start else value
    return grown


def _buckets(grown: Mapping[Series, float], name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of one histogram, summed over pods and labels."""
    by_bound: dict[float, float] = {}
    for (_pod, sample, labels), value in grown.items():
        if sample != f"{name}_bucket":
            continue
        bound = dict(labels).get("le")
        if bound is None:
            continue
        upper = math.inf if bound == "+Inf" else float(bound)
        by_bound[upper] = by_bound.get(upper, 0.0) + value
    return sorted(by_bound.items())


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram's cumulative buckets, interpolated linearly
    inside the bucket it falls in (as Prometheus' ``histogram_quantile``); None with no
    observations. Past the last finite bound, that bound."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def window(before: Snapshot, after: Snapshot) -> dict[str, float | int | None]:
    """What the pods answered between the two snapshots: requests, errors, error_rate,
    ttft_p90_ms and e2e_p90_s (None where nothing was observed)."""
    grown = _increase(before, after)
    requests = errors = 0.0
    for (_pod, sample, labels), value in grown.items():
        if sample == REQUESTS:
            requests += value
            if dict(labels).get("status", "").startswith("5"):
                errors += value
    ttft = quantile(0.9, _buckets(grown, TTFT))
    e2e = quantile(0.9, _buckets(grown, E2E))
    return {
        "requests": round(requests),
        "errors": round(errors),
        "error_rate": errors / requests if requests else None,
        "ttft_p90_ms": None if ttft is None else round(ttft * 1000, 1),
        "e2e_p90_s": e2e,
    }
