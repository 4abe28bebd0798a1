"""Waiting for an object's status to move, without polling it.

A ``wait_ready`` step waits for a Deployment to be Ready: it checks once, then awaits
:meth:`StatusWaits.changed` for that Deployment, which returns the next time the daemon
says the object's status may have moved (a chain of it ended, it was parked or woken,
drift was seen), and checks again. One event per waited-on object, made on demand and
dropped once it fired.
"""

from __future__ import annotations

import asyncio


class StatusWaits:
    """Events by ``kind/name``, set when that object's status may have moved."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def changed(self, key: str) -> None:
        """Return once ``key``'s status may have moved after this call."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        await event.wait()

    def signal(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Wake every waiter (the daemon stops)."""
        for event in self._events.values():
            event.set()
        self._events.clear()
