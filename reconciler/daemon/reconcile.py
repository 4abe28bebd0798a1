"""One reconcile cycle: fetch, load, diff, plan, submit, and the status that follows.

Level-triggered: every cycle compares all desired state with all applied state; a
trigger only says "look now". Git work runs in worker threads; the store and the executor
are used from the event loop only. Status is gathered per object as chains finish and
published in one commit per flush, kept and retried when the remote is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core import status as core_status
from reconciler.core.chain_builders import ChainRequest, build_chain
from reconciler.core.chains import Chain
from reconciler.core.diff import Change, ObjectState, diff_states, state_from
from reconciler.core.plan import Plan, PlanItem, PlanMemo, plan_changes
from reconciler.core.validation.objects import SpecObject
from reconciler.daemon import object_status
from reconciler.daemon.object_memo import ObjectMemo, load_memos, save_memo
from reconciler.daemon.snapshot import Snapshot, SnapshotLoader
from reconciler.daemon.workflow_lifecycle import WorkflowLifecycle
from reconciler.drivers.git_source import GitSource, GitSourceError
from reconciler.drivers.git_status import StatusBranchLost, StatusPublisher
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.specs.registry import kind_plural
from reconciler.steps.registry import StepRegistry

log = logging.getLogger("reconciler.daemon")

LAST_SEEN = "source.last_seen_revision"
LAST_APPLIED = "source.last_applied_revision"
PLANNED = "source.planned_revision"
SOURCE_STATUS = "source.status"
MAX_LISTED_DIAGNOSTICS = 200
MAX_LOGGED_DIAGNOSTICS = 20
MAX_LISTED_EXECUTIONS = 5


STATUS_GATHER_S = 0.05
"""How long a cycle's status commit waits for the chains the cycle started to end."""


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class CycleReport:
    """What one cycle did, for logs, sd_notify STATUS= and benchmarks."""

    revision: str | None
    loaded: bool
    valid: bool
    submitted: int
    changes: int
    files_parsed: int
    plan_started_at: float | None
    source_error: str | None
    planned: int = 0
    """Creates, updates and deletes planned this cycle (settled unrunnable ones are left
    out; unchanged objects are not counted)."""


class Reconciler:
    """The closed loop of docs/architecture.md for one state repo; the service drives it."""

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
        self._source = source
        self._loader = loader
        self._store = store
        self._executor = executor
        self._registry = registry
        self._publisher = publisher
        self._same_branch = same_branch_status
        self._status_prefix = status_prefix
        self._now = now
        self._memos: dict[str, ObjectMemo] = {}
        self._desired: dict[str, ObjectState] = {}
        self._paths: dict[str, str] = {}
        self._state_cache: dict[SpecObject, ObjectState] = {}
        self._notes: dict[str, core_status.Verdict] = {}
        self._submitted_states: dict[str, ObjectState] = {}
        self._dirty: set[str] = set()
        self._pending_files: dict[str, bytes | None] = {}
        saved_source = store.get_value(SOURCE_STATUS)
        self._published_source: dict[str, Any] | None = (
            saved_source if isinstance(saved_source, dict) else None
        )
        self._source_error: str | None = None
        self.source_failures = 0
        """Fetches in a row that failed (the service polls less often meanwhile)."""
        self._previous_hashes: dict[str, str] | None = None
        self._changed_keys: set[str] = set()
        self._plan_memo = PlanMemo()
        self._unrunnable: dict[str, tuple[str, str, frozenset[str]]] = {}
        """Objects whose change nothing can run yet: key -> (action, spec hash, fields)."""
        self._latest_records: dict[str, ExecutionRecord | None] = {}
        self._diagnostics: list[str] = []
        self._stalled = False
        self._stalled_revision: str | None = None
        self._replan = True
        self.wake: asyncio.Event = asyncio.Event()
        self.progress: asyncio.Event = asyncio.Event()
        """Set when a running execution moved (started, a step began or ended): flush."""
        self._publishing = asyncio.Lock()
        self._cycle_submitted: set[str] = set()
        self._cycle_chains_ended = asyncio.Event()
        self._gather_until = 0.0
        self.status_gather_s = STATUS_GATHER_S
        """How long a cycle's status waits for the chains it submitted (see
        :meth:`chains_of_cycle_ended`)."""
        self.last_report: CycleReport | None = None
        self.workflow_hooks: WorkflowLifecycle | None = None
        """Schedules, notifications, undo and provisioning status (the service sets it)."""
        self._memos = load_memos(store)
        self._dirty.update(self._memos)

    # -- persistence ----------------------------------------------------------------------

    def _save(self, memo: ObjectMemo) -> None:
        save_memo(self._store, memo)

    def _memo(self, key: str) -> ObjectMemo:
        memo = self._memos.get(key)
        if memo is None:
            kind, name = key.split("/", 1)
            memo = self._memos[key] = ObjectMemo(kind=kind, name=name)
        return memo

    # -- the cycle --------------------------------------------------------------------------

    @property
    def source(self) -> GitSource:
        return self._source

    @property
    def step_types(self) -> frozenset[str]:
        """The step types this daemon can run."""
        return frozenset(self._registry)

    def desired_states(self) -> Mapping[str, ObjectState]:
        """The objects of the last revision that validated, by ``kind/name`` (read-only)."""
        return types.MappingProxyType(self._desired)

    @property
    def last_seen(self) -> str | None:
        value = self._store.get_value(LAST_SEEN)
        return value if isinstance(value, str) else None

    async def cycle(self, *, resync: bool = False) -> CycleReport:
        """Fetch, and when there is something new (or on resync) load, plan and submit."""
        began = time.perf_counter()
        head, source_error = await self._fetch()
        fetched = time.perf_counter()
        self._source_error = source_error
        report = CycleReport(head, False, not self._stalled, 0, 0, 0, None, source_error)
        if head is None:
            self.last_report = report
            return report
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
        planned = self._store.get_value(PLANNED)
        if head == previous and head == planned and not resync and not self._replan:
            self.last_report = report
            return report
        snapshot = await asyncio.to_thread(self._loader.load, head)
        loaded = time.perf_counter()
        self._store.set_value(LAST_SEEN, head)
        if not snapshot.ok:
            self._stall(snapshot)
            report = dataclasses.replace(
                report, loaded=True, valid=False, files_parsed=snapshot.parsed
            )
            self.last_report = report
            return report
        self._stalled = False
        self._diagnostics = [d.format() for d in snapshot.result.diagnostics][
            :MAX_LISTED_DIAGNOSTICS
        ]
        self._desired = self._states(snapshot)
        self._drop_unapplied_leftovers()
        current = {
            key: state
            for key, memo in self._memos.items()
            if (state := memo.applied_state) is not None
        }
        changes = diff_states(self._desired, current)
        changed_in_git = self._changed_in_git()
        if resync:
            self._unrunnable.clear()  # a resync plans everything afresh
        else:
            changes = [c for c in changes if not self._still_unrunnable(c, changed_in_git)]
        plan_started = time.perf_counter()
        plan = plan_changes(
            changes, desired=self._desired, current=current, revision=head, memo=self._plan_memo
        )
        self._replan = False
        applying = time.perf_counter()
        submitted = self._apply_plan(plan, head, resync=resync)
        if self._cycle_submitted:
            self._cycle_chains_ended.clear()
            self._gather_until = time.monotonic() + self.status_gather_s
        planned = time.perf_counter()
        self._store.set_value(PLANNED, head)
        report = CycleReport(
            revision=head,
            loaded=True,
            valid=True,
            submitted=submitted,
            changes=self._count_changed(),
            files_parsed=snapshot.parsed,
            plan_started_at=plan_started,
            source_error=source_error,
            planned=sum(1 for change in changes if change.action != "unchanged"),
        )
        self.last_report = report
        log.info(
            "cycle planned",
            extra={
                "revision": head,
                "changes": report.changes,
                "submitted": submitted,
                "planned": report.planned,
                "files_parsed": snapshot.parsed,
                "fetch_ms": round((fetched - began) * 1000, 1),
                "load_ms": round((loaded - fetched) * 1000, 1),
                "plan_ms": round((planned - loaded) * 1000, 1),
                "diff_ms": round((plan_started - loaded) * 1000, 1),
                "submit_ms": round((planned - applying) * 1000, 1),
            },
        )
        return report

    def _changed_in_git(self) -> set[str]:
        """Keys added, changed or removed in Git since the previous cycle's revision (not
        the ones still differing from what is applied: those are in the plan)."""
        hashes = {key: state.spec_hash for key, state in self._desired.items()}
        previous, self._previous_hashes = self._previous_hashes, hashes
        if previous is None:
            self._changed_keys = set(hashes)
        else:
            self._changed_keys = {k for k, v in hashes.items() if previous.get(k) != v}
            self._changed_keys.update(k for k in previous if k not in hashes)
        return self._changed_keys

    def _count_changed(self) -> int:
        return len(self._changed_keys)

    def _still_unrunnable(self, change: Change, changed_in_git: set[str]) -> bool:
        """Whether ``change`` is one the last plan found nothing can run (a step type with
        no implementation) and nothing it depends on moved since: planning it again would
        give the same chain, the same NoChainYet note and no submit. Thousands of such
        objects (a build without some step types) cost most of a cycle's plan otherwise.
        A chain depends only on its own spec and change, so the key, action, spec hash
        and changed fields decide; what the object refers to changing (a Model under a
        Deployment) plans it again."""
        known = self._unrunnable.get(change.key)
        if known is None or change.action not in ("create", "update"):
            return False
        state = self._desired.get(change.key)
        if state is None or known != (change.action, state.spec_hash, change.field_paths):
            return False
        references = self._plan_memo.references(state)
        return not any(ref in changed_in_git for ref in references)

    async def _fetch(self) -> tuple[str | None, str | None]:
        """The branch head, fetched; on failure the last fetched head and the error.

        A source that goes away is said once per distinct error (and once when it is back),
        not on every poll; status/source.yaml carries it meanwhile.
        """
        try:
            head = await asyncio.to_thread(self._source.sync)
        except GitSourceError as exc:
            self.source_failures += 1
            if str(exc) != self._source_error:
                log.warning("source unavailable", extra={"error": str(exc)})
            last = await asyncio.to_thread(self._source.local_head)
            return last, str(exc)
        self.source_failures = 0
        if self._source_error is not None:
            log.info("source reachable again", extra={"revision": head})
        return head, None

    def _stall(self, snapshot: Snapshot) -> None:
        already = self._stalled and self._stalled_revision == snapshot.revision
        self._stalled, self._stalled_revision = True, snapshot.revision
        self._diagnostics = [d.format() for d in snapshot.result.diagnostics][
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

    def _states(self, snapshot: Snapshot) -> dict[str, ObjectState]:
        cache: dict[SpecObject, ObjectState] = {}
        states: dict[str, ObjectState] = {}
        paths: dict[str, str] = {}
        for obj in snapshot.result.objects:
            state = self._state_cache.get(obj) or state_from(obj)
            cache[obj] = state
            states.setdefault(state.key, state)
            paths.setdefault(state.key, obj.path)
        self._state_cache = cache
        self._paths = paths
        return states

    def source_path(self, key: str) -> str | None:
        """The repo path of the file that holds object ``key`` in the last valid revision."""
        return self._paths.get(key)

    # -- plan to executions -----------------------------------------------------------------

    def _apply_plan(self, plan: Plan, revision: str, *, resync: bool) -> int:
        self._cycle_submitted.clear()
        submitted = 0
        deferred: set[str] = set()
        for item in plan.items:
            key = item.key
            if item.change.action == "unchanged" and item.chain is None:
                if resync and self._reapply_on_resync(key, revision):
                    submitted += 1
                    continue
                if key in self._notes and self._notes[key].reason != "NoChainYet":
                    self._notes.pop(key)
                    self._dirty.add(key)
                continue
            # Status is rewritten only for what this cycle changes: a new note, a chain
            # submitted, a spec recorded; an object still waiting for the same reason
            # (or whose chain already ran for this spec) keeps its file as it is.
            if item.status == "suspended":
                self._set_note(key, object_status.suspended())
                continue
            if item.status in ("blocked", "kept"):
                self._set_note(key, object_status.retained("; ".join(item.notes)))
                continue
            chain = item.chain
            if chain is None:
                self._set_note(key, None)
                self._dirty.add(key)
                self._settle_without_chain(item, revision)
                continue
            if self.workflow_hooks is not None:
                chain = self.workflow_hooks.expand(chain)
            missing = self._registry.missing(chain.step_types())
            if missing:
                self._set_note(key, core_status.no_chain_yet(item.change.kind, missing))
                self._observe_unrunnable(key, revision)
                if item.reason is None:
                    change = item.change
                    self._unrunnable[key] = (change.action, chain.spec_hash, change.field_paths)
                continue
            self._unrunnable.pop(key, None)
            waiting = [k for k in item.waits_for if k in deferred or self._running(k)]
            if waiting:
                deferred.add(key)
                self._set_note(key, object_status.pending(f"waiting for {', '.join(waiting)}"))
                self._replan = True
                continue
            self._set_note(key, None)
            if self._should_submit(chain, resync=resync):
                self._dirty.add(key)
                state = self._desired.get(key) or self._current_state(key)
                execution_id = self._executor.submit(chain)
                self._cycle_submitted.add(execution_id)
                self._latest_records.pop(key, None)
                if state is not None:
                    self._submitted_states[execution_id] = state
                submitted += 1
                if self._running(key):
                    deferred.add(key)
        return submitted

    def _set_note(self, key: str, note: core_status.Verdict | None) -> None:
        """Replace ``key``'s note (None: no note); its status is due only if it differs."""
        if self._notes.get(key) == note:
            return
        if note is None:
            self._notes.pop(key, None)
        else:
            self._notes[key] = note
        self._dirty.add(key)

    def _observed_outside(self, state: ObjectState) -> bool:
        """Whether ``state`` stands for something outside Git that can drift: a Deployment
        on a kubernetes Cluster (live objects), a Model read from disk or from a Hugging
        Face branch (files that change under the same spec)."""
        if state.kind == "Deployment":
            cluster = self._desired.get(f"Cluster/{state.spec.get('cluster')}")
            return cluster is not None and cluster.spec.get("driver") == "kubernetes"
        if state.kind == "Model":
            source = state.spec.get("source")
            source = source if isinstance(source, Mapping) else {}
            kind = source.get("provider_type")
            revision = str(source.get("revision") or "main")
            pinned = len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
            return kind == "disk" or (kind == "hugging_face" and not pinned)
        return False

    def _reapply_on_resync(self, key: str, revision: str) -> bool:
        """What can drift outside Git is applied again on each resync: a Deployment on a
        kubernetes Cluster (its step compares the live objects with what it applied,
        re-applies and reports drift), a disk Model (its files hashed again: a change on
        disk shows in its status), a Model on a Hugging Face branch (re-resolved to the
        branch's current commit)."""
        state = self._desired.get(key)
        if state is None or state.suspended or not self._observed_outside(state):
            return False
        latest = self._latest(key)
        if latest is None or latest.status != "succeeded" or latest.spec_hash != state.spec_hash:
            return False
        chain = build_chain(ChainRequest("update", state, revision)).chain
        if chain is None:
            return False
        execution_id = self._executor.submit(chain)
        self._submitted_states[execution_id] = state
        self._cycle_submitted.add(execution_id)
        self._latest_records.pop(key, None)
        self._dirty.add(key)
        return True

    def _observe_unrunnable(self, key: str, revision: str) -> None:
        """A change nothing can run yet is observed once per spec, not once per push,
        so its status file moves only when its own spec does."""
        memo = self._memo(key)
        state = self._desired.get(key)
        if state is not None and memo.seen_hash != state.spec_hash:
            memo.seen_hash = state.spec_hash
            memo.observed_revision = revision
            self._dirty.add(key)

    def _drop_unapplied_leftovers(self) -> None:
        """Objects that left Git before anything was applied have nothing to delete."""
        for key, memo in list(self._memos.items()):
            if memo.applied is None and key not in self._desired and not self._running(key):
                self._forget(key)

    def _current_state(self, key: str) -> ObjectState | None:
        memo = self._memos.get(key)
        return memo.applied_state if memo else None

    def _settle_without_chain(self, item: PlanItem, revision: str) -> None:
        """A change with nothing to run: record it as applied (or gone) right away."""
        key = item.key
        if item.change.action == "delete":
            self._forget(key)
            return
        state = self._desired[key]
        memo = self._memo(key)
        memo.record_applied(state, revision)
        memo.observed_revision = revision
        self._save(memo)

    def _latest(self, key: str) -> ExecutionRecord | None:
        """The newest execution of ``key``. Kept between cycles for objects that are not
        moving (most of 10,000): a submit, a progress report or an end forgets it."""
        if key in self._latest_records:
            return self._latest_records[key]
        kind, name = key.split("/", 1)
        found = self._store.list_executions(kind=kind, name=name, limit=1)
        record = self._latest_records[key] = found[0] if found else None
        return record

    def _running(self, key: str) -> bool:
        latest = self._latest(key)
        return latest is not None and not latest.finished

    def _should_submit(self, chain: Chain, *, resync: bool) -> bool:
        latest = self._latest(chain.object_key)
        if latest is None or latest.spec_hash != chain.spec_hash or latest.action != chain.action:
            return True
        if not latest.finished:
            return False  # the same chain is already queued or running
        if latest.status in ("failed", "stalled"):
            return resync and chain.action != "execute"
        if latest.status == "succeeded":
            # Finished before a crash let us record it: record it now, do not rerun.
            self._record_finished(latest)
            return False
        return True

    # -- executions finishing ---------------------------------------------------------------

    def on_execution_progress(self, key: str) -> None:
        """Executor callback: an execution of ``key`` started or one of its steps moved."""
        self._latest_records.pop(key, None)
        self._dirty.add(key)
        self.progress.set()
        if self.workflow_hooks is not None:
            self.workflow_hooks.on_progress(key)

    async def chains_of_cycle_ended(self) -> None:
        """Wait up to ``status_gather_s`` for the chains the last cycle submitted to end.

        The service publishes a cycle's status after this, so a chain that ends at once (a
        workflow of quick steps, a bookkeeping chain) makes one status commit with its
        outcome instead of one saying it runs and another, a moment later, that it ended.
        A longer chain's running state is published once the wait is over. Progress
        flushes in the meantime wait the same way.
        """
        self._cycle_submitted &= set(self._executor.running_ids())
        left = self._gather_until - time.monotonic()
        if not self._cycle_submitted or left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cycle_chains_ended.wait(), left)

    def on_execution_finished(self, record: ExecutionRecord) -> None:
        """Executor callback: record what a chain did, mark its status for the next flush."""
        self._cycle_submitted.discard(record.id)
        if not self._cycle_submitted:
            self._cycle_chains_ended.set()
        self._latest_records.pop(record.object_key, None)
        self._record_finished(record)
        if self.workflow_hooks is not None:
            self.workflow_hooks.on_finished(record)
        if record.action == "execute":
            # Nothing waits for a workflow run: its status is due, no new plan.
            self.progress.set()
            return
        self._replan = True
        self.wake.set()

    def _record_finished(self, record: ExecutionRecord) -> None:
        key = record.object_key
        state = self._submitted_states.pop(record.id, None)
        if state is None:
            candidate = self._desired.get(key)
            if candidate is not None and candidate.spec_hash == record.spec_hash:
                state = candidate
        self._dirty.add(key)
        if record.status in ("cancelled", "superseded"):
            return
        if record.action == "delete":
            if record.status == "succeeded":
                self._forget(key)
            return
        memo = self._memo(key)
        memo.observed_revision = record.revision
        applied = record.status == "succeeded" or record.action == "execute"
        if applied and state is not None:
            memo.record_applied(state, record.revision)
        self._save(memo)

    def _forget(self, key: str) -> None:
        memo = self._memos.pop(key, None)
        self._notes.pop(key, None)
        if memo is not None:
            self._store.delete_object(memo.kind, memo.name)
        self._pending_files[self._status_file(key)] = None
        self._dirty.discard(key)

    # -- status -----------------------------------------------------------------------------

    def _status_file(self, key: str) -> str:
        kind, name = key.split("/", 1)
        return f"{kind_plural(kind)}/{name}.yaml"

    def _verdict(self, key: str) -> tuple[core_status.Verdict, dict[str, Any]]:
        fields: dict[str, Any] = {}
        kind, name = key.split("/", 1)
        if kind == "Workflow":
            fields["last_executions"] = self._workflow_executions(kind, name)
            if self.workflow_hooks is not None:
                override = self.workflow_hooks.status(name, fields)
                if override is not None:
                    return override, fields
        note = self._notes.get(key)
        if note is not None:
            return note, fields
        latest = self._latest(key)
        if latest is not None:
            fields.update(self._step_status_fields(kind, name))
            running_step = None
            if not latest.finished:
                running = [
                    s.node_id for s in self._store.get_steps(latest.id) if s.status == "running"
                ]
                running_step = ", ".join(running) or None
            return object_status.verdict_for_execution(latest, running_step=running_step), fields
        memo = self._memos.get(key)
        if memo is not None and memo.applied is not None:
            return object_status.ready_unchanged(memo.applied_revision), fields
        return object_status.pending("not reconciled yet"), fields

    def _step_status_fields(self, kind: str, name: str) -> dict[str, Any]:
        """The ``status`` outputs of the newest execution whose steps gave any (a Model's
        files and scan, a Deployment's endpoint), merged in step order."""
        for record in self._store.list_executions(kind=kind, name=name, limit=3):
            if record.action == "execute":
                continue
            merged: dict[str, Any] = {}
            for step in self._store.get_steps(record.id):
                status = (step.outputs or {}).get("status")
                if step.status in ("done", "stalled") and isinstance(status, Mapping):
                    merged.update(status)
            if merged:
                return merged
        return {}

    def _workflow_executions(self, kind: str, name: str) -> list[dict[str, Any]]:
        records = self._store.list_executions(kind=kind, name=name, limit=MAX_LISTED_EXECUTIONS)
        return object_status.execution_summaries(
            records, steps={r.id: self._store.get_steps(r.id) for r in records}
        )

    def _collect_status(self) -> dict[str, bytes | None]:
        now = self._now()
        files: dict[str, bytes | None] = {}
        for key in sorted(self._dirty):
            if key not in self._desired and key not in self._memos:
                continue
            memo = self._memo(key)
            verdict, fields = self._verdict(key)
            document = core_status.build_status(
                kind=memo.kind,
                name=memo.name,
                verdict=verdict,
                observed_revision=memo.observed_revision,
                previous=memo.status,
                now=now,
                fields=fields,
            )
            if document != memo.status:
                memo.status = document
                self._save(memo)
                files[self._status_file(key)] = core_status.dump_status(document)
        self._dirty.clear()
        source = self._source_document(now)
        if source != self._published_source:
            files["source.yaml"] = core_status.dump_status(source)
            self._published_source = source
            self._store.set_value(SOURCE_STATUS, source)
        return files

    def unfinished(self) -> int:
        return len(self._executor.running_ids())

    def _source_document(self, now: str) -> dict[str, Any]:
        last_seen = self.last_seen
        planned = self._store.get_value(PLANNED)
        if planned and self.unfinished() == 0:
            # ``planned`` is the last revision that validated: a stalled one never is.
            self._store.set_value(LAST_APPLIED, planned)
        last_applied = self._store.get_value(LAST_APPLIED)
        verdict = object_status.source_verdict(
            stalled=self._stalled,
            source_error=self._source_error,
            last_seen=last_seen,
            planned=planned,
            last_applied=last_applied,
        )
        previous = self._published_source or {}
        document = core_status.build_status(
            kind="Source",
            name=self._source.branch,
            verdict=verdict,
            observed_revision=last_seen,
            previous=previous,
            now=now,
            fields={
                "url": self._source.display_url,
                "branch": self._source.branch,
                "last_seen_revision": last_seen,
                "last_applied_revision": last_applied,
                "objects": len(self._desired),
                "diagnostics": list(self._diagnostics),
            },
        )
        return document

    async def flush(self, *, verify: bool = False) -> str | None:
        """Publish every status that changed since the last flush, as one commit.

        With ``verify`` (start-up, resync) the status branch is checked even when nothing
        changed; a branch that lost our commits gets every status file again.
        """
        async with self._publishing:
            began = time.perf_counter()
            self._pending_files.update(self._collect_status())
            collected = time.perf_counter()
            if self._publisher is None:
                self._pending_files.clear()
                return None
            if not self._pending_files and not verify:
                return None
            batch = dict(self._pending_files)
            try:
                try:
                    commit = await asyncio.to_thread(
                        self._publisher.publish, batch, summary=self._summary(batch)
                    )
                except StatusBranchLost as lost:
                    log.warning("status branch lost; rebuilding it", extra={"error": str(lost)})
                    batch = {**self._all_status_files(), **batch}
                    commit = await asyncio.to_thread(
                        self._publisher.publish,
                        batch,
                        summary=f"rebuild {self._summary(batch)}",
                        rebuild=True,
                    )
            except GitSourceError as exc:
                log.warning(
                    "status not pushed; kept for the next flush", extra={"error": str(exc)}
                )
                return None
            for path, data in batch.items():
                if self._pending_files.get(path, b"\0missing") == data:
                    del self._pending_files[path]
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

    def _all_status_files(self) -> dict[str, bytes | None]:
        """Every object's last status document and the source's, as files to publish."""
        files: dict[str, bytes | None] = {
            self._status_file(key): core_status.dump_status(memo.status)
            for key, memo in self._memos.items()
            if memo.status
        }
        if self._published_source is not None:
            files["source.yaml"] = core_status.dump_status(self._published_source)
        return files

    def _summary(self, batch: Mapping[str, bytes | None]) -> str:
        revision = str(self.last_seen or "")[:12]
        return f"status: {len(batch)} file(s) at {revision}"

    def status_of(self, key: str) -> Mapping[str, Any] | None:
        """What ``kind/name``'s status says now (phase, reason, message and its fields),
        computed from the store rather than from the last flushed file; None if unknown."""
        if key not in self._desired and key not in self._memos:
            return None
        verdict, fields = self._verdict(key)
        return {
            **fields,
            "phase": verdict.phase,
            "reason": verdict.reason,
            "message": verdict.message,
        }

    def endpoint_url(self, deployment: str) -> str | None:
        """A Deployment's endpoint URL once its status says Ready (wait_ready's source)."""
        memo = self._memos.get(f"Deployment/{deployment}")
        status = (memo.status or {}) if memo else {}
        url = status.get("endpoint_url")
        return url if status.get("phase") == "Ready" and isinstance(url, str) else None

    def counts(self) -> dict[str, int]:
        phases: dict[str, int] = {}
        for memo in self._memos.values():
            phase = str((memo.status or {}).get("phase", "Pending"))
            phases[phase] = phases.get(phase, 0) + 1
        return phases
