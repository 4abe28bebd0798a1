"""How many steps may run at once on one cluster: a FIFO counting semaphore.

Unlike asyncio.Semaphore it can be taken without awaiting when a slot is free and nobody
queues for one (``try_take``), so the executor starts a ready step in the same turn of
the loop that made it ready, and that step's start commits with the end that freed it.
"""

from __future__ import annotations

import asyncio
import collections


class ClusterSlots:
    """``limit`` slots, handed to waiters in the order they asked."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a cluster needs at least one slot")
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot now if one is free and nobody is waiting for one."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot (first come, first served) and take it."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed over just as we were cancelled: pass it on
            elif waiter in self._waiters:  # give() may have dropped it already
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back: straight to the longest waiter, or to the free pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
