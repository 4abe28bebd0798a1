"""Step writes are batched, yet nothing acts on an uncommitted write.

A second Store on the same file sees only what is committed (WAL readers see the last
commit), so each ``witness`` step checks, as it runs, that its own start and the ends
of all its upstream nodes are already committed, with the outputs it was given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from executor_kit import ExecutorFactory, chain, eventually, node

from reconciler.core import step_types
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.executor import Executor
from reconciler.engine.store import StepEnd, StepStart, StepWrite, Store
from reconciler.steps.registry import StepRegistry

WITNESS = step_types.StepSignature(
    name="witness",
    required=frozenset(),
    optional=frozenset({"upstream", "hold"}),
    outputs=frozenset({"token"}),
)


@dataclasses.dataclass
class Witness:
    """What each ``witness`` step saw committed in the store when it began to run."""

    observer: Store
    seen: dict[str, dict[str, tuple[str, int, Any, Any]]] = dataclasses.field(default_factory=dict)
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def step(self, ctx: StepContext) -> outcomes.Outcome:
        self.seen[ctx.node_id] = {
            s.node_id: (s.status, s.attempts, s.inputs, s.outputs)
            for s in self.observer.get_steps(ctx.execution_id)
        }
        if ctx.inputs.get("hold"):
            await self.release.wait()
        return outcomes.Done({"token": f"{ctx.node_id}-token"})


@pytest.fixture
def witness(registry: StepRegistry, store: Store) -> Any:
    with Store(store.path) as observer:
        made = Witness(observer=observer)
        registry.register("witness", made.step, signature=WITNESS)
        yield made


def diamond_with_fan_out(width: int) -> list[Any]:
    """head -> ``width`` parallel nodes -> tail, each passing on its upstream's token."""
    middle = [
        node(f"m{i}", "witness", "head", inputs={"upstream": "${{ head.token }}"})
        for i in range(width)
    ]
    tail = node(
        "tail",
        "witness",
        *[m.id for m in middle],
        inputs={"upstream": "${{ m0.token }}"},
    )
    return [node("head", "witness"), *middle, tail]


async def test_a_step_runs_only_on_committed_starts_and_upstream_ends(
    make_executor: ExecutorFactory, witness: Witness, store: Store
) -> None:
    steps = diamond_with_fan_out(12)
    executor = make_executor(max_concurrent_per_cluster=5)
    await executor.start()
    record = await executor.wait(executor.submit(chain(*steps)))
    assert record.status == "succeeded", record.error
    for step in steps:
        seen = witness.seen[step.id]
        status, attempts, inputs, _ = seen[step.id]
        # Its own start was committed before it ran, with the inputs it runs with.
        assert (status, attempts) == ("running", 1), step.id
        for upstream in step.after:
            up_status, _, _, up_outputs = seen[upstream]
            assert up_status == "done", f"{step.id} ran before {upstream}'s end was committed"
            assert up_outputs == {"token": f"{upstream}-token"}
        if step.after:
            assert inputs == {"upstream": f"{step.after[0]}-token"}


async def test_the_finished_execution_is_committed_before_it_is_reported(
    make_executor: ExecutorFactory, witness: Witness, store: Store
) -> None:
    committed_at_report: list[tuple[str, set[str]]] = []

    def on_finished(record: Any) -> None:
        execution = witness.observer.get_execution(record.id)
        steps = {s.status for s in witness.observer.get_steps(record.id)}
        committed_at_report.append((execution.status, steps))

    executor = make_executor(on_finished=on_finished)
    await executor.start()
    record = await executor.wait(executor.submit(chain(*diamond_with_fan_out(3))))
    assert record.status == "succeeded"
    await eventually(lambda: bool(committed_at_report))
    assert committed_at_report == [("succeeded", {"done"})]


async def test_starts_of_independent_ready_steps_share_one_transaction(
    tmp_path: Path, registry: StepRegistry
) -> None:
    """The head's end and the starts of the ten nodes it frees make one commit."""
    batches: list[list[StepWrite]] = []

    class CountingStore(Store):
        def record_steps(self, writes: Sequence[StepWrite]) -> None:
            batches.append(list(writes))
            super().record_steps(writes)

    with CountingStore(tmp_path / "counted") as counted:
        executor = Executor(store=counted, registry=registry, max_concurrent_per_cluster=20)
        await executor.start()
        steps = [node("head", "noop"), *[node(f"m{i}", "noop", "head") for i in range(10)]]
        record = await executor.wait(executor.submit(chain(*steps)))
        assert record.status == "succeeded"
        await executor.shutdown()
    middle = {f"m{i}" for i in range(10)}
    (batch,) = [b for b in batches if middle <= {w.node_id for w in b if isinstance(w, StepStart)}]
    # The end that made them ready commits in that same transaction, before them.
    written = [(type(w).__name__, w.node_id) for w in batch]
    assert written == [("StepEnd", "head"), *[("StepStart", f"m{i}") for i in range(10)]]


async def test_progress_is_reported_once_each_write_is_committed(
    make_executor: ExecutorFactory, witness: Witness
) -> None:
    snapshots: list[dict[str, str]] = []
    current: dict[str, str] = {}

    def on_progress(key: str) -> None:
        assert key == "Workflow/demo"
        if current:
            snapshots.append(
                {s.node_id: s.status for s in witness.observer.get_steps(current["id"])}
            )

    executor = make_executor(on_progress=on_progress)
    await executor.start()
    execution_id = executor.submit(chain(node("a", "witness", inputs={"hold": True})))
    current["id"] = execution_id
    await eventually(lambda: {"a": "running"} in snapshots)
    witness.release.set()
    assert (await executor.wait(execution_id)).status == "succeeded"
    await eventually(lambda: {"a": "done"} in snapshots)


async def test_a_failed_commit_fails_the_execution_and_starts_nothing_downstream(
    tmp_path: Path, registry: StepRegistry, witness: Witness
) -> None:
    class BrokenDiskStore(Store):
        def record_steps(self, writes: Sequence[StepWrite]) -> None:
            if any(isinstance(w, StepEnd) and w.node_id == "head" for w in writes):
                raise sqlite3.OperationalError("disk I/O error")
            super().record_steps(writes)

    with BrokenDiskStore(tmp_path / "broken") as broken:
        executor = Executor(store=broken, registry=registry)
        await executor.start()
        record = await executor.wait(executor.submit(chain(*diamond_with_fan_out(2))))
        await executor.shutdown()
        steps = {s.node_id: s.status for s in broken.get_steps(record.id)}
    assert record.status == "failed"
    assert record.error is not None and "disk I/O error" in record.error
    assert set(witness.seen) == {"head"}  # nothing downstream ran
    assert steps == {"head": "skipped", "m0": "skipped", "m1": "skipped", "tail": "skipped"}


async def test_an_end_that_failed_to_commit_never_counts_as_done(
    tmp_path: Path, registry: StepRegistry
) -> None:
    """The last end is not awaited by its step; the execution still sees it was lost."""

    class BrokenDiskStore(Store):
        def record_steps(self, writes: Sequence[StepWrite]) -> None:
            if any(isinstance(w, StepEnd) for w in writes):
                raise sqlite3.OperationalError("disk I/O error")
            super().record_steps(writes)

    with BrokenDiskStore(tmp_path / "broken") as broken:
        executor = Executor(store=broken, registry=registry)
        await executor.start()
        record = await executor.wait(executor.submit(chain(node("only", "noop"))))
        await executor.shutdown()
        (step,) = broken.get_steps(record.id)
    assert record.status == "failed"
    assert record.error is not None and "not committed" in record.error
    assert step.status == "skipped" and step.attempts == 1
