"""Group commit of step writes: what one turn of the event loop recorded commits at once.

Every step start, end and retry must be committed before the executor acts on it (runs
the step, starts its downstream nodes, finishes the execution). Committing each in its
own transaction made SQLite most of the cost of a no-op step. Here writes queue up and
commit together, in order, two turns of the loop after the first of them (or sooner, when
the executor flushes before a write of its own): the turn after a step ends is the one in
which the steps waiting for its concurrency slot start, so ends and the starts they make
room for share a transaction. A step awaits the commit of its start before it runs. An
end need not be awaited: a downstream start is written after it, so it commits in the
same transaction or a later one; once a commit fails, every later write of that
execution is refused, so nothing ever commits on top of a lost write; and the executor
flushes and checks ``failure`` before it closes an execution.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from reconciler.engine.store import StepWrite, Store

_logger = logging.getLogger("reconciler.engine.step_journal")

OnCommitted = Callable[[Iterable[str]], None]
"""Called with the object keys whose steps moved, after each commit."""


class StepWriteError(RuntimeError):
    """A step write of this execution could not be committed; it takes no more."""


class StepJournal:
    """Queues step writes and commits each loop turn's writes in one transaction."""

    def __init__(self, *, store: Store, on_committed: OnCommitted | None = None) -> None:
        self._store = store
        self._on_committed = on_committed
        self._writes: list[StepWrite] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._keys: dict[str, None] = {}
        self._handle: asyncio.Handle | None = None
        self._failures: dict[str, Exception] = {}

    def record(self, write: StepWrite, *, object_key: str) -> asyncio.Future[None]:
        """Queue ``write``; the future resolves once it is committed (or fails with why not).

        Await it before acting on the write where what acts does not itself go through
        this journal. Cancelling it withdraws nothing: the write still commits with its
        batch. Raises StepWriteError once a write of the same execution failed to commit.
        """
        failure = self._failures.get(write.execution_id)
        if failure is not None:
            raise StepWriteError(
                f"a step write of execution {write.execution_id} could not be committed: {failure}"
            ) from failure
        loop = asyncio.get_running_loop()
        if self._handle is None:
            self._handle = loop.call_soon(self._flush_next_turn, loop)
        waiter = loop.create_future()
        self._writes.append(write)
        self._waiters.append(waiter)
        self._keys[object_key] = None
        return waiter

    @property
    def pending(self) -> int:
        return len(self._writes)

    def failure(self, execution_id: str) -> Exception | None:
        """Why a step write of ``execution_id`` failed to commit, if one did."""
        return self._failures.get(execution_id)

    def forget(self, execution_id: str) -> None:
        """The execution is closed: drop what is remembered of it."""
        self._failures.pop(execution_id, None)

    def _flush_next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit the queued writes now, in one transaction (nothing to do when empty)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        writes, waiters, keys = self._writes, self._waiters, self._keys
        if not writes:
            return
        self._writes, self._waiters, self._keys = [], [], {}
        try:
            self._store.record_steps(writes)
        except Exception as e:
            _logger.exception("committing %d step write(s) failed", len(writes))
            for write in writes:
                self._failures.setdefault(write.execution_id, e)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(e)
                    waiter.exception()  # retrieved here: a cancelled writer never reads it
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._on_committed is not None:
            self._on_committed(keys)
