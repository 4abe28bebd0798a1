"""At most N steps run at once per cluster; clusters do not share their budget; a slot
always comes back.

Steps are held at a gate (gate_kit): the executor must fill exactly its limit, and a
new step may start only when the test lets one out, so the counts are exact on any machine.
"""

from __future__ import annotations

import asyncio

import pytest
from executor_kit import ExecutorFactory, chain, node
from gate_kit import Gate, register_gate

from reconciler.core import step_types
from reconciler.engine.cluster_slots import ClusterSlots
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry, default_registry


@pytest.fixture
def gate(registry: StepRegistry) -> Gate:
    return register_gate(registry)


async def test_limit_bounds_the_steps_of_one_chain(
    make_executor: ExecutorFactory, gate: Gate
) -> None:
    executor = make_executor(max_concurrent_per_cluster=3)
    await executor.start()
    nodes = [node(f"n{i}", "gate") for i in range(10)]
    execution_id = executor.submit(chain(*nodes, cluster="gpu-a"))
    await gate.drain_one_at_a_time(total=10, limit=3)
    assert (await executor.wait(execution_id)).status == "succeeded"
    assert gate.max_inside == 3


async def test_limit_is_shared_by_chains_on_the_same_cluster(
    make_executor: ExecutorFactory, gate: Gate
) -> None:
    executor = make_executor(max_concurrent_per_cluster=3)
    await executor.start()
    ids = [
        executor.submit(
            chain(*[node(f"n{i}", "gate") for i in range(4)], name=name, cluster="gpu-a")
        )
        for name in ("one", "two", "three")
    ]
    await gate.drain_one_at_a_time(total=12, limit=3)
    for execution_id in ids:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert gate.max_inside == 3


async def test_each_cluster_has_its_own_limit(make_executor: ExecutorFactory, gate: Gate) -> None:
    executor = make_executor(max_concurrent_per_cluster=2, cluster_limits={"gpu-b": 1})
    await executor.start()
    ids = [
        executor.submit(
            chain(*[node(f"n{i}", "gate") for i in range(4)], name=cluster, cluster=cluster)
        )
        for cluster in ("gpu-a", "gpu-b")
    ]
    await gate.until_inside(3)  # 2 on gpu-a plus 1 on gpu-b, all held
    assert dict(gate.inside) == {"gpu-a": 2, "gpu-b": 1}
    gate.open(next(k for k in gate.waiting() if k.startswith("Workflow/gpu-a")))
    # gpu-a refills its freed slot; gpu-b, still full, starts nothing more.
    await gate.until_inside(3)
    assert dict(gate.inside) == {"gpu-a": 2, "gpu-b": 1}
    gate.open_all()
    for execution_id in ids:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert gate.max_per_cluster == {"gpu-a": 2, "gpu-b": 1}
    assert gate.max_inside == 3


async def test_steps_bound_to_no_cluster_share_a_pool_of_their_own(
    make_executor: ExecutorFactory, gate: Gate
) -> None:
    """The daemon's pool for unbound steps (cluster_limits[""]) is separate from a
    cluster's: a full cluster does not hold up unbound steps, nor the reverse."""
    executor = make_executor(max_concurrent_per_cluster=1, cluster_limits={"": 2})
    await executor.start()
    bound = executor.submit(
        chain(*[node(f"n{i}", "gate") for i in range(2)], name="on-gpu", cluster="gpu-a")
    )
    unbound = [
        executor.submit(chain(node("n0", "gate"), name=f"free-{i}", cluster=None)) for i in range(4)
    ]
    await gate.until_inside(3)  # 1 on gpu-a (its limit) and 2 unbound (the pool's)
    assert dict(gate.inside) == {"gpu-a": 1, "": 2}
    for key in [k for k in gate.waiting() if k.startswith("Workflow/free-")]:
        gate.open(key)
    await gate.until_inside(3)  # the pool refills from unbound chains only
    assert dict(gate.inside) == {"gpu-a": 1, "": 2}
    gate.open_all()
    for execution_id in [bound, *unbound]:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert gate.max_per_cluster == {"gpu-a": 1, "": 2}


class BrokenCatalog(StepRegistry):
    """A catalogue that breaks when asked about step type ``broken``."""

    def signature(self, step_type: str) -> step_types.StepSignature | None:
        if step_type == "broken":
            raise RuntimeError("the catalogue is broken")
        return super().signature(step_type)


async def test_a_slot_taken_for_a_step_that_never_ran_is_given_back(store: Store) -> None:
    """The driver takes a slot for ``a`` and then breaks on ``z`` before ``a``'s runner
    ever ran: the slot must still come back, or the cluster would stall for good."""
    catalog = BrokenCatalog()
    noop = default_registry()["noop"]
    catalog.register("noop", noop)
    catalog.register("broken", noop, signature=step_types.CATALOGUE["noop"])
    executor = Executor(store=store, registry=catalog, max_concurrent_per_cluster=1)
    await executor.start()
    broken = executor.submit(chain(node("a", "noop"), node("z", "broken"), cluster="gpu-a"))
    record = await asyncio.wait_for(executor.wait(broken), timeout=10)
    assert record.status == "failed" and "the catalogue is broken" in (record.error or "")
    later = executor.submit(chain(node("b", "noop"), name="later", cluster="gpu-a"))
    assert (await asyncio.wait_for(executor.wait(later), timeout=10)).status == "succeeded"
    await executor.shutdown()


async def test_slots_go_to_waiters_in_order_and_skip_the_cancelled() -> None:
    slots = ClusterSlots(1)
    assert slots.try_take()
    first = asyncio.ensure_future(slots.take())
    second = asyncio.ensure_future(slots.take())
    third = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)  # all three now queue
    assert not slots.try_take()  # free or not, nobody jumps the queue
    second.cancel()
    slots.give()
    await first
    assert not third.done()
    slots.give()
    await third
    assert second.cancelled()
    slots.give()
    assert slots.try_take() and not slots.try_take()
    with pytest.raises(ValueError, match="at least one slot"):
        ClusterSlots(0)


async def test_a_busy_clusters_slots_go_to_the_best_rank_first() -> None:
    from reconciler.engine.cluster_slots import ClusterSlots

    slots = ClusterSlots(1)
    assert slots.try_take()
    served: list[str] = []

    async def wants(name: str, rank: int) -> None:
        await slots.take(rank=rank)
        served.append(name)

    waiters = [
        asyncio.create_task(wants(name, rank))
        for name, rank in (("low", 3), ("first-medium", 2), ("critical", 0), ("later-medium", 2))
    ]
    while slots.waiting < 4:
        await asyncio.sleep(0)
    for _ in range(4):
        slots.give()
        before = len(served)
        while len(served) == before:
            await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert served == ["critical", "first-medium", "later-medium", "low"]
