"""How a chain ends when a step fails or stalls, and how results reach the daemon."""

from __future__ import annotations

import pytest
from executor_kit import ExecutorFactory, Probe, chain, node

from reconciler.core.chains import StepNode
from reconciler.engine.node_inputs import InvalidChainError
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store


async def test_failure_lets_running_siblings_finish_and_skips_the_rest(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            node("root"),
            StepNode(id="bad", type="fail", inputs={"message": "boom"}, after=("root",)),
            node("slow", "probe", "root", inputs={"sleep": 0.1}),
            node("after_bad", "probe", "bad"),
            node("after_slow", "probe", "slow"),
        )
    )
    record = await executor.wait(execution_id)
    assert record.status == "failed"
    assert record.error == "step 'bad' (fail) failed: boom (gave up after 1 attempt)"
    statuses = {s.node_id: s.status for s in store.get_steps(execution_id)}
    assert statuses == {
        "root": "done",
        "bad": "failed",
        "slow": "done",
        "after_bad": "skipped",
        "after_slow": "skipped",
    }
    assert "after_slow" not in probe.started


async def test_unknown_step_type_stalls_with_a_clear_reason(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(StepNode(id="x", type="teleport")))
    record = await executor.wait(execution_id)
    assert record.status == "stalled"
    assert "step type 'teleport' has no implementation in this daemon" in (record.error or "")


async def test_on_finished_receives_every_final_record(make_executor: ExecutorFactory) -> None:
    seen: list[ExecutionRecord] = []

    async def on_finished(record: ExecutionRecord) -> None:
        seen.append(record)

    executor = make_executor(on_finished=on_finished)
    await executor.start()
    good = executor.submit(chain(node("a"), name="good"))
    bad = executor.submit(
        chain(StepNode(id="f", type="fail", inputs={"message": "no"}), name="bad")
    )
    await executor.wait(good)
    await executor.wait(bad)
    assert {(r.id, r.status) for r in seen} == {(good, "succeeded"), (bad, "failed")}


async def test_malformed_chains_are_refused_before_storing(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    with pytest.raises(InvalidChainError, match="cycle"):
        executor.submit(
            chain(
                StepNode(id="a", type="noop", after=("b",)),
                StepNode(id="b", type="noop", after=("a",)),
            )
        )
    with pytest.raises(InvalidChainError, match="unknown node 'ghost'"):
        executor.submit(chain(StepNode(id="a", type="noop", after=("ghost",))))
    with pytest.raises(InvalidChainError, match="repeats node id"):
        executor.submit(chain(StepNode(id="a", type="noop"), StepNode(id="a", type="noop")))
    assert store.list_executions() == []
