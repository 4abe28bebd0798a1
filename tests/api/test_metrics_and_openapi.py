"""``/metrics`` carries the daemon's figures; the OpenAPI document names every route."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reconciler.api import openapi
from tests.api.conftest import StartApi, wait_until


async def test_metrics_after_a_cycle_and_a_run(start_api: StartApi) -> None:
    api = await start_api()

    async def ready_train() -> bool:
        reply = await api.client.get("/api/v1/objects/Workflow/train")
        return reply.json()["phase"] == "Ready"

    await wait_until("Workflow/train Ready", ready_train)
    run = await api.client.post("/api/v1/workflows/train/executions", role="operator", json={})
    run_id = run.json()["id"]

    async def done() -> bool:
        reply = await api.client.get(f"/api/v1/executions/{run_id}")
        return reply.json()["status"] == "succeeded"

    await wait_until("the run to finish", done)
    reply = await api.client.get("/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }
    assert samples[("reconciler_reconcile_duration_seconds_count", ())] >= 1
    noop_done = ("reconciler_step_outcomes_total", (("outcome", "succeeded"), ("type", "noop")))
    assert samples[noop_done] >= 2  # the two steps of the API run, at least
    assert ("reconciler_queue_depth", (("status", "queued"),)) in samples
    assert samples[("reconciler_objects", (("kind", "Project"), ("phase", "Ready")))] == 1
    syncs = [k for k in samples if k[0] == "reconciler_source_last_sync_timestamp_seconds"]
    assert syncs and samples[syncs[0]] > 0


async def test_openapi_names_exactly_the_served_routes(start_api: StartApi) -> None:
    api = await start_api()
    document = (await api.client.get("/api/v1/openapi.json", role=None)).json()
    assert document["openapi"].startswith("3.1")
    assert document == openapi.document()  # what the routes declare is what is served
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    app = api.server._runner.app
    routes = [route for route in app.router.routes() if route.resource is not None]
    served = {(r.method, r.resource.canonical) for r in routes if r.method != "HEAD"}
    assert documented == served
    heads = {r.resource.canonical for r in routes if r.method == "HEAD"}
    assert heads == {path for method, path in documented if method == "GET"}
