"""What the API needs from the daemon, as one narrow Protocol.

The routes see objects (desired and as last recorded), executions from the store, and a
handful of actions (trigger, start or deprovision a workflow, cancel, plan a ref). The
daemon's adapter (:mod:`reconciler.api.daemon_view`) implements it over the running
service; tests and the benchmark can hand the app any other implementation that keeps
the same promises.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from reconciler.core.diff import ObjectState
from reconciler.core.plan import Plan
from reconciler.daemon.object_progress import ObjectProgress
from reconciler.engine.cancellation import CancelReport
from reconciler.engine.records import ExecutionId
from reconciler.engine.store import Store


@dataclasses.dataclass(frozen=True)
class Readiness:
    """``/readyz``: ready once the first load is done and the store takes writes."""

    loaded: bool
    store_writable: bool
    detail: str

    @property
    def ready(self) -> bool:
        return self.loaded and self.store_writable


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """The watched branch as the daemon last saw it."""

    url: str
    branch: str
    last_seen_revision: str | None
    last_applied_revision: str | None
    status: Mapping[str, Any] | None


@dataclasses.dataclass(frozen=True)
class PlannedRef:
    """The plan of a ref against the live applied state, or why it has none."""

    ref: str
    revision: str | None
    plan: Plan | None
    diagnostics: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ObjectOrigin:
    """Who added an object's file to the state repo, when, and in which commit."""

    author: str
    created_at: datetime.datetime
    commit: str


class ViewError(Exception):
    """An action the daemon refused; ``reason`` picks the HTTP status."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "not_found" | "conflict" | "invalid" | "unavailable"


class DaemonView(Protocol):
    """The daemon as the API sees it. Called from the daemon's event loop only."""

    @property
    def store(self) -> Store:
        """The state store: objects as recorded, executions, steps, API tasks."""
        ...

    def readiness(self) -> Readiness: ...

    def desired(self) -> Mapping[str, ObjectState]:
        """The objects of the last revision that validated, by ``kind/name``."""
        ...

    def source(self) -> SourceInfo: ...

    def implemented_step_types(self) -> frozenset[str]: ...

    async def author_of(self, revision: str) -> str | None:
        """The author's name of a commit of the state repo (None when unknown)."""
        ...

    async def origin_of(self, kind: str, name: str) -> ObjectOrigin | None:
        """The commit of the watched branch's history that first added the file holding
        object ``kind/name`` in the last valid revision (None when unknown)."""
        ...

    def notification_defaults(self) -> frozenset[str]:
        """The channels (``webhook``, ``slack``, ``email``) the daemon config's
        ``notifications.defaults`` names: where a Workflow's enabled notifications go
        when it names no channel of its own."""
        ...

    def trigger(self, *, reason: str, resync: bool = False, expect: Sequence[str] = ()) -> None:
        """Look at the source now (``resync``: every object again, failed chains rerun);
        ``expect``: the ``kind/name`` of objects an API write just committed, reconciled
        before any other work once their change arrives."""
        ...

    def start_workflow(
        self,
        *,
        name: str,
        params: Mapping[str, Any],
        requested_by: str,
        environment: str | None = None,
    ) -> ExecutionId:
        """Run Workflow ``name``'s provision graph now with ``params`` over its defaults.

        ``environment`` must be one the workflow lists; it is recorded with the run and
        given as the ``environment`` param when the workflow declares one.
        """
        ...

    def deprovision_workflow(self, *, name: str, requested_by: str) -> ExecutionId:
        """Deprovision Workflow ``name`` now while its spec stays in Git (trigger ``api``,
        chain action ``deprovision``): its ``deprovision`` graph, or else the undo of every
        finished step of the last provision, newest first. The Workflow is not forgotten;
        its provisioning state reads NOT_STARTED once this succeeds, FAILED if it fails,
        and no cycle provisions it again until its spec changes (or a schedule or start
        asks). A suspended Workflow may be deprovisioned (suspend stops automatic runs,
        not requests). ViewError ``not_found`` for no such Workflow, ``conflict`` while a
        run of it is queued or running or when nothing is provisioned."""
        ...

    def store_secret(self, *, name: str, value: str, replace: bool = False) -> None:
        """Put a value that came through the API into the daemon's secrets dir (0600),
        so only its name goes to Git; ViewError ``invalid`` for a bad name, ``conflict``
        for another value under that name (unless ``replace``), ``unavailable`` when no
        secrets dir can take it."""
        ...

    def forget_secrets(self, *, prefix: str, exact: bool = False) -> list[str]:
        """Delete from the secrets dir the values the API stored under names starting
        with ``prefix`` (named ``prefix``, with ``exact``): a deleted workflow's, an
        expired draft's; the names removed."""
        ...

    def object_status(self, key: str) -> Mapping[str, Any] | None:
        """What ``kind/name``'s status says now (phase, reason, message and its kind's
        fields), ahead of the next status commit; None when the object is unknown."""
        ...

    def resync_object(self, key: str) -> None:
        """Reconcile ``kind/name`` now, before other work, as a resync would (its failed
        chain runs again)."""
        ...

    def explain(self, key: str) -> Mapping[str, Any] | None:
        """Why ``kind/name`` is where it is: verdict, what to do, what it waits for, its
        last execution's steps (None when the daemon knows no such object)."""
        ...

    def object_progress(self, key: str) -> ObjectProgress:
        """Where object ``kind/name`` stands now (what an API task waits on)."""
        ...

    def cancel(self, execution_id: str) -> CancelReport:
        """Cancel an execution: its running steps are interrupted at their next await and
        undone where their type has an undo; the report says what happens (``accepted``
        is False when it had already finished)."""
        ...

    async def plan_for(self, ref: str | None) -> PlannedRef:
        """Plan ``ref`` (a branch, tag or commit of the state repo; None: the watched
        branch) against what is applied now."""
        ...
