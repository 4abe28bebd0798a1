"""One chain per object at a time; a newer chain replaces a queued one and interrupts a
running one."""

from __future__ import annotations

import pytest
from executor_kit import ExecutorFactory, Probe, chain, eventually, node
from gate_kit import Gate, register_gate

from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


@pytest.fixture
def gate(registry: StepRegistry) -> Gate:
    return register_gate(registry)


async def test_newer_chain_interrupts_the_running_one(
    make_executor: ExecutorFactory, gate: Gate, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    old = executor.submit(chain(node("a", "gate"), node("b", "probe", "a"), revision="r1"))
    await gate.until_inside(1)  # r1's step a is running, held at its gate
    new = executor.submit(chain(node("a2", "probe"), revision="r2"))
    assert store.get_execution(new).status == "queued"
    old_record = await executor.wait(old)  # the gate was never opened: a was interrupted
    new_record = await executor.wait(new)
    assert old_record.status == "superseded"
    assert new_record.status == "succeeded"
    steps = {s.node_id: s for s in store.get_steps(old)}
    assert {k: s.status for k, s in steps.items()} == {"a": "cancelled", "b": "cancelled"}
    assert "interrupted: superseded" in steps["a"].logs
    assert gate.left == []  # a never got through its gate
    assert probe.started == ["a2"]  # b never ran
    assert old_record.finished_at is not None and new_record.started_at is not None
    assert old_record.finished_at <= new_record.started_at


async def test_newer_chain_replaces_a_queued_one(
    make_executor: ExecutorFactory, gate: Gate, probe: Probe
) -> None:
    finished: list[ExecutionRecord] = []
    executor = make_executor(on_finished=finished.append)
    await executor.start()
    running = executor.submit(chain(node("r1", "gate"), revision="r1"))
    await gate.until_inside(1)
    queued = executor.submit(chain(node("r2"), revision="r2"))
    newest = executor.submit(chain(node("r3"), revision="r3"))
    assert (await executor.wait(queued)).status == "superseded"
    assert (await executor.wait(running)).status == "superseded"  # interrupted at its gate
    assert (await executor.wait(newest)).status == "succeeded"
    assert probe.started == ["r3"]  # r2 never ran
    assert gate.left == []
    assert [r.revision for r in finished] == ["r2", "r1", "r3"]


async def test_chains_of_one_object_never_overlap_but_objects_run_in_parallel(
    make_executor: ExecutorFactory, gate: Gate
) -> None:
    executor = make_executor()
    await executor.start()
    ids = [executor.submit(chain(node("x", "gate"), name=name)) for name in ("alpha", "beta")]
    await gate.until_inside(2)  # both objects' steps held at once
    assert sorted(gate.waiting()) == ["Workflow/alpha:x", "Workflow/beta:x"]
    later = executor.submit(chain(node("x", "gate"), name="alpha", revision="r2"))
    assert (await executor.wait(ids[0])).status == "superseded"  # alpha's first, interrupted
    await eventually(lambda: gate.entered.count("Workflow/alpha:x") == 2)
    gate.open_all()
    for execution_id in [ids[1], later]:
        assert (await executor.wait(execution_id)).status == "succeeded"
    alpha = [e for e in gate.events if e[1] == "Workflow/alpha:x"]
    assert alpha == [("enter", "Workflow/alpha:x")] * 2 + [("leave", "Workflow/alpha:x")]
    assert gate.max_inside == 2  # alpha's second entered only once its first was out
