"""The ``wait_ready`` step: wait until a Deployment is Ready and hand on its endpoint URL.

Readiness is the daemon's to know (its latest observation of the clusters), so the step
asks a ReadinessSource it is lent instead of reaching any cluster itself. It does not
poll: it checks once, then sleeps until the source says the Deployment's status moved
(or the timeout passes), and checks again. One log line says what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib

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
    limit = timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S
    deadline = loop.time() + limit
    said = False
    while True:
        url = source.endpoint_url(deployment)
        if url is not None:
            ctx.log.info(f"Deployment/{deployment} is Ready at {url}")
            return outcomes.Done({"endpoint_url": url})
        remaining = deadline - loop.time()
        if remaining <= 0:
            return outcomes.Failed(
                f"Deployment/{deployment} was not Ready within {limit:g}s; "
                "see its status conditions"
            )
        if not said:
            ctx.log.info(f"waiting for Deployment/{deployment} to be Ready")
            said = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(source.changed(deployment), remaining)
