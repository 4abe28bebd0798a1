"""Nodes run in dependency order; independent nodes run at the same time."""

from __future__ import annotations

import pytest
from executor_kit import ExecutorFactory, Probe, chain, node
from gate_kit import Gate, register_gate

from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


@pytest.fixture
def gate(registry: StepRegistry) -> Gate:
    return register_gate(registry)


async def test_linear_chain_runs_in_order(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(node("c", "probe", "b"), node("a"), node("b", "probe", "a"))
    )
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    assert probe.started == ["a", "b", "c"]
    assert probe.max_running == 1
    assert [s.status for s in store.get_steps(execution_id)] == ["done", "done", "done"]


async def test_fan_out_runs_concurrently_and_fan_in_waits_for_all(
    make_executor: ExecutorFactory, gate: Gate
) -> None:
    executor = make_executor()
    await executor.start()
    middle = [node(f"m{i}", "gate", "head") for i in range(4)]
    execution_id = executor.submit(
        chain(node("head", "gate"), *middle, node("tail", "gate", *[m.id for m in middle]))
    )
    await gate.until_inside(1)
    assert gate.entered == ["Workflow/demo:head"]
    gate.open("Workflow/demo:head")
    await gate.until_inside(4)  # all four held at once: they run concurrently
    assert sorted(gate.waiting()) == [f"Workflow/demo:m{i}" for i in range(4)]
    for key in gate.waiting()[:3]:
        gate.open(key)
    await gate.until_left(4)  # head and three of the middle nodes
    assert "Workflow/demo:tail" not in gate.entered  # one middle node is still held
    gate.open_all()
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    assert gate.entered[-1] == "Workflow/demo:tail"
    assert gate.events.index(("enter", "Workflow/demo:tail")) > max(
        gate.events.index(("leave", f"Workflow/demo:m{i}")) for i in range(4)
    )
    assert gate.max_inside == 4


async def test_execution_record_tracks_times_and_chain(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    submitted = chain(node("a"), params={"who": "me"})
    execution_id = executor.submit(submitted)
    queued = store.get_execution(execution_id)
    assert queued.chain == submitted
    record = await executor.wait(execution_id)
    assert record.started_at is not None and record.finished_at is not None
    assert record.created_at <= record.started_at <= record.finished_at
    assert record.params == {"who": "me"}
    assert record.error is None
