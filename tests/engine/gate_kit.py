"""A step type held at a gate until the test opens it: concurrency proven without timing.

Each ``gate`` step records that it is inside, then waits on its own asyncio.Event. The
test waits for the executor to fill every slot it may use, checks who is inside, and
opens gates one at a time; ``max_inside`` is then exact, because nothing leaves a gate
until the test says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

from executor_kit import eventually

from reconciler.core import step_types
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.steps.registry import StepRegistry

GATE_SIGNATURE = step_types.StepSignature(
    name="gate", required=frozenset(), optional=frozenset(), outputs=frozenset({"node"})
)


@dataclasses.dataclass
class Gate:
    """Records entries and exits of ``gate`` steps by ``Kind/name:node``, and per cluster."""

    entered: list[str] = dataclasses.field(default_factory=list)
    left: list[str] = dataclasses.field(default_factory=list)
    events: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    inside: Counter[str] = dataclasses.field(default_factory=Counter)
    max_inside: int = 0
    max_per_cluster: dict[str, int] = dataclasses.field(default_factory=dict)
    _gates: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)
    _cluster_of: dict[str, str] = dataclasses.field(default_factory=dict)
    _all_open: bool = False

    def _event(self, key: str) -> asyncio.Event:
        event = self._gates.setdefault(key, asyncio.Event())
        if self._all_open:
            event.set()
        return event

    async def step(self, ctx: StepContext) -> outcomes.Outcome:
        key = f"{ctx.object_key}:{ctx.node_id}"
        cluster = ctx.cluster or ""
        self._cluster_of[key] = cluster
        self.entered.append(key)
        self.events.append(("enter", key))
        self.inside[cluster] += 1
        self.max_inside = max(self.max_inside, self.total_inside)
        self.max_per_cluster[cluster] = max(
            self.max_per_cluster.get(cluster, 0), self.inside[cluster]
        )
        try:
            await self._event(key).wait()
        finally:
            self.inside[cluster] -= 1
        self.left.append(key)
        self.events.append(("leave", key))
        return outcomes.Done({"node": ctx.node_id})

    @property
    def total_inside(self) -> int:
        return sum(self.inside.values())

    def waiting(self) -> list[str]:
        """Keys inside and not yet released, oldest first."""
        return [k for k in self.entered if k not in self.left and not self._event(k).is_set()]

    def open(self, key: str) -> None:
        self._event(key).set()

    def open_all(self) -> None:
        """Release everyone inside and let every later entry through at once."""
        self._all_open = True
        for event in self._gates.values():
            event.set()

    async def until_inside(self, count: int, *, timeout_s: float = 10.0) -> None:
        """Wait until ``count`` steps are held at once (fails the test after the deadline)."""
        await eventually(lambda: len(self.waiting()) >= count, timeout_s=timeout_s)

    async def until_left(self, count: int, *, timeout_s: float = 10.0) -> None:
        """Wait until ``count`` steps have gone through their gate."""
        await eventually(lambda: len(self.left) >= count, timeout_s=timeout_s)

    async def drain_one_at_a_time(self, *, total: int, limit: int) -> None:
        """Open the oldest gate, wait for the executor to refill its free slot, repeat.

        With a correct limit the executor keeps exactly ``min(limit, left to start)``
        steps inside; each wait fails the test if it never refills.
        """
        for opened in range(total):
            await eventually(
                lambda o=opened: len(self.entered) >= min(total, limit + o), timeout_s=10.0
            )
            assert self.total_inside <= limit, (self.total_inside, self.entered)
            self.open(self.waiting()[0])
        await eventually(lambda: len(self.left) == total, timeout_s=10.0)


def register_gate(registry: StepRegistry) -> Gate:
    """A fresh Gate whose ``gate`` step type is registered in ``registry``."""
    gate = Gate()
    registry.register("gate", gate.step, signature=GATE_SIGNATURE)
    return gate
