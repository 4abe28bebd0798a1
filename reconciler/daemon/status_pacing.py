"""When the next status commit may go: the pacing half of the status publisher.

The coalescer (reconciler.daemon.status_publisher) decides what goes in a commit; this
decides when, from what is waiting and a few clocks:

- a window (250 ms) from the start of the last commit, so everything that moves within
  it shares one commit;
- a gather (50 ms at most from the first thing that moved) for chains submitted just
  before, so a quick chain's outcome rides in the same commit as its start; it ends as
  soon as those chains end;
- the pace of backlog-only commits (one per ``backlog_interval_s``), and a hold on them
  while a change of the source is being taken in, so a push's own status never queues
  behind a commit of backlog files;
- the progress interval when only steps of running chains moved.

:meth:`CommitPacing.drive` is the publisher's loop: it waits for ``due`` (something was
marked), then out the delay, and flushes. ``sooner`` is set whenever a wait may have
become shorter (a gathered chain ended, the hold was released, the first thing moved),
so a publisher waiting out a delay wakes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("reconciler.daemon")

WINDOW_S = 0.25
GATHER_S = 0.05
PROGRESS_S = 5.0
BACKLOG_INTERVAL_S = 0.4
BACKLOG_HOLD_S = 1.0


class CommitPacing:
    """The clocks of the status commits; see the module docstring."""

    def __init__(
        self,
        *,
        window_s: float = WINDOW_S,
        gather_s: float = GATHER_S,
        progress_s: float = PROGRESS_S,
        backlog_interval_s: float = BACKLOG_INTERVAL_S,
    ) -> None:
        self.window_s = window_s
        self.gather_s = gather_s
        self.progress_s = progress_s
        self.backlog_interval_s = backlog_interval_s
        self.due = asyncio.Event()
        """Set when something was marked: the loop wakes and waits out the delay."""
        self.sooner = asyncio.Event()
        self._last_commit = 0.0
        self._held_until = 0.0
        """Backlog-only commits wait until then: a push is being worked, and its own
        commit must not queue behind one (see :meth:`hold_backlog`)."""
        self._gather_from: float | None = None
        """When the first of what moved since the last commit was marked: a commit gathers
        for fresh chains at most ``gather_s`` from then, however many keep coming."""
        self._fresh: dict[str, float] = {}

    def first_moved(self) -> None:
        """The first object since the last commit moved: its gather starts now."""
        self._gather_from = time.monotonic()
        self.sooner.set()

    def hold_backlog(self, seconds: float = BACKLOG_HOLD_S) -> None:
        self._held_until = time.monotonic() + seconds

    def release_backlog(self) -> None:
        if self._held_until:
            self._held_until = 0.0
            self.sooner.set()

    def moved_collected(self) -> None:
        """What a push moved is in the commit being made: the backlog may follow it."""
        self._held_until = 0.0

    def chain_submitted(self, execution_id: str) -> None:
        self._fresh[execution_id] = time.monotonic() + self.gather_s

    def chain_ended(self, execution_id: str) -> None:
        if self._fresh.pop(execution_id, None) is not None:
            self.sooner.set()

    def commit_started(self) -> None:
        self._last_commit = time.monotonic()  # windows count from a commit's start

    def delay(
        self, *, moved: bool, pending: bool, backlog: bool, progress_due_at: float | None
    ) -> float:
        """Seconds until the next commit may go, given what waits: objects ``moved``,
        files ``pending`` from a commit that failed, ``backlog`` objects, and when the
        first object whose only news is progress is due (None: there is none)."""
        now = time.monotonic()
        wait = self._last_commit + self.window_s - now
        if not moved and not pending:
            if backlog:  # leave most windows free for what a push moves
                wait = max(wait, self._last_commit + self.backlog_interval_s - now)
                wait = max(wait, self._held_until - now)
            elif progress_due_at is not None:
                wait = max(wait, progress_due_at - now)
        if self._fresh:  # a chain past its gather is waited for no more
            self._fresh = {run: until for run, until in self._fresh.items() if until > now}
        if moved and self._fresh:
            began = now if self._gather_from is None else self._gather_from
            last = max(self._fresh.values())
            wait = max(wait, min(last, began + self.gather_s) - now)
        return max(wait, 0.0)

    async def drive(
        self,
        stop: asyncio.Event,
        *,
        delay: Callable[[], float],
        flush: Callable[[], Awaitable[object]],
        dirty: Callable[[], bool],
    ) -> None:
        """Until ``stop``: on each ``due``, wait ``delay()`` out (woken by ``sooner``) and
        ``flush``; go again at once while something is left (``dirty``)."""
        while not stop.is_set():
            await _either(self.due, stop)
            if stop.is_set():
                return
            wait = delay()
            if wait > 0:
                self.sooner.clear()
                await _either(self.sooner, stop, timeout=wait)
                if stop.is_set():
                    return
                if delay() > 0:
                    continue  # not due yet: only progress, or a gathered chain still runs
            self.due.clear()
            try:
                await flush()
            except Exception:
                log.exception("status publish failed; retrying with the next one")
            if dirty():
                self.due.set()


async def _either(
    event: asyncio.Event, stop: asyncio.Event, *, timeout: float | None = None
) -> None:
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
