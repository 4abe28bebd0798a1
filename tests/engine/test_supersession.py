"""One chain per object at a time; a newer chain replaces a queued one and stops a running one."""

from __future__ import annotations

import pytest
from executor_kit import ExecutorFactory, Probe, chain, node
from gate_kit import Gate, register_gate

from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


@pytest.fixture
def gate(registry: StepRegistry) -> Gate:
    return register_gate(registry)


async def test_newer_chain_stops_the_running_one_at_its_step_boundary(
    make_executor: ExecutorFactory, gate: Gate, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    old = executor.submit(chain(node("a", "gate"), node("b", "probe", "a"), revision="r1"))
    await gate.until_inside(1)  # r1's step a is running, held at its gate
    new = executor.submit(chain(node("a2", "probe"), revision="r2"))
    assert store.get_execution(new).status == "queued"
    assert store.get_execution(old).status == "running"
    gate.open("Workflow/demo:a")
    old_record = await executor.wait(old)
    new_record = await executor.wait(new)
    assert old_record.status == "superseded"
    assert new_record.status == "succeeded"
    assert {s.node_id: s.status for s in store.get_steps(old)} == {"a": "done", "b": "cancelled"}
    assert gate.left == ["Workflow/demo:a"]  # a finished first
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
    assert probe.started == []  # nothing else ran while r1 was held
    gate.open("Workflow/demo:r1")
    assert (await executor.wait(running)).status == "succeeded"  # its only step had finished
    assert (await executor.wait(newest)).status == "succeeded"
    assert probe.started == ["r3"]
    assert gate.left == ["Workflow/demo:r1"]
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
    gate.open_all()
    for execution_id in [*ids, later]:
        assert (await executor.wait(execution_id)).status == "succeeded"
    alpha = [e for e in gate.events if e[1] == "Workflow/alpha:x"]
    assert alpha == [("enter", "Workflow/alpha:x"), ("leave", "Workflow/alpha:x")] * 2
    assert gate.max_inside == 2
