"""Retries: backoff with equal jitter, Retry(after) honoured, exceptions mapped to outcomes."""

from __future__ import annotations

import asyncio
import random

import pytest
from executor_kit import ExecutorFactory, chain, node

from reconciler.core import step_types
from reconciler.core.chains import StepNode
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.node_inputs import backoff_delay
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry

ANY_SIGNATURE = step_types.StepSignature(
    name="scripted", required=frozenset(), optional=frozenset(), outputs=frozenset()
)


def fail_node(node_id: str, *, until: int | None, retries: int) -> StepNode:
    inputs: dict[str, object] = {"message": "flaky"}
    if until is not None:
        inputs["until_attempt"] = until
    return StepNode(id=node_id, type="fail", inputs=inputs, retries=retries, retry_delay=0.001)


async def test_retried_step_succeeds_within_its_retries(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(fail_node("f", until=3, retries=2)))
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    (step,) = store.get_steps(execution_id)
    assert step.attempts == 3
    assert step.error is None
    assert step.logs.count("retrying in") == 2


async def test_step_fails_when_retries_run_out(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(fail_node("f", until=5, retries=2), node("after", "probe", "f"))
    )
    record = await executor.wait(execution_id)
    assert record.status == "failed"
    assert record.error == "step 'f' (fail) failed: flaky (gave up after 3 attempts)"
    steps = {s.node_id: s for s in store.get_steps(execution_id)}
    assert steps["f"].status == "failed" and steps["f"].attempts == 3
    assert steps["after"].status == "skipped"


@pytest.mark.parametrize("attempt", [1, 2, 5, 40])
def test_backoff_is_equal_jitter_never_below_half_the_delay(attempt: int) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, base_s=0.5, cap_s=10.0, rng=rng) for _ in range(300)]
    ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.9  # spread over the upper half, not pinned
    assert min(delays) < ceiling * 0.6


def test_a_500ms_retry_delay_waits_at_least_250ms() -> None:
    rng = random.Random(1)
    assert min(backoff_delay(1, base_s=0.5, cap_s=300.0, rng=rng) for _ in range(500)) >= 0.25


async def test_retry_after_from_the_step_is_honoured(
    make_executor: ExecutorFactory, registry: StepRegistry
) -> None:
    moments: list[float] = []

    async def later(ctx: StepContext) -> outcomes.Outcome:
        moments.append(asyncio.get_running_loop().time())
        if ctx.attempt == 1:
            return outcomes.Retry("not yet", after_seconds=0.2)
        return outcomes.Done()

    registry.register("later", later, signature=ANY_SIGNATURE)
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(StepNode(id="l", type="later", retries=1, retry_delay=100.0))
    )
    assert (await executor.wait(execution_id)).status == "succeeded"
    assert moments[1] - moments[0] >= 0.2
    assert moments[1] - moments[0] < 5.0  # not the 100 s backoff


async def test_exceptions_become_outcomes(
    make_executor: ExecutorFactory, registry: StepRegistry, store: Store
) -> None:
    async def raises(ctx: StepContext) -> outcomes.Outcome:
        kind = ctx.node_id
        if kind == "transient" and ctx.attempt == 1:
            raise ConnectionError("peer went away")
        if kind == "permanent":
            raise outcomes.PermanentStepError("the model file is corrupt")
        if kind == "stall":
            raise outcomes.StalledStepError("secret hf-token is missing")
        if kind == "wrong":
            return "done"  # type: ignore[return-value]
        return outcomes.Done()

    registry.register("raises", raises, signature=ANY_SIGNATURE)
    executor = make_executor()
    await executor.start()
    results = {}
    for name in ("transient", "permanent", "stall", "wrong"):
        execution_id = executor.submit(
            chain(StepNode(id=name, type="raises", retries=3, retry_delay=0.001), name=name)
        )
        results[name] = (await executor.wait(execution_id), store.get_steps(execution_id)[0])
    assert results["transient"][0].status == "succeeded"
    assert results["transient"][1].attempts == 2
    assert "ConnectionError: peer went away" in results["transient"][1].logs
    assert results["permanent"][0].status == "failed"
    assert results["permanent"][1].attempts == 1
    assert results["permanent"][1].error == "the model file is corrupt"
    assert results["stall"][0].status == "stalled"
    assert results["wrong"][0].status == "failed"
    assert "returned str, not an outcome" in (results["wrong"][1].error or "")
