"""Where one object stands now, for whoever waits on it: an API write's task.

A task completes when its own object does, whatever else the daemon is doing; this is
what it reads: the object's desired and applied spec hashes, whether it is queued or
running, what it waits for, why its last attempt at its current spec failed, its phase
and observed revision.
"""

from __future__ import annotations

import dataclasses

from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.status_view import StatusView
from reconciler.daemon.work_queue import WorkQueue


@dataclasses.dataclass(frozen=True)
class ObjectProgress:
    """Where one object stands, for whoever waits on it (an API task)."""

    key: str
    desired_hash: str | None
    """Its spec hash in the last valid revision (None: not in it)."""
    applied_hash: str | None
    busy: bool
    """Queued, being reconciled, or a chain of it is running."""
    waiting_for: tuple[str, ...]
    failed: str | None
    """Why the last attempt at its current spec did not succeed (None: it did not fail)."""
    phase: str | None
    observed_revision: str | None
    known: bool
    """The daemon still has a record of it (applied, or tried)."""
    suspended: bool = False
    """Frozen by ``spec.suspend: true``: nothing will run for it."""


def progress_of(
    key: str, *, book: ObjectBook, deps: DependencyIndex, queue: WorkQueue, view: StatusView
) -> ObjectProgress:
    """Where ``kind/name`` stands now."""
    desired = book.desired.get(key)
    memo = book.memos.get(key)
    attempt = book.attempt(key)
    busy = key in queue or key in queue.processing or (attempt is not None and not attempt.finished)
    failed = None
    if (
        attempt is not None
        and attempt.finished
        and attempt.status in ("failed", "stalled")
        and (desired is None or attempt.spec_hash == desired.state.spec_hash)
    ):
        failed = attempt.error or attempt.status
    note = book.notes.get(key)
    if note is not None and note.reason in ("PruneSkipped", "NoChainYet"):
        failed = note.message
    status = view.status_of(key) if (desired is not None or memo is not None) else None
    return ObjectProgress(
        key=key,
        desired_hash=desired.state.spec_hash if desired is not None else None,
        applied_hash=memo.applied_hash if memo is not None else None,
        busy=busy,
        waiting_for=tuple(sorted(deps.waiting_on(key))),
        failed=failed,
        phase=str(status.get("phase")) if status else None,
        observed_revision=memo.observed_revision if memo is not None else None,
        known=memo is not None,
        suspended=note is not None and note.reason == "Suspended",
    )
