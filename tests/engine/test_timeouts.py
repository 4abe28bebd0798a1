"""A step running past its node timeout is stopped and retried like any transient failure."""

from __future__ import annotations

from executor_kit import ExecutorFactory, chain

from reconciler.core.chains import StepNode
from reconciler.engine.store import Store


async def test_timed_out_step_is_retried_then_fails(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            StepNode(
                id="slow",
                type="noop",
                inputs={"delay": "5s"},
                timeout=0.05,
                retries=1,
                retry_delay=0.001,
            )
        )
    )
    record = await executor.wait(execution_id)
    assert record.status == "failed"
    (step,) = store.get_steps(execution_id)
    assert step.attempts == 2
    assert step.error == "step timed out after 0.05s (gave up after 2 attempts)"
    assert step.logs.count("ERROR timed out after 0.05s") == 2


async def test_step_within_its_timeout_succeeds(make_executor: ExecutorFactory) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(StepNode(id="quick", type="noop", inputs={"delay": "10ms"}, timeout=2.0))
    )
    assert (await executor.wait(execution_id)).status == "succeeded"
