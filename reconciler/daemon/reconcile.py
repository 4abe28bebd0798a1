"""The reconcile loop of one state repo, object by object: the parts and their wiring.

A sync of the source (reconciler.daemon.source_sync) takes a new revision in and names
the objects it changed; those go on the keyed work queue (reconciler.daemon.work_queue),
and a worker reconciles them one at a time (reconciler.daemon.object_reconciler): each
object compares its own desired and observed state, plans its own chain, and is either
settled, parked on what it waits for (reconciler.daemon.dependency_index), or submitted
to the durable executor. A chain ending, a status moving, a drift event or an API
request puts exactly the objects concerned back on the queue; no object waits on
another's work, and a change costs what it touches, not the size of the repo or of the
backlog. Status is computed per object (reconciler.daemon.status_view) and published in
coalesced commits (reconciler.daemon.status_publisher).

Level-triggered: a trigger only says "look at this object now"; a lost one costs latency,
never correctness, and the periodic resync looks at everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.object_progress import ObjectProgress
from reconciler.daemon.object_reconciler import Decision, ObjectReconciler, rank_of
from reconciler.daemon.reconciler_reads import ReconcilerReads
from reconciler.daemon.snapshot import SnapshotLoader
from reconciler.daemon.source_sync import (
    LAST_APPLIED,
    LAST_SEEN,
    PLANNED,
    SOURCE_STATUS,
    CycleReport,
    SourceSync,
)
from reconciler.daemon.status_publisher import StatusCoalescer
from reconciler.daemon.status_view import StatusView
from reconciler.daemon.status_waits import StatusWaits
from reconciler.daemon.work_queue import Priority, WorkQueue, WorkQueueShutDown
from reconciler.daemon.workflow_lifecycle import WorkflowLifecycle
from reconciler.drivers.git_source import GitSource
from reconciler.drivers.git_status import StatusPublisher
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry

log = logging.getLogger("reconciler.daemon")

__all__ = [
    "LAST_APPLIED",
    "LAST_SEEN",
    "PLANNED",
    "SOURCE_STATUS",
    "CycleReport",
    "ObjectProgress",
    "Reconciler",
]

_SETTLED = frozenset({"settled", "noted", "parked", "stalled", "forgotten"})


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reconciler(ReconcilerReads):
    """The closed loop of docs/architecture.md for one state repo; the service drives it.

    ``await sync_source()`` on every trigger of the source; ``work(stop)`` and
    ``publish(stop)`` run as tasks while the daemon runs.
    """

    def __init__(
        self,
        *,
        source: GitSource,
        loader: SnapshotLoader,
        store: Store,
        executor: Executor,
        registry: StepRegistry,
        publisher: StatusPublisher | None,
        same_branch_status: bool = False,
        status_prefix: str = "status/",
        now: Callable[[], str] = iso_now,
    ) -> None:
        self._store = store
        self._executor = executor
        self._registry = registry
        self.book = ObjectBook(store)
        self.deps = DependencyIndex()
        self.queue = WorkQueue()
        self._sync = SourceSync(
            source=source,
            loader=loader,
            store=store,
            book=self.book,
            same_branch_status=same_branch_status,
            status_prefix=status_prefix,
        )
        self.objects = ObjectReconciler(
            book=self.book,
            deps=self.deps,
            executor=executor,
            registry=registry,
            revision=lambda: self._sync.planned or "",
            on_status=self._status_moved,
        )
        self.view = StatusView(
            book=self.book, store=store, hooks=lambda: self.workflow_hooks, now=now
        )
        saved = store.get_value(SOURCE_STATUS)
        self.status = StatusCoalescer(
            book=self.book,
            view=self.view,
            publisher=publisher,
            source_document=self._source_document,
            saved_source=saved if isinstance(saved, dict) else None,
            revision=lambda: self._sync.last_seen,
            now=now,
        )
        self._resync_keys: set[str] = set()
        self._backlog_keys: set[str] = set()
        """Objects last reconciled as backlog (start, resync): their status moves are
        published after everything else's."""
        self._drift_keys: set[str] = set()
        self._expected: set[str] = set()
        self._ready_waits = StatusWaits()
        self.last_report: CycleReport | None = None
        self.last_loaded: CycleReport | None = None
        """The report of the last sync that loaded a revision."""
        self.decisions = 0
        """Objects reconciled so far (a benchmark's measure of work done)."""
        self._workflow_hooks: WorkflowLifecycle | None = None
        self.owns: Callable[[str], bool] = lambda _key: True
        """Whether this daemon reconciles ``key`` (a sharded replica: the objects of the
        shards it holds, and what they use; see reconciler.daemon.shard_coordinator)."""
        for key, memo in self.book.memos.items():
            if memo.status is None:
                self.status.mark(key)

    # -- wiring ---------------------------------------------------------------------------

    @property
    def workflow_hooks(self) -> WorkflowLifecycle | None:
        """Schedules, notifications, undo and provisioning status (the service sets it)."""
        return self._workflow_hooks

    @workflow_hooks.setter
    def workflow_hooks(self, hooks: WorkflowLifecycle | None) -> None:
        self._workflow_hooks = hooks
        self.objects.chains.hooks = hooks

    # -- the source -----------------------------------------------------------------------

    async def sync_source(self, *, resync: bool = False) -> CycleReport:
        """Fetch and take a new revision in; enqueue what it changed (all on resync)."""
        self.status.hold_backlog()  # a push's own status must not queue behind the backlog
        try:
            report, loaded = await self._sync.sync(resync=resync)
        except BaseException:
            self.status.release_backlog()
            raise
        if loaded is None or not loaded.touched or loaded.first:
            self.status.release_backlog()
        if loaded is not None and not loaded.first:
            for key in sorted(loaded.touched):
                expected = key in self._expected
                self._enqueue(key, Priority.API if expected else Priority.CHANGE)
            self._expected -= loaded.touched
        if self._sync.loaded_once and (resync or (loaded is not None and loaded.first)):
            # The start's backlog and the resync: everything, behind any change.
            for key in sorted(set(self.book.desired) | set(self.book.memos)):
                self._resync_keys.add(key)
                self._enqueue(key, Priority.RESYNC)
                memo = self.book.memos.get(key)
                if memo is not None and memo.status_unpublished:
                    self.status.mark(key, backlog=True)  # read, never committed: Git gets it
        self.status.mark_source()
        self.last_report = report
        if report.loaded:
            self.last_loaded = report
        return report

    def expect(self, key: str) -> None:
        """An API write of ``key`` was committed: reconcile it first when it arrives."""
        self._expected.add(key)

    def request(self, key: str, *, resync: bool = True) -> None:
        """Reconcile ``key`` now, before other work (an API sync of one object); with
        ``resync`` its failed chain runs again and what can drift is re-applied."""
        if resync:
            self._resync_keys.add(key)
        self._enqueue(key, Priority.API)

    def requeue(self, keys: Iterable[str]) -> None:
        """Look at ``keys`` again (a shard this replica took)."""
        for key in sorted(keys):
            self._enqueue(key, Priority.CHANGE)

    def _enqueue(self, key: str, priority: int) -> None:
        self.queue.add(key, priority=priority, rank=rank_of(self.book.desired.get(key)))

    # -- the workers ----------------------------------------------------------------------

    async def work(self, stop: asyncio.Event) -> None:
        """Reconcile queued objects one at a time until ``stop``."""
        while not stop.is_set():
            try:
                key = await self.queue.get()
            except WorkQueueShutDown:
                return
            # A revision being loaded (a push) goes first: its load is CPU in a thread,
            # and backlog work on this loop would halve it. Loads are bounded; fetches,
            # which can wait on a slow remote, do not pause anything.
            await self._sync.not_loading.wait()
            self.reconcile_one(key)
            await asyncio.sleep(0)  # let triggers, the API and chains in between

    def reconcile_one(self, key: str) -> Decision | None:
        """Reconcile ``key`` (taken from the queue) and hand it back to the queue."""
        if not self._sync.loaded_once:
            # No revision has validated since the start: nothing is desired *yet*, which
            # is not "delete it". The first load queues every object it knows.
            self.queue.done(key)
            self.queue.forget(key)
            return None
        if not self.owns(key):  # another replica's: settled as far as this one goes
            self.queue.done(key)
            self.queue.forget(key)
            self._sync.tracker.settle(key)
            return None
        if self.queue.taken_at(key) == Priority.RESYNC:
            self._backlog_keys.add(key)  # its status goes out with the backlog's
        else:
            self._backlog_keys.discard(key)
        try:
            decision = self.objects.reconcile(
                key,
                resync=_take(self._resync_keys, key),
                drift=_take(self._drift_keys, key),
            )
        except Exception:
            delay = self.queue.add_rate_limited(key, rank=rank_of(self.book.desired.get(key)))
            log.exception(
                "reconcile of %s failed; trying again in %.2fs", key, delay, extra={"object": key}
            )
            return None
        finally:
            self.queue.done(key)
        self.queue.forget(key)
        self.decisions += 1
        if decision.outcome in _SETTLED:
            self._sync.tracker.settle(key)
            self.status.mark_source()
        elif decision.outcome == "submitted" and decision.execution is not None:
            self.status.chain_submitted(decision.execution)
        return decision

    async def drain(self) -> None:
        """Reconcile everything queued now (tests and one-shot callers)."""
        while (key := self.queue.get_nowait()) is not None:
            self.reconcile_one(key)

    async def cycle(self, *, resync: bool = False) -> CycleReport:
        """One sync of the source and the reconcile of everything it queued."""
        report = await self.sync_source(resync=resync)
        await self.drain()
        return report

    # -- executions, drift, status --------------------------------------------------------

    def on_execution_progress(self, key: str) -> None:
        """Executor callback: an execution of ``key`` started or one of its steps moved."""
        self.book.attempt_moved(key)
        self.status.mark_progress(key)
        self._signal(key)
        if self._workflow_hooks is not None:
            self._workflow_hooks.on_progress(key)

    def on_execution_finished(self, record: ExecutionRecord) -> None:
        """Executor callback: record what a chain did; look at its object again."""
        key = record.object_key
        self.status.chain_ended(record.id)
        self.objects.record_finished(record)
        self.view.drift.pop(key, None)
        self.view.live.pop(key, None)
        if self._workflow_hooks is not None:
            self._workflow_hooks.on_finished(record)
        self._status_moved(key)
        self._enqueue(key, Priority.CHANGE)

    def on_drift(self, key: str, drift: Sequence[Mapping[str, Any]]) -> None:
        """A watch saw ``key``'s live state change out of band: say so, and repair it.
        Drift an apply of ours already overwrote (``reapplied``) is only told: its status
        shows it until the object's next chain ends."""
        if key not in self.book.desired:
            return
        healed = all(item.get("reapplied") for item in drift)
        log.warning(
            "%s drifted%s: %s",
            key,
            " (already re-applied)" if healed else "",
            "; ".join(str(d.get("field")) for d in drift),
            extra={"object": key},
        )
        self.view.drift[key] = [dict(item) for item in drift]
        self.status.mark(key)
        if not healed:
            self._drift_keys.add(key)
            self._enqueue(key, Priority.CHANGE)

    def on_live_status(self, key: str, fields: Mapping[str, Any]) -> None:
        """A driver moved ``key``'s live state by itself (a local autoscaler scaled it):
        its status shows ``fields`` until the object's next chain reports its own."""
        if key not in self.book.desired:
            return
        self.view.live[key] = dict(fields)
        self._status_moved(key)

    def on_status_changed(self, key: str) -> None:
        """Something outside the reconcile moved ``key``'s status (a schedule)."""
        self._status_moved(key)

    def _status_moved(self, key: str) -> None:
        backlog = key in self._backlog_keys
        self.status.mark(key, backlog=backlog)
        # A waiter woken by backlog work is backlog work too: thousands of Deployments
        # waking as a start's Models fail must not go before a push.
        wake = Priority.RESYNC if backlog else Priority.CHANGE
        for waiter in self.deps.waiters(key):
            self._enqueue(waiter, wake)
        self._signal(key)

    def _signal(self, key: str) -> None:
        self._ready_waits.signal(key)

    # -- readiness (wait_ready steps) -----------------------------------------------------

    async def changed(self, deployment: str) -> None:
        """Return when Deployment ``deployment``'s status may have moved."""
        await self._ready_waits.changed(f"Deployment/{deployment}")

    # -- status ---------------------------------------------------------------------------

    async def publish(self, stop: asyncio.Event) -> None:
        await self.status.run(stop)

    async def flush(self, *, verify: bool = False) -> str | None:
        """Publish what moved now, as one commit (a batch at most)."""
        return await self.status.flush(verify=verify)

    def _source_document(self, now: str) -> dict[str, Any]:
        document = self._sync.document(now, self.status.published_source)
        self._store.set_value(SOURCE_STATUS, document)
        return document

    def close(self) -> None:
        self.queue.shut_down()
        self._ready_waits.close()

    async def settle(self, timeout_s: float) -> None:
        """Publish what is left (shutdown)."""
        with contextlib.suppress(Exception):
            await self.status.wait_quiet(timeout_s)


def _take(keys: set[str], key: str) -> bool:
    if key in keys:
        keys.discard(key)
        return True
    return False
