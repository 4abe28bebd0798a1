"""``/metrics``: the daemon in Prometheus terms, in a registry of its own.

Reconcile durations and the last successful sync are observed as cycles end; queue depth,
objects by phase and step outcomes are read from the store when scraped, so they say what
the store says. Step outcomes count the steps of executions that finished while this
process ran (a counter starts at zero with the process, as Prometheus expects).
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from reconciler.api.shapes.registry import Answer, RouteTable
from reconciler.api.state import require
from reconciler.api.view import DaemonView
from reconciler.daemon.object_status import step_status_word
from reconciler.engine.records import FINISHED_EXECUTION, UNFINISHED_EXECUTION
from reconciler.engine.store import Store

SWEEP_WINDOW = 500
"""Finished executions looked at per sweep, newest first."""

CYCLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

routes = RouteTable()
SCRAPE = routes.declare(
    "GET",
    "/metrics",
    "Prometheus metrics (no token needed with api.metrics_public: true)",
    role="viewer",
    answers={200: Answer("text exposition format", str, media="text/plain")},
    errors=(401, 403),
)


class ApiMetrics:
    """The metric families and how each is kept current."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconcile_duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Time one reconcile cycle took: fetch, load, diff, plan and submit",
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "reconciler_queue_depth",
            "Executions not finished yet, by status (queued, running)",
            ["status"],
            registry=self.registry,
        )
        self.step_outcomes = Counter(
            "reconciler_step_outcomes",
            "Steps of finished executions by step type and final status",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.last_sync = Gauge(
            "reconciler_source_last_sync_timestamp_seconds",
            "Unix time of the last successful fetch of each watched source",
            ["source"],
            registry=self.registry,
        )
        self.objects = Gauge(
            "reconciler_objects",
            "Objects the daemon keeps status for, by kind and phase",
            ["kind", "phase"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "reconciler_webhook_requests",
            "Git webhook requests by provider and outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self._counted: set[str] | None = None

    def observe_cycle(
        self, *, duration_s: float, source: str, fetched: bool, now: float | None = None
    ) -> None:
        """One cycle ended; ``fetched``: its fetch reached the remote."""
        self.reconcile_duration.observe(duration_s)
        if fetched:
            self.last_sync.labels(source=source).set(time.time() if now is None else now)

    def baseline(self, store: Store) -> None:
        """Count only executions that finish from now on."""
        finished = store.list_executions(statuses=FINISHED_EXECUTION, limit=SWEEP_WINDOW)
        self._counted = {record.id for record in finished}

    def sweep_steps(self, store: Store) -> None:
        """Add the steps of executions finished since the last sweep."""
        if self._counted is None:
            self.baseline(store)
            return
        window = store.list_executions(statuses=FINISHED_EXECUTION, limit=SWEEP_WINDOW)
        for record in window:
            if record.id in self._counted:
                continue
            for step in store.get_steps(record.id):
                outcome = step_status_word(step.status)
                self.step_outcomes.labels(type=step.type, outcome=outcome).inc()
        self._counted = {record.id for record in window}

    def refresh(self, store: Store) -> None:
        """Read the store's gauges and step outcomes; called on every scrape."""
        unfinished = store.list_executions(statuses=UNFINISHED_EXECUTION, limit=-1)
        depth = Tally(record.status for record in unfinished)
        for status in sorted(UNFINISHED_EXECUTION):
            self.queue_depth.labels(status=status).set(depth.get(status, 0))
        phases = Tally((record.kind, record.phase or "Pending") for record in store.list_objects())
        self.objects.clear()
        for (kind, phase), count in sorted(phases.items()):
            self.objects.labels(kind=kind, phase=phase).set(count)
        self.sweep_steps(store)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def add_routes(
    app: web.Application,
    *,
    metrics: ApiMetrics,
    view: DaemonView,
    public: Callable[[], bool] = lambda: False,
) -> None:
    """``GET /metrics``; it needs a viewer token unless ``public()`` (api.metrics_public,
    read at every scrape so a reload turns it on or off)."""

    async def scrape(request: web.Request) -> web.Response:
        if not public():
            require(request, "viewer")
        metrics.refresh(view.store)
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    routes.add_to(app, {SCRAPE: scrape})
