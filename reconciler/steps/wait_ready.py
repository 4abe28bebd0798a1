"""The ``wait_ready`` step: wait until a Deployment is Ready and hand on its endpoint URL.

Readiness is the daemon's to know (its latest observation of the clusters), so the step
polls a ReadinessSource it is lent instead of reaching any cluster itself.
"""

from __future__ import annotations

import asyncio

from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.steps import input_values

DEFAULT_TIMEOUT_S = 600.0


async def wait_ready(ctx: StepContext) -> outcomes.Outcome:
    deployment = input_values.text(ctx.inputs, "deployment")
    timeout_s = input_values.duration(ctx.inputs, "timeout", default=DEFAULT_TIMEOUT_S)
    source = ctx.services.readiness
    if source is None:
        return outcomes.Failed(
            "wait_ready needs the daemon's readiness source, and none was given to the executor"
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S)
    interval = max(ctx.services.readiness_poll_interval_s, 0.001)
    ctx.log.info(f"waiting for Deployment/{deployment} to be Ready")
    while True:
        url = source.endpoint_url(deployment)
        if url is not None:
            ctx.log.info(f"Deployment/{deployment} is Ready at {url}")
            return outcomes.Done({"endpoint_url": url})
        remaining = deadline - loop.time()
        if remaining <= 0:
            return outcomes.Failed(
                f"Deployment/{deployment} was not Ready within {timeout_s:g}s; "
                "see its status conditions"
            )
        await asyncio.sleep(min(interval, remaining))
