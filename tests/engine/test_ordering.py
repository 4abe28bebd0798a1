"""Nodes run in dependency order; independent nodes run at the same time."""

from __future__ import annotations

from executor_kit import ExecutorFactory, Probe, chain, node

from reconciler.engine.store import Store


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
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    await executor.start()
    middle = [node(f"m{i}", "probe", "head", inputs={"sleep": 0.05}) for i in range(4)]
    execution_id = executor.submit(
        chain(node("head"), *middle, node("tail", "probe", *[m.id for m in middle]))
    )
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    assert probe.started[0] == "head"
    assert probe.started[-1] == "tail"
    assert set(probe.finished[1:5]) == {"m0", "m1", "m2", "m3"}
    assert probe.max_running == 4


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
