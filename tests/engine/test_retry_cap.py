"""The executor's retry cap bounds every backoff, however large a node's retry_delay.

A node asking for an hour between attempts, on an executor capped at 50 ms, retries
within the cap (equal jitter: between half of it and all of it) and finishes at once;
without the cap it would wait an hour, two, four.
"""

from __future__ import annotations

import asyncio
import re

from executor_kit import ExecutorFactory, chain

from reconciler.core.chains import StepNode
from reconciler.engine.store import Store

CAP_S = 0.05
HOUR_S = 3600.0


async def test_backoff_never_exceeds_the_executor_cap(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor(retry_cap_s=CAP_S)
    await executor.start()
    flaky = StepNode(
        id="f",
        type="fail",
        inputs={"message": "busy", "until_attempt": 4},
        retries=5,
        retry_delay=HOUR_S,
    )
    execution_id = executor.submit(chain(flaky))
    record = await asyncio.wait_for(executor.wait(execution_id), timeout=30)
    assert record.status == "succeeded"
    (step,) = store.get_steps(execution_id)
    assert step.attempts == 4
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.e+-]+)s", step.logs)]
    assert len(delays) == 3
    assert all(CAP_S / 2 <= d <= CAP_S for d in delays), delays


async def test_a_cap_above_the_delay_leaves_the_doubling_alone(
    make_executor: ExecutorFactory, store: Store
) -> None:
    executor = make_executor(retry_cap_s=HOUR_S)
    await executor.start()
    flaky = StepNode(
        id="f",
        type="fail",
        inputs={"message": "busy", "until_attempt": 3},
        retries=2,
        retry_delay=0.02,
    )
    execution_id = executor.submit(chain(flaky))
    assert (await asyncio.wait_for(executor.wait(execution_id), timeout=30)).status == "succeeded"
    (step,) = store.get_steps(execution_id)
    first, second = (float(d) for d in re.findall(r"retrying in ([0-9.e+-]+)s", step.logs))
    assert 0.01 <= first <= 0.02  # attempt 1: half of retry_delay up to all of it
    assert 0.02 <= second <= 0.04  # attempt 2: the delay doubled, far below the cap
