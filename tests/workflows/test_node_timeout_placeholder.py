"""A ``node_timeout`` written as a ``${{ }}`` placeholder bounds its step once resolved.

The value comes from the execution's params (spec.user_params or a run's own) or from an
upstream node's output, at run time; a value that is no duration stalls the step with an
error naming the node. The chains are built by graph_steps, as plan builds them, and
run by the real executor on a real store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reconciler.core.chain_builders import graph_steps
from reconciler.core.chains import Chain
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord, StepRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import default_registry

BOUND_S = 30.0  # a hang guard: the runs here end in well under a second
SPEC = {"config": {"retries": 1, "retry_delay": "1ms"}}


def chain(graph: dict[str, Any], params: dict[str, Any]) -> Chain:
    return Chain(
        kind="Workflow",
        name="w",
        action="execute",
        revision="r1",
        spec_hash="h",
        steps=graph_steps(SPEC, graph),
        params=params,
    )


async def run(tmp_path: Path, to_run: Chain) -> tuple[ExecutionRecord, dict[str, StepRecord]]:
    store = Store(tmp_path)
    executor = Executor(store=store, registry=default_registry())
    await executor.start()
    try:
        record = await asyncio.wait_for(executor.wait(executor.submit(to_run)), BOUND_S)
        steps = {step.node_id: step for step in store.get_steps(record.id)}
    finally:
        await executor.shutdown()
        store.close()
    return record, steps


@pytest.fixture
async def limit_server() -> AsyncIterator[str]:
    """A neighbour on loopback that answers the timeout to use, as text."""

    async def limit(request: web.Request) -> web.Response:
        return web.Response(text="150ms")

    app = web.Application()
    app.router.add_get("/limit", limit)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/limit"
    await runner.cleanup()


def long_step(node_timeout: Any) -> dict[str, Any]:
    return {
        "id": "long",
        "type": "noop",
        "user_inputs": {"delay": "1h", "node_timeout": node_timeout},
    }


@pytest.mark.parametrize("given", ["150ms", 0.15])
async def test_a_param_placeholder_bounds_the_step(tmp_path: Path, given: object) -> None:
    graph = {"nodes": [long_step("${{ limit }}")]}
    built = chain(graph, {"limit": given})
    assert built.steps[0].timeout is None  # left to run time: the param may be overridden
    record, steps = await run(tmp_path, built)
    assert record.status == "failed"
    assert steps["long"].attempts == 2  # retried like any failure while retries remain
    assert steps["long"].error == "step timed out after 0.15s (gave up after 2 attempts)"


async def test_an_upstream_output_placeholder_bounds_the_step(
    tmp_path: Path, limit_server: str
) -> None:
    graph = {
        "nodes": [
            {
                "id": "fetch",
                "type": "http_request",
                "user_inputs": {"method": "GET", "url": limit_server},
            },
            long_step("${{ fetch.body }}"),
        ],
    }
    built = chain(graph, {})
    assert built.steps[1].after == ("fetch",) and built.steps[1].timeout is None
    record, steps = await run(tmp_path, built)
    assert steps["fetch"].status == "done"
    assert steps["long"].error == "step timed out after 0.15s (gave up after 2 attempts)"
    assert record.status == "failed"


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("soon", "invalid duration 'soon'"),
        (0, "more than 0 seconds"),
        (True, "expected a duration"),
        ([1], "expected a duration"),
    ],
)
async def test_a_bad_resolved_value_stalls_naming_the_node(
    tmp_path: Path, given: object, says: str
) -> None:
    record, steps = await run(
        tmp_path, chain({"nodes": [long_step("${{ limit }}")]}, {"limit": given})
    )
    assert record.status == "stalled"
    error = steps["long"].error or ""
    assert error.startswith("node 'long': node_timeout ${{ limit }} resolved to"), error
    assert says in error
    assert steps["long"].attempts == 0  # it never started


async def test_a_literal_number_of_seconds_bounds_the_step_too(tmp_path: Path) -> None:
    built = chain({"nodes": [long_step(0.1)]}, {})
    assert built.steps[0].timeout == 0.1
    record, steps = await run(tmp_path, built)
    assert steps["long"].error == "step timed out after 0.1s (gave up after 2 attempts)"
    assert record.status == "failed"


async def test_a_generous_placeholder_lets_the_step_finish(tmp_path: Path) -> None:
    graph = {
        "nodes": [
            {
                "id": "short",
                "type": "noop",
                "user_inputs": {"delay": "10ms", "node_timeout": "${{ limit }}"},
            }
        ]
    }
    record, steps = await run(tmp_path, chain(graph, {"limit": "30s"}))
    assert record.status == "succeeded" and steps["short"].attempts == 1
