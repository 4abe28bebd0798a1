"""The watched branch: fetch it, load what changed, and say which objects to look at.

A sync fetches the branch and, when its head moved (or on resync), loads that revision
through the snapshot loader (only changed blobs are parsed again). A revision that does
not validate stalls the source (status/source.yaml lists its diagnostics) and the objects
keep running as last applied. A valid one replaces the desired objects in the book; the
sync returns the keys whose spec was added, changed or removed, and the keys that refer
to them (a Deployment whose Model or template changed, an object whose reference came
or went): those are enqueued, nothing else, so a sync costs what the change is, not
what the repo holds.

The revisions applied are tracked here too: a revision is applied once every object it
changed has settled for it (its chain ended, or it needed none, or it waits on another
object); ``last_applied_revision`` is the newest such revision. Objects follow their own
revisions; this is the source's summary, not a gate for anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from reconciler.core import status as core_status
from reconciler.daemon import object_status
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.snapshot import Snapshot, SnapshotLoader
from reconciler.drivers.git_source import GitSource, GitSourceError
from reconciler.engine.store import Store

log = logging.getLogger("reconciler.daemon")

LAST_SEEN = "source.last_seen_revision"
LAST_APPLIED = "source.last_applied_revision"
PLANNED = "source.planned_revision"
SOURCE_STATUS = "source.status"
MAX_LISTED_DIAGNOSTICS = 200
MAX_LOGGED_DIAGNOSTICS = 20


@dataclasses.dataclass(frozen=True)
class CycleReport:
    """What one sync of the source did, for logs, sd_notify STATUS= and benchmarks."""

    revision: str | None
    loaded: bool
    valid: bool
    submitted: int
    changes: int
    files_parsed: int
    plan_started_at: float | None
    source_error: str | None
    planned: int = 0
    """Objects enqueued because this revision changed them or what they refer to."""


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A revision that validated: the keys it changed, and those referring to them."""

    revision: str
    changed: frozenset[str]
    touched: frozenset[str]
    first: bool


class RevisionTracker:
    """Which objects each loaded revision still waits for; the newest fully applied."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._open: list[tuple[str, set[str]]] = []

    def open(self, revision: str, keys: Iterable[str]) -> None:
        self._open.append((revision, set(keys)))
        self._advance()

    def settle(self, key: str) -> None:
        """``key`` settled for every revision opened so far."""
        for _, waiting in self._open:
            waiting.discard(key)
        self._advance()

    def outstanding(self) -> int:
        return len(set().union(*(waiting for _, waiting in self._open))) if self._open else 0

    def _advance(self) -> None:
        applied = None
        while self._open and not self._open[0][1]:
            applied = self._open.pop(0)[0]
        if applied is not None:
            self._store.set_value(LAST_APPLIED, applied)


class SourceSync:
    """The source side of the daemon; see the module docstring."""

    def __init__(
        self,
        *,
        source: GitSource,
        loader: SnapshotLoader,
        store: Store,
        book: ObjectBook,
        same_branch_status: bool = False,
        status_prefix: str = "status/",
    ) -> None:
        self._source = source
        self._loader = loader
        self._store = store
        self._book = book
        self._same_branch = same_branch_status
        self._status_prefix = status_prefix
        self.tracker = RevisionTracker(store)
        self.source_error: str | None = None
        self.source_failures = 0
        """Fetches in a row that failed (the service polls less often meanwhile)."""
        self.stalled = False
        self._stalled_revision: str | None = None
        self.diagnostics: list[str] = []
        self.loaded_once = False
        self.not_loading = asyncio.Event()
        """Clear while a revision is being loaded: the reconcile workers wait for it, so
        the load (CPU in a thread) is not slowed down by backlog work holding the GIL."""
        self.not_loading.set()

    @property
    def source(self) -> GitSource:
        return self._source

    @property
    def last_seen(self) -> str | None:
        value = self._store.get_value(LAST_SEEN)
        return value if isinstance(value, str) else None

    @property
    def planned(self) -> str | None:
        """The newest revision that validated and was taken in."""
        value = self._store.get_value(PLANNED)
        return value if isinstance(value, str) else None

    async def sync(self, *, resync: bool = False) -> tuple[CycleReport, Loaded | None]:
        """Fetch and, when the head moved (or on resync, or at the first sync), load."""
        began = time.perf_counter()
        head, error = await self._fetch()
        fetched = time.perf_counter()
        self.source_error = error
        report = CycleReport(head, False, not self.stalled, 0, 0, 0, None, error)
        if head is None:
            return report, None
        previous = self.last_seen
        if (
            self._same_branch
            and previous is not None
            and head != previous
            and await asyncio.to_thread(
                self._source.is_status_only_change, previous, head, prefix=self._status_prefix
            )
        ):
            head = previous  # our own status commit: nothing to react to
        if self.loaded_once and head == previous and head == self.planned and not resync:
            return report, None
        self.not_loading.clear()
        try:
            snapshot = await asyncio.to_thread(self._loader.load, head)
        finally:
            self.not_loading.set()
        loaded_at = time.perf_counter()
        self._store.set_value(LAST_SEEN, head)
        if not snapshot.ok:
            self._stall(snapshot)
            return dataclasses.replace(
                report, loaded=True, valid=False, files_parsed=snapshot.parsed
            ), None
        self.stalled = False
        self.diagnostics = [d.format() for d in snapshot.result.diagnostics][
            :MAX_LISTED_DIAGNOSTICS
        ]
        first = not self.loaded_once
        changed = self._book.replace_desired(snapshot.result.objects)
        if first:
            changed |= set(self._book.memos)  # what was applied and left Git while we were down
        touched = set(changed)
        for key in changed:
            touched.update(self._book.referrers(key))
            touched.update(self._book.applied_referrers(key))
        self.loaded_once = True
        self._store.set_value(PLANNED, head)
        self.tracker.open(head, touched)
        done = time.perf_counter()
        report = CycleReport(
            revision=head,
            loaded=True,
            valid=True,
            submitted=0,
            changes=len(changed),
            files_parsed=snapshot.parsed,
            plan_started_at=loaded_at,
            source_error=error,
            planned=len(touched),
        )
        log.info(
            "revision loaded",
            extra={
                "revision": head,
                "changes": len(changed),
                "enqueued": len(touched),
                "files_parsed": snapshot.parsed,
                "fetch_ms": round((fetched - began) * 1000, 1),
                "load_ms": round((loaded_at - fetched) * 1000, 1),
                "diff_ms": round((done - loaded_at) * 1000, 1),
            },
        )
        return report, Loaded(head, frozenset(changed), frozenset(touched), first)

    async def _fetch(self) -> tuple[str | None, str | None]:
        """The branch head, fetched; on failure the last fetched head and the error.

        A source that goes away is said once per distinct error (and once when it is
        back), not on every poll; status/source.yaml carries it meanwhile.
        """
        try:
            head = await asyncio.to_thread(self._source.sync)
        except GitSourceError as exc:
            self.source_failures += 1
            if str(exc) != self.source_error:
                log.warning("source unavailable", extra={"error": str(exc)})
            last = await asyncio.to_thread(self._source.local_head)
            return last, str(exc)
        self.source_failures = 0
        if self.source_error is not None:
            log.info("source reachable again", extra={"revision": head})
        return head, None

    def _stall(self, snapshot: Snapshot) -> None:
        already = self.stalled and self._stalled_revision == snapshot.revision
        self.stalled, self._stalled_revision = True, snapshot.revision
        self.diagnostics = [d.format() for d in snapshot.result.diagnostics][
            :MAX_LISTED_DIAGNOSTICS
        ]
        if already:
            return  # said once per revision, not once per poll
        log.error(
            "revision does not validate; keeping the last applied state",
            extra={"revision": snapshot.revision, "errors": len(snapshot.errors)},
        )
        errors = [d.format() for d in snapshot.errors]
        for line in errors[:MAX_LOGGED_DIAGNOSTICS]:
            log.error("invalid spec: %s", line, extra={"revision": snapshot.revision})
        if len(errors) > MAX_LOGGED_DIAGNOSTICS:
            log.error(
                "invalid spec: ... and %d more (all in status/source.yaml)",
                len(errors) - MAX_LOGGED_DIAGNOSTICS,
                extra={"revision": snapshot.revision},
            )

    def document(self, now: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        """status/source.yaml: the branch's last seen and applied revisions, and why it is
        not applied when it is not."""
        last_seen = self.last_seen
        planned = self.planned
        applied = self._store.get_value(LAST_APPLIED)
        last_applied = applied if isinstance(applied, str) else None
        verdict = object_status.source_verdict(
            stalled=self.stalled,
            source_error=self.source_error,
            last_seen=last_seen,
            planned=planned,
            last_applied=last_applied,
        )
        document = core_status.build_status(
            kind="Source",
            name=self._source.branch,
            verdict=verdict,
            observed_revision=last_seen,
            previous=previous or {},
            now=now,
            fields={
                "url": self._source.display_url,
                "branch": self._source.branch,
                "last_seen_revision": last_seen,
                "last_applied_revision": last_applied,
                "objects": len(self._book.desired),
                "diagnostics": list(self.diagnostics),
            },
        )
        return document
