"""cancel(): a running chain's steps are interrupted at their next await; a queued one never
starts; a step with an undo is undone."""

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


async def test_cancel_interrupts_the_running_step_at_its_next_await(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(node("a", inputs={"sleep": 60}), node("b", "probe", "a")))
    await eventually(lambda: "a" in probe.started)
    report = executor.cancel(execution_id)
    assert report.state == "cancelling"
    assert report.interrupting == ("a (probe)",)
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=5)  # not 60 s
    assert record.status == "cancelled"
    assert probe.finished == []
    steps = {s.node_id: s for s in store.get_steps(execution_id)}
    assert {k: s.status for k, s in steps.items()} == {"a": "cancelled", "b": "cancelled"}
    assert "interrupted: cancelled on request" in steps["a"].logs  # its partial log is kept
    assert executor.cancel(execution_id).accepted is False


async def test_cancel_before_start_means_it_never_runs(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    execution_id = executor.submit(chain(node("a")))
    report = executor.cancel(execution_id)
    assert report.state == "cancelled" and report.interrupting == ()
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
    assert executor.cancel(execution_id).accepted
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=10)
    assert record.status == "cancelled"
    step = store.get_step(execution_id, "w")
    assert step is not None and step.status == "cancelled" and step.attempts == 1


async def test_cancel_of_an_unknown_id_says_so(make_executor: ExecutorFactory) -> None:
    executor = make_executor()
    with pytest.raises(UnknownExecutionError, match="no execution with id 'nope'"):
        executor.cancel("nope")


async def test_a_cancelled_step_with_an_undo_is_undone_in_the_same_execution(
    make_executor: ExecutorFactory, registry: StepRegistry, store: Store
) -> None:
    entered = asyncio.Event()
    undone: list[dict[str, object]] = []

    async def deploy(ctx: StepContext) -> outcomes.Outcome:
        ctx.log.info("rolling out")
        entered.set()
        await asyncio.Event().wait()  # a rollout that never ends by itself
        return outcomes.Done()

    async def undeploy(ctx: StepContext) -> outcomes.Outcome:
        undone.append(dict(ctx.inputs))
        return outcomes.Done()

    registry.register("deploy_model", deploy)
    registry.register("undeploy_model", undeploy)
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(StepNode(id="d", type="deploy_model", inputs={"deployment": "chat", "model": "m"}))
    )
    await asyncio.wait_for(entered.wait(), 5)
    report = executor.cancel(execution_id)
    assert report.undo == ("undeploy_model for d",)
    assert "then undoing: undeploy_model for d" in report.message()
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=5)
    assert record.status == "cancelled"
    assert record.error is not None and "undo: undeploy_model for d: done" in record.error
    steps = {s.node_id: s for s in store.get_steps(execution_id)}
    assert steps["d"].status == "cancelled" and "rolling out" in steps["d"].logs
    assert steps["undo:d"].status == "done" and steps["undo:d"].type == "undeploy_model"
    assert undone == [{"deployment": "chat", "model": "m"}]


async def test_a_superseded_step_is_not_undone(
    make_executor: ExecutorFactory, registry: StepRegistry, store: Store
) -> None:
    entered = asyncio.Event()
    undone: list[str] = []

    async def deploy(ctx: StepContext) -> outcomes.Outcome:
        if ctx.revision == "r1":
            entered.set()
            await asyncio.Event().wait()
        return outcomes.Done()

    async def undeploy(ctx: StepContext) -> outcomes.Outcome:
        undone.append(ctx.node_id)
        return outcomes.Done()

    registry.register("deploy_model", deploy)
    registry.register("undeploy_model", undeploy)
    executor = make_executor()
    await executor.start()
    step = StepNode(id="d", type="deploy_model", inputs={"deployment": "chat"})
    old = executor.submit(chain(step, revision="r1"))
    await asyncio.wait_for(entered.wait(), 5)
    new = executor.submit(chain(step, revision="r2"))
    assert (await asyncio.wait_for(executor.wait(old), 5)).status == "superseded"
    assert (await asyncio.wait_for(executor.wait(new), 5)).status == "succeeded"
    assert undone == []
    assert [s.node_id for s in store.get_steps(old)] == ["d"]
