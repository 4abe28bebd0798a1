"""At most N steps run at once per cluster; clusters do not share their budget.

Steps are held at a gate (gate_kit): the executor must fill exactly its limit, and a
new step may start only when the test lets one out, so the counts are exact on any machine.
"""

from __future__ import annotations

import pytest
from executor_kit import ExecutorFactory, chain, node
from gate_kit import Gate, register_gate

from reconciler.steps.registry import StepRegistry


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
