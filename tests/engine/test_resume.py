"""Shutdown and resume in one process: unfinished chains go on where they stopped."""

from __future__ import annotations

import asyncio

import pytest
from executor_kit import ExecutorFactory, Probe, chain, eventually, node

from reconciler.engine.executor import ExecutorClosedError
from reconciler.engine.store import Store


async def test_graceful_shutdown_lets_the_step_finish_and_resume_runs_the_rest(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    first = make_executor()
    await first.start()
    execution_id = first.submit(chain(node("a", inputs={"sleep": 0.05}), node("b", "probe", "a")))
    await eventually(lambda: "a" in probe.started)
    await first.shutdown(grace_s=5)
    assert store.get_execution(execution_id).status == "running"
    assert {s.node_id: s.status for s in store.get_steps(execution_id)} == {
        "a": "done",
        "b": "pending",
    }
    second = make_executor()
    assert await second.start() == [execution_id]
    assert (await second.wait(execution_id)).status == "succeeded"
    assert probe.started == ["a", "b"]


async def test_step_cut_off_after_the_grace_period_is_run_again(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    first = make_executor()
    await first.start()
    execution_id = first.submit(chain(node("a", inputs={"sleep": 30}), node("b", "probe", "a")))
    await eventually(lambda: "a" in probe.started)
    await first.shutdown(grace_s=0.01)
    step = store.get_step(execution_id, "a")
    assert step is not None and (step.status, step.attempts) == ("running", 1)
    probe.started.clear()
    second = make_executor()
    await second.start()
    await eventually(lambda: "a" in probe.started)
    # The interrupted attempt is run again under the same attempt number.
    step = store.get_step(execution_id, "a")
    assert step is not None and (step.status, step.attempts) == ("running", 1)
    second.cancel(execution_id)
    await second.shutdown(grace_s=0.01)


async def test_resume_keeps_only_the_newest_chain_per_object(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    first = make_executor()
    await first.start()
    old = first.submit(chain(node("old", inputs={"sleep": 30}), revision="r1"))
    await eventually(lambda: "old" in probe.started)
    await first.shutdown(grace_s=0.01)
    second = make_executor()
    new = second.submit(chain(node("new"), revision="r2"))  # stored, not started
    assert await second.start() == [new]
    assert (await second.wait(old)).status == "superseded"
    assert (await second.wait(new)).status == "succeeded"
    assert store.get_step(old, "old").status == "cancelled"  # type: ignore[union-attr]


async def test_shutdown_refuses_new_work_and_releases_waiters(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(node("a", inputs={"sleep": 30})))
    await eventually(lambda: "a" in probe.started)
    waiter = asyncio.create_task(executor.wait(execution_id))
    await asyncio.sleep(0)
    await executor.shutdown(grace_s=0.01)
    with pytest.raises(ExecutorClosedError):
        await waiter
    with pytest.raises(ExecutorClosedError, match="shutting down"):
        executor.submit(chain(node("b")))
