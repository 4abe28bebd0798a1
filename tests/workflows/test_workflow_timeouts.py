"""``node_timeout`` bounds any step type; ``config.timeout`` bounds the whole execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reconciler.core.chain_builders import graph_steps
from reconciler.core.chains import Chain, StepNode
from reconciler.engine.chain_codec import chain_from_json, chain_to_json
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import default_registry

BOUND_S = 15.0  # a hang guard: every run here ends in well under a second


def workflow(steps: tuple[StepNode, ...], *, timeout: float | None = None) -> Chain:
    return Chain(
        kind="Workflow",
        name="w",
        action="execute",
        revision="r1",
        spec_hash="h",
        steps=steps,
        timeout=timeout,
    )


async def run(tmp_path: Path, chain: Chain) -> tuple[ExecutionRecord, Store]:
    store = Store(tmp_path)
    executor = Executor(store=store, registry=default_registry())
    await executor.start()
    record = await asyncio.wait_for(executor.wait(executor.submit(chain)), BOUND_S)
    await executor.shutdown()
    return record, store


@pytest.fixture
async def slow_server() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slow"
    release.set()
    await runner.cleanup()


@pytest.mark.parametrize("step_type", ["noop", "http_request"])
async def test_node_timeout_in_user_inputs_bounds_any_step_type(
    tmp_path: Path, slow_server: str, step_type: str
) -> None:
    inputs: dict[str, Any] = {"node_timeout": "100ms"}
    if step_type == "noop":
        inputs["delay"] = "1h"
    else:
        inputs.update(method="GET", url=slow_server, timeout="1h")
    spec = {"config": {"retries": 2, "retry_delay": "1ms"}}
    steps = graph_steps(spec, {"nodes": [{"id": "s", "type": step_type, "user_inputs": inputs}]})
    assert steps[0].timeout == 0.1
    record, store = await run(tmp_path, workflow(steps))
    assert record.status == "failed"
    (step,) = store.get_steps(record.id)
    assert step.attempts == 3  # retried like any failure while retries remain
    assert step.error == "step timed out after 0.1s (gave up after 3 attempts)"
    store.close()


async def test_a_timed_out_attempt_is_retried_and_may_then_succeed(tmp_path: Path) -> None:
    spec = {"config": {"retries": 3, "retry_delay": "1ms"}}
    graph = {
        "nodes": [
            {"id": "a", "type": "fail", "user_inputs": {"message": "flaky", "until_attempt": 3}},
            {"id": "b", "type": "noop", "user_inputs": {"node_timeout": "5s"}},
        ],
        "edges": [{"source": "a", "dest": "b"}],
    }
    record, store = await run(tmp_path, workflow(graph_steps(spec, graph)))
    assert record.status == "succeeded"
    attempts = {step.node_id: step.attempts for step in store.get_steps(record.id)}
    assert attempts == {"a": 3, "b": 1}
    store.close()


async def test_workflow_timeout_stops_a_running_step(tmp_path: Path) -> None:
    steps = (
        StepNode(id="first", type="noop"),
        StepNode(id="long", type="noop", inputs={"delay": "1h"}, after=("first",)),
        StepNode(id="after", type="noop", after=("long",)),
    )
    record, store = await run(tmp_path, workflow(steps, timeout=0.3))
    assert record.status == "failed"
    assert record.error == "workflow timed out after 0.3s"
    status = {step.node_id: step.status for step in store.get_steps(record.id)}
    assert status["first"] == "done"
    assert status["after"] in ("pending", "skipped")
    assert status["long"] != "done"
    store.close()


async def test_workflow_timeout_cuts_a_retry_wait(tmp_path: Path) -> None:
    steps = (
        StepNode(
            id="flaky", type="fail", inputs={"message": "not yet"}, retries=5, retry_delay=3600
        ),
    )
    record, store = await run(tmp_path, workflow(steps, timeout=0.2))
    assert record.status == "failed"
    assert record.error == "workflow timed out after 0.2s"
    store.close()


async def test_a_run_within_its_timeout_succeeds(tmp_path: Path) -> None:
    steps = (StepNode(id="a", type="noop", inputs={"delay": "10ms"}),)
    record, store = await run(tmp_path, workflow(steps, timeout=30))
    assert record.status == "succeeded"
    store.close()


def test_the_execution_timeout_is_stored_with_the_chain() -> None:
    chain = workflow((StepNode(id="a", type="noop"),), timeout=7200)
    assert chain_from_json(chain_to_json(chain)).timeout == 7200
    untimed = workflow((StepNode(id="a", type="noop"),))
    assert "timeout" not in chain_to_json(untimed).replace('"timeout":null', "")
    assert chain_from_json(chain_to_json(untimed)).timeout is None
