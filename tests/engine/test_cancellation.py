"""cancel(): a running chain stops at its next step boundary; a queued one never starts."""

from __future__ import annotations

import asyncio

import pytest
from executor_kit import ExecutorFactory, Probe, chain, eventually, node

from reconciler.core import step_types
from reconciler.core.chains import StepNode
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.store import Store, UnknownExecutionError
from reconciler.steps.registry import StepRegistry


async def test_cancel_lets_the_running_step_finish_then_stops(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(node("a", inputs={"sleep": 0.15}), node("b", "probe", "a"))
    )
    await eventually(lambda: "a" in probe.started)
    assert executor.cancel(execution_id) is True
    record = await executor.wait(execution_id)
    assert record.status == "cancelled"
    assert probe.finished == ["a"]
    assert {s.node_id: s.status for s in store.get_steps(execution_id)} == {
        "a": "done",
        "b": "cancelled",
    }
    assert executor.cancel(execution_id) is False


async def test_cancel_before_start_means_it_never_runs(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    execution_id = executor.submit(chain(node("a")))
    assert executor.cancel(execution_id) is True
    assert await executor.start() == []
    assert (await executor.wait(execution_id)).status == "cancelled"
    assert probe.started == []


async def test_cancel_interrupts_a_retry_wait(
    make_executor: ExecutorFactory, registry: StepRegistry, store: Store
) -> None:
    async def not_yet(ctx: StepContext) -> outcomes.Outcome:
        return outcomes.Retry("the cluster is busy", after_seconds=60)

    registry.register(
        "not_yet",
        not_yet,
        signature=step_types.StepSignature("not_yet", frozenset(), frozenset(), frozenset()),
    )
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(StepNode(id="w", type="not_yet", retries=5)))

    def waiting_to_retry() -> bool:
        step = store.get_step(execution_id, "w")
        return step is not None and step.status != "done" and step.next_attempt_at is not None

    await eventually(waiting_to_retry)  # fails the test if the retry wait never began
    assert executor.cancel(execution_id) is True
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=10)
    assert record.status == "cancelled"
    step = store.get_step(execution_id, "w")
    assert step is not None and step.status == "cancelled" and step.attempts == 1


async def test_cancel_of_an_unknown_id_says_so(make_executor: ExecutorFactory) -> None:
    executor = make_executor()
    with pytest.raises(UnknownExecutionError, match="no execution with id 'nope'"):
        executor.cancel("nope")
