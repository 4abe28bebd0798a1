"""One chain per object at a time; a newer chain replaces a queued one and stops a running one."""

from __future__ import annotations

from executor_kit import ExecutorFactory, Probe, chain, eventually, node

from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store


def overlaps(intervals: list[tuple[str, float, float]], prefix_a: str, prefix_b: str) -> bool:
    first = [(s, e) for key, s, e in intervals if key.startswith(prefix_a)]
    second = [(s, e) for key, s, e in intervals if key.startswith(prefix_b)]
    return any(s1 < e2 and s2 < e1 for s1, e1 in first for s2, e2 in second)


async def test_newer_chain_stops_the_running_one_at_its_step_boundary(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    old = executor.submit(
        chain(node("a", inputs={"sleep": 0.15}), node("b", "probe", "a"), revision="r1")
    )
    await eventually(lambda: "a" in probe.started)
    new = executor.submit(chain(node("a2"), revision="r2"))
    assert store.get_execution(new).status == "queued"
    old_record = await executor.wait(old)
    new_record = await executor.wait(new)
    assert old_record.status == "superseded"
    assert new_record.status == "succeeded"
    assert {s.node_id: s.status for s in store.get_steps(old)} == {"a": "done", "b": "cancelled"}
    assert probe.started == ["a", "a2"]  # a finished first; b never ran
    assert old_record.finished_at is not None and new_record.started_at is not None
    assert old_record.finished_at <= new_record.started_at


async def test_newer_chain_replaces_a_queued_one(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    finished: list[ExecutionRecord] = []
    executor = make_executor(on_finished=finished.append)
    await executor.start()
    running = executor.submit(chain(node("r1", inputs={"sleep": 0.1}), revision="r1"))
    await eventually(lambda: "r1" in probe.started)
    queued = executor.submit(chain(node("r2"), revision="r2"))
    newest = executor.submit(chain(node("r3"), revision="r3"))
    assert (await executor.wait(queued)).status == "superseded"
    assert (await executor.wait(running)).status == "succeeded"  # its only step had finished
    assert (await executor.wait(newest)).status == "succeeded"
    assert probe.started == ["r1", "r3"]
    await eventually(lambda: len(finished) == 3)
    assert [r.revision for r in finished] == ["r2", "r1", "r3"]


async def test_chains_of_one_object_never_overlap_but_objects_run_in_parallel(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    await executor.start()
    ids = []
    for name in ("alpha", "beta"):
        ids.append(executor.submit(chain(node("x", inputs={"sleep": 0.08}), name=name)))
    for execution_id in ids:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert probe.max_running == 2
    assert overlaps(probe.intervals, "Workflow/alpha", "Workflow/beta")
