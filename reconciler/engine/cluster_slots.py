"""How many steps may run at once on one cluster: a counting semaphore served by rank.

Unlike asyncio.Semaphore it can be taken without awaiting when a slot is free and nobody
queues for one (``try_take``), so the executor starts a ready step in the same turn of
the loop that made it ready, and that step's start commits with the end that freed it.
Waiters are served by rank (a Workflow's priority: critical 0 .. low 3), first come
first served within one rank, so a critical run's steps do not queue behind a low one's.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

DEFAULT_RANK = 2


class ClusterSlots:
    """``limit`` slots, handed to waiters by rank, then in the order they asked."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a cluster needs at least one slot")
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def try_take(self) -> bool:
        """Take a slot now if one is free and nobody is waiting for one."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self, *, rank: int = DEFAULT_RANK) -> None:
        """Wait for a slot (best rank first, then first come) and take it."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (rank, next(self._seq), waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed over just as we were cancelled: pass it on
            else:  # give() skips cancelled waiters; drop this one now
                self._waiters = [w for w in self._waiters if w[2] is not waiter]
                heapq.heapify(self._waiters)
            raise

    def give(self) -> None:
        """Give a slot back: straight to the best waiter, or to the free pool."""
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, w in self._waiters if not w.done())
