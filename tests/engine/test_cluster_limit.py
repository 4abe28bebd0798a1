"""At most N steps run at once per cluster; clusters do not share their budget."""

from __future__ import annotations

from executor_kit import ExecutorFactory, Probe, chain, node


async def test_limit_bounds_the_steps_of_one_chain(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor(max_concurrent_per_cluster=3)
    await executor.start()
    nodes = [node(f"n{i}", inputs={"sleep": 0.03}) for i in range(10)]
    execution_id = executor.submit(chain(*nodes, cluster="gpu-a"))
    assert (await executor.wait(execution_id)).status == "succeeded"
    assert probe.max_running == 3


async def test_limit_is_shared_by_chains_on_the_same_cluster(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor(max_concurrent_per_cluster=3)
    await executor.start()
    ids = [
        executor.submit(
            chain(
                *[node(f"n{i}", inputs={"sleep": 0.03}) for i in range(4)],
                name=name,
                cluster="gpu-a",
            )
        )
        for name in ("one", "two", "three")
    ]
    for execution_id in ids:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert probe.max_running == 3


async def test_each_cluster_has_its_own_limit(make_executor: ExecutorFactory, probe: Probe) -> None:
    executor = make_executor(max_concurrent_per_cluster=2, cluster_limits={"gpu-b": 1})
    await executor.start()
    ids = [
        executor.submit(
            chain(
                *[node(f"n{i}", inputs={"sleep": 0.04}) for i in range(4)],
                name=cluster,
                cluster=cluster,
            )
        )
        for cluster in ("gpu-a", "gpu-b")
    ]
    for execution_id in ids:
        assert (await executor.wait(execution_id)).status == "succeeded"
    assert probe.max_running == 3  # 2 on gpu-a plus 1 on gpu-b
