"""Helpers for executor tests: chain builders, an observable step type, polling."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from reconciler.core import step_types
from reconciler.core.chains import Chain, StepNode
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.executor import Executor

ExecutorFactory = Callable[..., Executor]

PROBE_SIGNATURE = step_types.StepSignature(
    name="probe",
    required=frozenset(),
    optional=frozenset({"sleep", "value", "upstream_value"}),
    outputs=frozenset({"node", "value"}),
)


@dataclasses.dataclass
class Probe:
    """Records what ``probe`` steps did: order, concurrency, inputs seen."""

    started: list[str] = dataclasses.field(default_factory=list)
    finished: list[str] = dataclasses.field(default_factory=list)
    inputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    running: int = 0
    max_running: int = 0
    intervals: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)

    async def step(self, ctx: StepContext) -> outcomes.Outcome:
        loop = asyncio.get_running_loop()
        began = loop.time()
        self.started.append(ctx.node_id)
        self.inputs[ctx.node_id] = dict(ctx.inputs)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(float(ctx.inputs.get("sleep", 0)))
        finally:
            self.running -= 1
        self.finished.append(ctx.node_id)
        self.intervals.append((f"{ctx.object_key}:{ctx.node_id}", began, loop.time()))
        return outcomes.Done({"node": ctx.node_id, "value": ctx.inputs.get("value")})


def chain(
    *steps: StepNode,
    name: str = "demo",
    kind: str = "Workflow",
    cluster: str | None = None,
    params: dict[str, Any] | None = None,
    revision: str = "rev1",
) -> Chain:
    return Chain(
        kind=kind,
        name=name,
        action="execute",
        revision=revision,
        spec_hash=f"hash-{revision}",
        steps=steps,
        cluster=cluster,
        params=params or {},
    )


def node(node_id: str, step_type: str = "probe", *after: str, **options: Any) -> StepNode:
    inputs = options.pop("inputs", {})
    return StepNode(id=node_id, type=step_type, inputs=inputs, after=tuple(after), **options)


async def eventually(condition: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    """Poll ``condition`` briefly; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)
