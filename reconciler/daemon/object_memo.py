"""What the daemon remembers of each object between reconciles, and how it is kept.

Per object: the document last applied (with its hash and revision) and the hashes of the
objects it used then (a Deployment's Model and template: when one of them changes, the
Deployment is deployed again), the spec and action of the last chain attempted (a stalled
object is planned against what was last tried, not only what last worked), the revision
last observed, the spec hash a change that could not run was last noted for, the status
document last written, and where this object's life began in the execution history (an
object removed and added back is a new object: the executions of its earlier life do not
count). One row of the store's objects table each, so a restart picks up exactly where
the daemon was, transition times of conditions included.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.core.diff import ObjectState
from reconciler.engine.records import ObjectRecord
from reconciler.engine.store import Store


@dataclasses.dataclass
class ObjectMemo:
    """The daemon's memory of one object (``kind/name``)."""

    kind: str
    name: str
    applied: dict[str, Any] | None = None
    applied_hash: str | None = None
    applied_revision: str | None = None
    applied_refs: dict[str, str] | None = None
    """``kind/name`` -> spec hash of the objects that trigger a redeploy (a Deployment's
    Model and DeploymentTemplate) as they were when this object was last applied."""
    attempted_execution: str | None = None
    """The execution of the last chain the reconciler submitted for this object."""
    attempted_sig: str | None = None
    """What that chain was for: the spec hash, the hashes of the objects whose change
    redeploys this one, and the action (see reconciler.daemon.object_reconciler)."""
    observed_revision: str | None = None
    status: dict[str, Any] | None = None
    status_unpublished: bool = False
    """``status`` is newer than the status branch's file (reads see it at once; the next
    status commit writes it, after a restart too)."""
    seen_hash: str | None = None
    born_seq: int = 0
    """The store's execution sequence when this object (this life of it) was first seen."""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def applied_state(self) -> ObjectState | None:
        """What was last applied, with its stored hash (no re-encoding per reconcile)."""
        if self.applied is None or self.applied_hash is None:
            return None
        return ObjectState(self.kind, self.name, self.applied, self.applied_hash)

    def record_applied(
        self, state: ObjectState, revision: str, *, refs: dict[str, str] | None = None
    ) -> None:
        self.applied, self.applied_hash = dict(state.document), state.spec_hash
        self.applied_revision = revision
        if refs is not None:
            self.applied_refs = dict(refs)

    @classmethod
    def from_record(cls, record: ObjectRecord) -> ObjectMemo:
        saved = dict(record.status)
        refs = saved.get("applied_refs")
        return cls(
            kind=record.kind,
            name=record.name,
            applied=saved.get("applied"),
            applied_hash=record.spec_hash,
            applied_revision=record.revision,
            applied_refs=dict(refs) if isinstance(refs, dict) else None,
            attempted_execution=saved.get("attempted_execution"),
            attempted_sig=saved.get("attempted_sig"),
            observed_revision=saved.get("observed_revision"),
            status=saved.get("status"),
            status_unpublished=bool(saved.get("status_unpublished")),
            seen_hash=saved.get("seen_hash"),
            born_seq=int(saved.get("born_seq") or 0),
        )


def load_memos(store: Store) -> dict[str, ObjectMemo]:
    return {memo.key: memo for memo in map(ObjectMemo.from_record, store.list_objects())}


def save_memo(store: Store, memo: ObjectMemo) -> None:
    store.put_object(
        kind=memo.kind,
        name=memo.name,
        spec_hash=memo.applied_hash,
        revision=memo.applied_revision,
        phase=(memo.status or {}).get("phase"),
        status={
            "applied": memo.applied,
            "applied_refs": memo.applied_refs,
            "attempted_execution": memo.attempted_execution,
            "attempted_sig": memo.attempted_sig,
            "observed_revision": memo.observed_revision,
            "status": memo.status,
            "status_unpublished": memo.status_unpublished,
            "seen_hash": memo.seen_hash,
            "born_seq": memo.born_seq,
        },
    )
