"""A keyed work queue: one entry per object, with controller-runtime's workqueue semantics.

The daemon reconciles object by object. Every trigger (a Git change, a dependency whose
status moved, a drift event, an API request, the periodic resync) only says "look at
this object now"; this queue turns any number of such requests into at most one pending
entry per object and hands each object to one worker at a time:

- ``add(key)`` queues a key once however often it is added. A key added while a worker
  holds it is queued again when that worker calls ``done``: an object is never processed
  twice at once, and a change that came in during processing is not lost.
- Priorities: lower values first, first in first out within one. Adding a queued key
  again with a better priority moves it up; a worse one leaves it where it is.
- ``add_rate_limited(key)`` re-queues a key whose processing failed after a per-key
  exponential backoff with equal jitter (half the delay fixed, half random), so one
  failing object retries on its own schedule and never delays the others; ``forget(key)``
  resets its backoff once it succeeds.
- ``add_after(key, delay)`` queues a key later; several delayed adds of one key coalesce
  to the earliest.

Use it from one event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import random
from enum import IntEnum


class Priority(IntEnum):
    """Classes of work, most urgent first."""

    API = 0
    """A request made through the HTTP API."""
    CHANGE = 10
    """A change in Git, a dependency's status moving, drift seen, a chain ending."""
    RESYNC = 20
    """The periodic resync and the backlog of a start: the safety net, never urgent."""


RANK_DEFAULT = 2
"""Order within one priority class: a Workflow's ``priority`` (critical 0 .. low 3)."""


@dataclasses.dataclass(frozen=True, order=True)
class _Slot:
    priority: int
    rank: int


class WorkQueueShutDown(Exception):
    """``get`` on a queue that was shut down."""


class WorkQueue:
    """Keys waiting to be processed; see the module docstring."""

    def __init__(
        self,
        *,
        base_delay_s: float = 0.05,
        max_delay_s: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self._base = base_delay_s
        self._max = max_delay_s
        self._rng = rng or random.Random()
        self._heap: list[tuple[int, int, int, str]] = []
        self._queued: dict[str, _Slot] = {}
        self._processing: set[str] = set()
        self._taken: dict[str, int] = {}
        self._again: dict[str, _Slot] = {}
        self._failures: dict[str, int] = {}
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self._shut = False
        self.added = 0
        """Adds that queued a key (coalesced adds not counted): for tests and metrics."""

    # -- adding --------------------------------------------------------------------------

    def add(self, key: str, *, priority: int = Priority.CHANGE, rank: int = RANK_DEFAULT) -> None:
        """Queue ``key`` (once), or queue it again after its current processing."""
        if self._shut:
            return
        slot = _Slot(int(priority), rank)
        if key in self._processing:
            known = self._again.get(key)
            if known is None or slot < known:
                self._again[key] = slot
            return
        known = self._queued.get(key)
        if known is not None and not slot < known:
            return
        self._queued[key] = slot
        heapq.heappush(self._heap, (slot.priority, slot.rank, next(self._seq), key))
        if known is None:
            self.added += 1
        self._ready.set()

    def add_after(
        self,
        key: str,
        delay_s: float,
        *,
        priority: int = Priority.CHANGE,
        rank: int = RANK_DEFAULT,
    ) -> None:
        """Queue ``key`` in ``delay_s`` seconds; the earliest of several such adds wins."""
        if self._shut:
            return
        if delay_s <= 0:
            self.add(key, priority=priority, rank=rank)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay_s
        known = self._timers.get(key)
        if known is not None:
            if known[0] <= when:
                return
            known[1].cancel()
        handle = loop.call_at(when, self._fire, key, priority, rank)
        self._timers[key] = (when, handle)

    def _fire(self, key: str, priority: int, rank: int) -> None:
        self._timers.pop(key, None)
        self.add(key, priority=priority, rank=rank)

    def backoff(self, key: str) -> float:
        """The delay the next failure of ``key`` waits: base * 2**failures, capped, with
        equal jitter (between half and all of it)."""
        failures = self._failures.get(key, 0)
        delay = min(self._base * 2.0**failures, self._max)
        return delay / 2 + self._rng.uniform(0, delay / 2)

    def add_rate_limited(
        self, key: str, *, priority: int = Priority.CHANGE, rank: int = RANK_DEFAULT
    ) -> float:
        """Queue ``key`` again after its backoff; returns the delay chosen."""
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay, priority=priority, rank=rank)
        return delay

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        """``key`` succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    # -- taking --------------------------------------------------------------------------

    def get_nowait(self) -> str | None:
        """The most urgent queued key (now held by the caller), or None if there is none."""
        while self._heap:
            priority, rank, _, key = heapq.heappop(self._heap)
            slot = self._queued.get(key)
            if slot is None or slot != _Slot(priority, rank):
                continue  # a stale entry: the key moved up, or was taken already
            del self._queued[key]
            self._processing.add(key)
            self._taken[key] = priority
            return key
        self._ready.clear()
        return None

    async def get(self) -> str:
        """Wait for the most urgent key; the caller holds it until ``done(key)``."""
        while True:
            if self._shut:
                raise WorkQueueShutDown("the work queue is shut down")
            key = self.get_nowait()
            if key is not None:
                return key
            await self._ready.wait()

    def done(self, key: str) -> None:
        """The caller finished ``key``; a key added meanwhile is queued now."""
        self._processing.discard(key)
        self._taken.pop(key, None)
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, priority=again.priority, rank=again.rank)

    # -- looking -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Keys queued (not counting those being processed or waiting on a timer)."""
        return len(self._queued)

    def __contains__(self, key: object) -> bool:
        return key in self._queued or key in self._again

    def taken_at(self, key: str) -> int | None:
        """The priority ``key`` was taken with, while it is being processed."""
        return self._taken.get(key)

    @property
    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    def delayed(self) -> int:
        """Keys waiting on a timer (a backoff, a delayed add)."""
        return len(self._timers)

    def idle(self) -> bool:
        """Nothing queued and nothing being processed (timers aside)."""
        return not self._queued and not self._processing and not self._again

    def shut_down(self) -> None:
        """Take no more keys; workers blocked in ``get`` raise WorkQueueShutDown."""
        self._shut = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._ready.set()
