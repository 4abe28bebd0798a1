"""Status to Git in coalesced commits: at most one per window for everything that moved.

Objects whose status may have moved are marked; a background task publishes them, when
the pacing (reconciler.daemon.status_pacing) lets the next commit go:

- state moves (a chain submitted or ended, a note set or cleared, an object gone) go
  in the next commit, all the objects that moved in its window together;
- progress inside a running chain (a step started or ended) goes no sooner than
  ``progress_s`` after the object's last commit, never riding along with other objects'
  commits, so a run of a few seconds makes two commits: started and finished;
- objects moved by the backlog (the start's, a resync's) go in slices of
  ``backlog_batch`` after everything else that moved, in backlog-only commits of their
  own: a push's own status goes in the next window, never behind thousands of files.

The commit message names each object and its phase once. A remote that is away keeps
the batch for the next commit; a status branch that lost our commits is rebuilt whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from reconciler.core import status as core_status
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.status_pacing import BACKLOG_HOLD_S, CommitPacing
from reconciler.daemon.status_view import StatusView
from reconciler.drivers.git_source import GitSourceError
from reconciler.drivers.git_status import StatusBranchLost, StatusPublisher
from reconciler.specs.registry import kind_plural

log = logging.getLogger("reconciler.daemon")

MAX_BATCH = 2000
BACKLOG_BATCH = 100
COLLECT_SLICE = 50
SOURCE_FILE = "source.yaml"


def status_file(key: str) -> str:
    kind, name = key.split("/", 1)
    return f"{kind_plural(kind)}/{name}.yaml"


class StatusCoalescer:
    """Marks, then publishes in coalesced commits; see the module docstring."""

    def __init__(
        self,
        *,
        book: ObjectBook,
        view: StatusView,
        publisher: StatusPublisher | None,
        source_document: Callable[[str], dict[str, Any]],
        saved_source: dict[str, Any] | None,
        revision: Callable[[], str | None],
        now: Callable[[], str],
        pacing: CommitPacing | None = None,
        max_batch: int = MAX_BATCH,
        backlog_batch: int = BACKLOG_BATCH,
    ) -> None:
        self._book = book
        self._view = view
        self._publisher = publisher
        self._source_document = source_document
        self._revision = revision
        self._now = now
        self.pacing = pacing or CommitPacing()
        self._max_batch = max_batch
        self._backlog_batch = backlog_batch
        self._moved: dict[str, None] = {}
        self._backlog: dict[str, None] = {}
        self._progressed: dict[str, None] = {}
        self._published_keys: dict[str, tuple[str, dict[str, Any]]] = {}
        """The object and document of each pending status file (its memo says unpublished
        until the commit that carries it is pushed)."""
        self._pending: dict[str, bytes | None] = {}
        self._pending_names: dict[str, str] = {}
        self._published_source = saved_source
        self._lock = asyncio.Lock()
        self._published_at: dict[str, float] = {}
        """When each object's status was last collected into a commit (its progress is
        due ``progress_s`` after that)."""
        self.commits = 0
        """Status commits made (tests and benchmarks count them)."""
        self.publishes: Callable[[str], bool] = lambda _key: True
        """Whether this daemon writes ``key``'s status file (a sharded replica writes only
        its own shards' files, so replicas never overwrite each other's)."""
        self.publishes_source: Callable[[], bool] = lambda: True
        self.listeners: list[Callable[[str], None]] = []
        """Called with each key marked (a sharded replica's handover notes what moved)."""

    # -- marking --------------------------------------------------------------------------

    def mark(self, key: str, *, backlog: bool = False) -> None:
        """``key``'s status may have moved: publish within the window (``backlog``: after
        what else moved, in slices)."""
        for listener in self.listeners:
            listener(key)
        if backlog and key not in self._moved:
            self._backlog[key] = None
        else:
            if not self._moved:
                self.pacing.first_moved()
            self._moved[key] = None
            self._backlog.pop(key, None)
            self._refresh(key)
        self._progressed.pop(key, None)
        self.pacing.due.set()

    def _refresh(self, key: str) -> None:
        """Bring the status the store keeps for ``key`` up to date now, so every API read
        (an object, a list, a task, /metrics) agrees with what the daemon knows; Git gets
        it with the next commit. Backlog and step progress are left to the commit."""
        if not self.publishes(key):
            return
        document = self._view.document(key, now=self._now())
        if document is None:
            return
        memo = self._book.memo(key)
        if document == memo.status:
            return
        memo.status = document
        memo.status_unpublished = True
        self._book.save(memo)

    def mark_progress(self, key: str) -> None:
        """A step of ``key``'s running chain moved: publish with the next commit, or
        within ``progress_s``."""
        for listener in self.listeners:
            listener(key)
        if key not in self._moved and key not in self._backlog:
            self._progressed[key] = None
            self.pacing.due.set()

    def mark_source(self) -> None:
        self.pacing.due.set()

    def hold_backlog(self, seconds: float = BACKLOG_HOLD_S) -> None:
        """A change of the source is being taken in: start no backlog-only commit for up
        to ``seconds``, or until the change's own status is committed."""
        self.pacing.hold_backlog(seconds)

    def release_backlog(self) -> None:
        """The change needs no commit of its own (nothing moved): the backlog goes on."""
        self.pacing.release_backlog()

    def chain_submitted(self, execution_id: str) -> None:
        self.pacing.chain_submitted(execution_id)

    def chain_ended(self, execution_id: str) -> None:
        self.pacing.chain_ended(execution_id)

    def dirty(self) -> bool:
        return bool(self._moved or self._backlog or self._progressed or self._pending)

    # -- the task -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish as objects move, until ``stop`` (paced by ``self.pacing``)."""
        await self.pacing.drive(stop, delay=self._delay, flush=self.flush, dirty=self.dirty)

    def _progress_due_at(self) -> float | None:
        """When the first object whose only news is progress may be published."""
        return min(
            (self._published_at.get(key, 0.0) + self.pacing.progress_s for key in self._progressed),
            default=None,
        )

    def idle(self) -> bool:
        """Nothing to publish, and the publisher not woken: it waits for the next mark."""
        return not self.pacing.due.is_set() and not self.dirty()

    def _delay(self) -> float:
        """Seconds until the next commit may go (see reconciler.daemon.status_pacing)."""
        return self.pacing.delay(
            moved=bool(self._moved),
            pending=bool(self._pending),
            backlog=bool(self._backlog),
            progress_due_at=self._progress_due_at(),
        )

    # -- publishing -----------------------------------------------------------------------

    async def flush(self, *, verify: bool = False, everything: bool = False) -> str | None:
        """Publish what moved (up to one batch) as one commit; with ``verify`` check the
        status branch even when nothing moved (a branch that lost our commits gets every
        status file again); with ``everything`` the backlog goes in it too, unpaced (the
        daemon stops)."""
        async with self._lock:
            began = time.perf_counter()
            await self._collect(everything=everything)
            collected = time.perf_counter()
            if self._publisher is None:
                self._pending.clear()
                self._pending_names.clear()
                return None
            if not self._pending and not verify:
                return None
            batch = dict(self._pending)
            names = dict(self._pending_names)
            summary, body = core_status.commit_message(
                names, revision=str(self._revision() or "")[:12], source_file=SOURCE_FILE
            )
            self.pacing.commit_started()
            try:
                try:
                    commit = await asyncio.to_thread(
                        self._publisher.publish, batch, summary=summary, body=body
                    )
                except StatusBranchLost as lost:
                    log.warning("status branch lost; rebuilding it", extra={"error": str(lost)})
                    batch = {**self._all_files(), **batch}
                    commit = await asyncio.to_thread(
                        self._publisher.publish,
                        batch,
                        summary=f"status: rebuilt, {len(batch)} files",
                        rebuild=True,
                        body=body,
                    )
            except GitSourceError as exc:
                log.warning("status not pushed; kept for the next one", extra={"error": str(exc)})
                return None
            for path, data in batch.items():
                if self._pending.get(path, b"\0missing") == data:
                    del self._pending[path]
                    self._pending_names.pop(path, None)
                    self._written(self._published_keys.pop(path, None))
            if commit is not None:
                self.commits += 1
            log.debug(
                "status published",
                extra={
                    "commit": commit,
                    "files": len(batch),
                    "collect_ms": round((collected - began) * 1000, 1),
                    "publish_ms": round((time.perf_counter() - collected) * 1000, 1),
                },
            )
            return commit

    async def _collect(self, *, everything: bool = False) -> None:
        """Status documents of what moved (one batch of it) into the pending files; the
        loop gets a turn every ``COLLECT_SLICE`` objects (a push is not held up)."""
        now = self._now()
        room = max(self._max_batch - len(self._pending), 0)
        keys = list(self._moved)[:room]
        if keys:
            self.pacing.moved_collected()  # what a push moved goes now: the backlog follows
        moment = time.monotonic()
        due = [
            key
            for key in self._progressed
            if everything or moment >= self._published_at.get(key, 0.0) + self.pacing.progress_s
        ]
        keys += due[: max(room - len(keys), 0)]
        if everything:
            keys += list(self._backlog)[: room - len(keys)]
        elif not keys:  # a commit of what a push moved stays small: no backlog in it
            keys = list(self._backlog)[: min(room, self._backlog_batch)]
        for done, key in enumerate(keys):
            if done and done % COLLECT_SLICE == 0:
                await asyncio.sleep(0)
            self._published_at[key] = moment
            self._moved.pop(key, None)
            self._backlog.pop(key, None)
            self._progressed.pop(key, None)
            if not self.publishes(key):
                continue
            path = status_file(key)
            if not self._view.known(key):
                self._published_keys.pop(path, None)
                self._published_at.pop(key, None)
                self._pending[path] = None
                self._pending_names[path] = f"{key}: removed"
                continue
            memo = self._book.memo(key)
            document = self._view.document(key, now=now)
            if document is not None and (document != memo.status or memo.status_unpublished):
                if document != memo.status:
                    memo.status = document
                    memo.status_unpublished = True
                    self._book.save(memo)
                self._pending[path] = core_status.dump_status(document)
                self._pending_names[path] = f"{key}: {document['phase']}"
                self._published_keys[path] = (key, document)
        source = self._source_document(now)
        if source != self._published_source and self.publishes_source():
            self._pending[SOURCE_FILE] = core_status.dump_status(source)
            self._pending_names[SOURCE_FILE] = f"source: {source.get('phase')}"
            self._published_source = source

    def _written(self, pending: tuple[str, dict[str, Any]] | None) -> None:
        """A status file is on the branch: its object's memo is published, unless the
        status moved again meanwhile (then the next commit carries that)."""
        if pending is None or pending[0] not in self._book.memos:
            return
        memo = self._book.memo(pending[0])
        if memo.status_unpublished and memo.status == pending[1]:
            memo.status_unpublished = False
            self._book.save(memo)

    def _all_files(self) -> dict[str, bytes | None]:
        """Every object's last status document and the source's, as files to publish."""
        files: dict[str, bytes | None] = {
            status_file(key): core_status.dump_status(memo.status)
            for key, memo in self._book.memos.items()
            if memo.status and self.publishes(key)
        }
        if self._published_source is not None and self.publishes_source():
            files[SOURCE_FILE] = core_status.dump_status(self._published_source)
        return files

    @property
    def published_source(self) -> dict[str, Any] | None:
        return self._published_source

    async def between_commits(self) -> None:
        """Return once no status commit is being collected or pushed."""
        async with self._lock:
            pass

    async def wait_quiet(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until nothing is left to publish."""
        deadline = time.monotonic() + timeout_s
        while self.dirty() and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                await self.flush(everything=True)
            if self.dirty():
                await asyncio.sleep(min(self.pacing.window_s, max(deadline - time.monotonic(), 0)))
