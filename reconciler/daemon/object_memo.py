"""What the daemon remembers of each object between cycles, and how it is kept.

Per object: the document last applied (with its hash and revision), the revision last
observed, the spec hash a change that could not run was last noted for, and the status
document last written. One row of the store's objects table each, so a restart picks up
exactly where the daemon was, transition times of conditions included.
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
    observed_revision: str | None = None
    status: dict[str, Any] | None = None
    seen_hash: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def applied_state(self) -> ObjectState | None:
        """What was last applied, with its stored hash (no re-encoding per cycle)."""
        if self.applied is None or self.applied_hash is None:
            return None
        return ObjectState(self.kind, self.name, self.applied, self.applied_hash)

    def record_applied(self, state: ObjectState, revision: str) -> None:
        self.applied, self.applied_hash = dict(state.document), state.spec_hash
        self.applied_revision = revision

    @classmethod
    def from_record(cls, record: ObjectRecord) -> ObjectMemo:
        saved = dict(record.status)
        return cls(
            kind=record.kind,
            name=record.name,
            applied=saved.get("applied"),
            applied_hash=record.spec_hash,
            applied_revision=record.revision,
            observed_revision=saved.get("observed_revision"),
            status=saved.get("status"),
            seen_hash=saved.get("seen_hash"),
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
            "observed_revision": memo.observed_revision,
            "status": memo.status,
            "seen_hash": memo.seen_hash,
        },
    )
