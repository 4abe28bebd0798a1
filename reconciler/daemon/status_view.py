"""What one object's status says now, from the book and the store.

The verdict of an object comes, in order, from: a Workflow's schedule that cannot be
used; the note the reconcile left (parked, suspended, unrunnable, a refused prune); the
newest execution of this life of the object (running, done, failed, stalled, with the
step it runs, and a ``wait_ready`` step saying which Deployment it waits for); what was
applied; else "not reconciled yet". Kind-specific fields come from the steps' ``status``
outputs (a Model's files and scan, a Deployment's endpoint), a Workflow's recent runs,
and drift seen by a watch before its repair ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from reconciler.core import status as core_status
from reconciler.daemon import object_status
from reconciler.daemon.object_book import ObjectBook
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store

MAX_LISTED_EXECUTIONS = 5


class WorkflowStatusHooks(Protocol):
    def status(self, name: str, fields: dict[str, Any]) -> core_status.Verdict | None: ...


class StatusView:
    """Verdicts and status fields per ``kind/name``."""

    def __init__(
        self,
        *,
        book: ObjectBook,
        store: Store,
        hooks: Callable[[], WorkflowStatusHooks | None],
        now: Callable[[], str],
    ) -> None:
        self._book = book
        self._now = now
        self._store = store
        self._hooks = hooks
        self.drift: dict[str, list[dict[str, Any]]] = {}
        """Drift a watch reported, by key, until a chain of the object ends."""
        self.live: dict[str, dict[str, Any]] = {}
        """Fields a driver reported between chains (a local autoscaler's scale events), by
        key, over the step's until a chain of the object ends."""

    def known(self, key: str) -> bool:
        return key in self._book.desired or key in self._book.memos

    def verdict(self, key: str) -> tuple[core_status.Verdict, dict[str, Any]]:
        fields: dict[str, Any] = {}
        kind, name = key.split("/", 1)
        if kind == "Workflow":
            fields["last_executions"] = self.workflow_executions(name)
            hooks = self._hooks()
            if hooks is not None:
                override = hooks.status(name, fields)
                if override is not None:
                    return override, fields
        drift = self.drift.get(key)
        note = self._book.notes.get(key)
        if note is not None:
            return note, _with_drift(fields, drift)
        latest = self._book.latest(key)
        if latest is not None:
            fields.update(self._step_status_fields(kind, name))
            fields.update(self.live.get(key, {}))
            return self._execution_verdict(latest), _with_drift(fields, drift)
        memo = self._book.memos.get(key)
        if memo is not None and memo.applied is not None:
            return object_status.ready_unchanged(memo.applied_revision), fields
        return object_status.pending("not reconciled yet"), fields

    def _execution_verdict(self, latest: ExecutionRecord) -> core_status.Verdict:
        if latest.finished:
            return object_status.verdict_for_execution(latest, running_step=None)
        steps = [s for s in self._store.get_steps(latest.id) if s.status == "running"]
        waiting = [
            str((s.inputs or {}).get("deployment"))
            for s in steps
            if s.type == "wait_ready" and (s.inputs or {}).get("deployment")
        ]
        if waiting and len(waiting) == len(steps):
            targets = ", ".join(f"Deployment/{name}" for name in waiting)
            return core_status.Verdict(
                phase="Reconciling",
                ready="False",
                reason="WaitingForDeployment",
                message=f"execution {latest.id} waits for {targets} to be Ready",
                reconciling=True,
            )
        running = ", ".join(s.node_id for s in steps) or None
        return object_status.verdict_for_execution(latest, running_step=running)

    def _step_status_fields(self, kind: str, name: str) -> dict[str, Any]:
        """The ``status`` outputs of the newest execution whose steps gave any (a Model's
        files and scan, a Deployment's endpoint), merged in step order."""
        memo = self._book.memos.get(f"{kind}/{name}")
        after = memo.born_seq if memo is not None else 0
        for record in self._store.list_executions(kind=kind, name=name, limit=3, after_seq=after):
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

    def workflow_executions(self, name: str) -> list[dict[str, Any]]:
        memo = self._book.memos.get(f"Workflow/{name}")
        records = self._store.list_executions(
            kind="Workflow",
            name=name,
            limit=MAX_LISTED_EXECUTIONS,
            after_seq=memo.born_seq if memo is not None else 0,
        )
        return object_status.execution_summaries(
            records, steps={r.id: self._store.get_steps(r.id) for r in records}
        )

    def document(self, key: str, *, now: str | None = None) -> dict[str, Any] | None:
        """The status document of ``kind/name`` as the next status commit will write it
        (conditions carried over from the last one written); None if unknown."""
        if not self.known(key):
            return None
        memo = self._book.memo(key)
        verdict, fields = self.verdict(key)
        return core_status.build_status(
            kind=memo.kind,
            name=memo.name,
            verdict=verdict,
            observed_revision=memo.observed_revision,
            previous=memo.status,
            now=now if now is not None else self._now(),
            fields=fields,
        )

    def status_of(self, key: str) -> Mapping[str, Any] | None:
        """What ``kind/name``'s status says now: its status document, with the Ready
        condition's reason and message on top; None if the object is unknown."""
        document = self.document(key)
        if document is None:
            return None
        ready = next(c for c in document["conditions"] if c["type"] == core_status.READY)
        return {**document, "reason": ready.get("reason"), "message": ready.get("message")}


def _with_drift(
    fields: dict[str, Any], drift: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any]:
    """Drift a watch saw stands in the status until a chain of the object reports its own."""
    if drift and not fields.get("drift"):
        fields["drift"] = [dict(item) for item in drift]
    return fields
