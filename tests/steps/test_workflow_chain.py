"""Built-in steps chained by the executor, as the nightly-eval example wires them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.core.chains import Chain, StepNode
from reconciler.engine.context import StepServices
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.registry import default_registry


class Ready:
    def __init__(self, url: str) -> None:
        self.url = url

    def endpoint_url(self, deployment: str) -> str | None:
        return self.url if deployment == "phi-chat" else None

    async def changed(self, deployment: str) -> None:
        await asyncio.Event().wait()  # nothing moves: it is Ready from the start


async def test_wait_ready_output_feeds_an_http_request(tmp_path: Path, http_server: str) -> None:
    chain = Chain(
        kind="Workflow",
        name="nightly-eval",
        action="execute",
        revision="r1",
        spec_hash="h",
        params={"endpoint": "phi-chat"},
        steps=(
            StepNode(
                id="wait_endpoint", type="wait_ready", inputs={"deployment": "${{ endpoint }}"}
            ),
            StepNode(
                id="report",
                type="http_request",
                inputs={
                    "method": "POST",
                    "url": "${{ wait_endpoint.endpoint_url }}/echo",
                    "body": "ready at ${{ wait_endpoint.endpoint_url }}",
                },
                pass_outputs={"wait_endpoint": "endpoint_url"},  # not declared: ignored
            ),
        ),
    )
    with Store(tmp_path) as store:
        executor = Executor(
            store=store,
            registry=default_registry(),
            readiness=Ready(http_server),
            services=StepServices(readiness_poll_interval_s=0.001),
        )
        await executor.start()
        record = await executor.wait(executor.submit(chain))
        await executor.shutdown()
        assert record.status == "succeeded", record.error
        report = store.get_step(record.id, "report")
        assert report is not None and report.outputs is not None
        assert report.outputs["json"]["body"] == f"ready at {http_server}"
        assert "endpoint_url" not in (report.inputs or {})
