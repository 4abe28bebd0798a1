"""What the API, the CLI and the steps read of a running reconcile.

The Reconciler (reconciler.daemon.reconcile) is the write side: it takes revisions in,
queues objects and drives their chains. These are its reads, each answered from what
the parts keep (the object book, the status view, the dependency index, the queue, the
store) without moving anything: an object's status, why it is where it is, where an API
task's object stands, a Deployment's endpoint for ``wait_ready``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.diff import ObjectState
from reconciler.daemon import explain, object_progress
from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.object_progress import ObjectProgress
from reconciler.daemon.source_sync import SourceSync
from reconciler.daemon.status_view import StatusView
from reconciler.daemon.work_queue import WorkQueue
from reconciler.drivers.git_source import GitSource
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.registry import StepRegistry


class ReconcilerReads:
    """The read side of :class:`reconciler.daemon.reconcile.Reconciler`."""

    book: ObjectBook
    view: StatusView
    deps: DependencyIndex
    queue: WorkQueue
    _store: Store
    _executor: Executor
    _registry: StepRegistry
    _sync: SourceSync

    @property
    def source(self) -> GitSource:
        return self._sync.source

    @property
    def step_types(self) -> frozenset[str]:
        """The step types this daemon can run."""
        return frozenset(self._registry)

    @property
    def source_failures(self) -> int:
        """Fetches in a row that failed (the service polls less often meanwhile)."""
        return self._sync.source_failures

    @property
    def last_seen(self) -> str | None:
        return self._sync.last_seen

    def source_path(self, key: str) -> str | None:
        """The repo path of the file that holds object ``key`` in the last valid revision."""
        desired = self.book.desired.get(key)
        return desired.path if desired is not None else None

    def desired_states(self) -> Mapping[str, ObjectState]:
        """The objects of the last revision that validated, by ``kind/name`` (read-only)."""
        return self.book.states()

    def endpoint_url(self, deployment: str) -> str | None:
        """A Deployment's endpoint URL once its status says Ready (wait_ready's source)."""
        status = self.view.status_of(f"Deployment/{deployment}") or {}
        url = status.get("endpoint_url")
        return url if status.get("phase") == "Ready" and isinstance(url, str) else None

    def status_of(self, key: str) -> Mapping[str, Any] | None:
        """What ``kind/name``'s status says now, computed from the store; None if unknown."""
        return self.view.status_of(key)

    def explain(self, key: str) -> dict[str, Any] | None:
        """Why ``kind/name`` is where it is (see reconciler.daemon.explain)."""
        return explain.explain(
            key, view=self.view, book=self.book, deps=self.deps, store=self._store
        )

    def progress_of(self, key: str) -> ObjectProgress:
        """Where ``kind/name`` stands now (what an API task waits on)."""
        return object_progress.progress_of(
            key, book=self.book, deps=self.deps, queue=self.queue, view=self.view
        )

    def unfinished(self) -> int:
        return len(self._executor.running_ids())

    def counts(self) -> dict[str, int]:
        phases: dict[str, int] = {}
        for memo in self.book.memos.values():
            phase = str((memo.status or {}).get("phase", "Pending"))
            phases[phase] = phases.get(phase, 0) + 1
        return phases
