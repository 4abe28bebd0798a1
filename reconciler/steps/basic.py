"""The simplest built-in steps: ``noop`` and ``fail``, for workflows and for testing chains.

``fail`` reports a retryable failure, so a node's ``retries`` decide how often it is tried;
with ``until_attempt`` it succeeds from that attempt on, which exercises retry paths.
"""

from __future__ import annotations

import asyncio

from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.steps import input_values


async def noop(ctx: StepContext) -> outcomes.Outcome:
    delay = input_values.duration(ctx.inputs, "delay", default=0.0) or 0.0
    if delay > 0:
        ctx.log.info(f"waiting {delay:g}s")
        await asyncio.sleep(delay)
    return outcomes.Done()


async def fail(ctx: StepContext) -> outcomes.Outcome:
    message = str(ctx.inputs.get("message") or "failed on purpose")
    until_attempt = input_values.integer(ctx.inputs, "until_attempt")
    if until_attempt is not None and ctx.attempt >= until_attempt:
        ctx.log.info(f"attempt {ctx.attempt} reached until_attempt={until_attempt}: succeeding")
        return outcomes.Done()
    ctx.log.error(message)
    return outcomes.Retry(message)
