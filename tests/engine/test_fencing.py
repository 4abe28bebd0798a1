"""Fencing: a step starts only under a lease that counts, records it, and a chain whose
lease went away stops unfinished for the lease's next holder (a sharded daemon).

The fence here is a plain switch the test flips, standing in for the shard leases
(reconciler.daemon.shard_coordinator is the real one); the store is real.
"""

from __future__ import annotations

import asyncio
import sqlite3

from executor_kit import ExecutorFactory, Probe, chain, eventually, node
from gate_kit import register_gate

from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


class Switch:
    """A fence: ``token`` is the lease, None while it is not held."""

    def __init__(self, token: str | None = "r-0@shard-1#3") -> None:
        self.value = token

    def token(self, object_key: str) -> str | None:
        return self.value


def fences(store: Store, execution_id: str) -> dict[str, str | None]:
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute(
            "SELECT node_id, fence FROM steps WHERE execution_id = ?", (execution_id,)
        )
        return dict(rows.fetchall())
    finally:
        conn.close()


async def test_each_step_records_the_lease_it_started_under(
    make_executor: ExecutorFactory, store: Store
) -> None:
    fence = Switch()
    executor = make_executor(fence=fence)
    await executor.start()
    execution_id = executor.submit(chain(node("a"), node("b", "probe", "a")))
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=5)
    assert record.status == "succeeded"
    assert fences(store, execution_id) == {"a": "r-0@shard-1#3", "b": "r-0@shard-1#3"}


async def test_without_a_fence_nothing_is_recorded(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(node("a")))
    await asyncio.wait_for(executor.wait(execution_id), timeout=5)
    assert fences(store, execution_id) == {"a": None}


async def test_a_lost_lease_stops_the_chain_before_its_next_step_unfinished(
    make_executor: ExecutorFactory,
    store: Store,
    registry: StepRegistry,
) -> None:
    gate = register_gate(registry)
    fence = Switch()
    executor = make_executor(fence=fence)
    await executor.start()
    execution_id = executor.submit(chain(node("a", "gate"), node("b", "gate", "a")))
    await eventually(lambda: gate.entered == ["Workflow/demo:a"])
    fence.value = None  # the lease is gone while step a runs
    gate.open("Workflow/demo:a")
    await eventually(lambda: executor.running_ids() == [])
    assert gate.entered == ["Workflow/demo:a"]  # b never started
    assert store.execution_status(execution_id) == "running"  # left for the next holder
    steps = {s.node_id: s.status for s in store.get_steps(execution_id)}
    assert steps == {"a": "done", "b": "pending"}


async def test_resume_skips_chains_whose_lease_is_not_held_and_takes_them_once_it_is(
    make_executor: ExecutorFactory, store: Store, probe: Probe
) -> None:
    first = make_executor()
    execution_id = first.submit(chain(node("a")))  # stored, never started here
    fence = Switch(None)
    executor = make_executor(fence=fence)
    assert await executor.start() == []
    assert probe.started == []
    fence.value = "r-1@shard-0#4"
    assert await executor.resume() == [execution_id]
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=5)
    assert record.status == "succeeded"
    assert fences(store, execution_id) == {"a": "r-1@shard-0#4"}


async def test_pause_at_a_step_boundary_lets_the_running_step_end(
    make_executor: ExecutorFactory, store: Store, registry: StepRegistry
) -> None:
    gate = register_gate(registry)
    executor = make_executor(fence=Switch())
    await executor.start()
    execution_id = executor.submit(chain(node("a", "gate"), node("b", "gate", "a")))
    await eventually(lambda: gate.entered == ["Workflow/demo:a"])
    tasks = executor.pause(["Workflow/demo"], now=False)
    assert len(tasks) == 1 and not tasks[0].done()
    gate.open("Workflow/demo:a")
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    steps = {s.node_id: s.status for s in store.get_steps(execution_id)}
    assert steps == {"a": "done", "b": "pending"}
    assert store.execution_status(execution_id) == "running"
    # taken up again (here, as by the next holder): it goes on at b, a is not run again
    assert await executor.resume() == [execution_id]
    await eventually(lambda: "Workflow/demo:b" in gate.entered)
    gate.open("Workflow/demo:b")
    assert (await asyncio.wait_for(executor.wait(execution_id), timeout=5)).status == "succeeded"
    assert gate.entered == ["Workflow/demo:a", "Workflow/demo:b"]


async def test_pause_now_interrupts_the_step_and_leaves_it_to_run_again(
    make_executor: ExecutorFactory, store: Store, registry: StepRegistry
) -> None:
    gate = register_gate(registry)
    executor = make_executor(fence=Switch())
    await executor.start()
    execution_id = executor.submit(chain(node("a", "gate"), node("b", "gate", "a")))
    await eventually(lambda: gate.entered == ["Workflow/demo:a"])
    tasks = executor.pause(["Workflow/demo"], now=True)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    [a, b] = store.get_steps(execution_id)
    assert (a.status, a.attempts, b.status) == ("running", 1, "pending")  # no end recorded
    assert store.execution_status(execution_id) == "running"
    await executor.resume()
    await eventually(lambda: gate.entered.count("Workflow/demo:a") == 2)
    gate.open("Workflow/demo:a")
    await eventually(lambda: "Workflow/demo:b" in gate.entered)
    gate.open("Workflow/demo:b")
    assert (await asyncio.wait_for(executor.wait(execution_id), timeout=5)).status == "succeeded"
    assert store.get_steps(execution_id)[0].attempts == 1  # the same attempt, resumed
