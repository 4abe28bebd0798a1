"""Run one attempt of one step and turn whatever happens into an outcome value.

The executor must never be broken by a step: an exception becomes Retry (or Failed or
Stalled when its type says so), running past the node's timeout becomes a retryable
outcome, a wrong return value becomes Failed. Only asyncio cancellation propagates, so a
shutdown can still interrupt a step.
"""

from __future__ import annotations

import asyncio

from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl


async def run_step(
    impl: StepImpl, ctx: StepContext, *, timeout_s: float | None
) -> outcomes.Outcome:
    """One attempt of ``impl`` under ``timeout_s``; never raises except CancelledError."""
    deadline = None if timeout_s is None else asyncio.timeout(timeout_s)
    try:
        if deadline is None:  # no timer to arm: the common case, kept cheap
            result = await impl(ctx)
        else:
            async with deadline:
                result = await impl(ctx)
    except TimeoutError as e:
        if deadline is not None and deadline.expired():
            ctx.log.error(f"timed out after {timeout_s:g}s")
            return outcomes.Retry(f"step timed out after {timeout_s:g}s")
        ctx.log.error(outcomes.describe(e))
        return outcomes.outcome_from_exception(e)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        ctx.log.error(outcomes.describe(e))
        return outcomes.outcome_from_exception(e)
    if not isinstance(result, outcomes.Done | outcomes.Retry | outcomes.Failed | outcomes.Stalled):
        return outcomes.Failed(
            f"step type '{ctx.step_type}' returned {type(result).__name__}, not an outcome"
            " (Done, Retry, Failed or Stalled): a bug in its implementation"
        )
    return result
