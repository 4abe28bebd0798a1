"""The daemon's memory of an object survives a restart exactly (a real SQLite store)."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.diff import state_from_document
from reconciler.daemon.object_memo import ObjectMemo, load_memos, save_memo
from reconciler.engine.store import Store

DOCUMENT = {
    "apiVersion": "reconciler/v1",
    "kind": "Project",
    "metadata": {"name": "research", "labels": {}, "annotations": {}},
    "spec": {"description": "Research endpoints"},
}


def test_a_memo_reads_back_as_it_was_written(tmp_path: Path) -> None:
    state = state_from_document(DOCUMENT)
    memo = ObjectMemo(kind="Project", name="research")
    memo.record_applied(state, "a" * 40)
    memo.observed_revision = "b" * 40
    memo.seen_hash = "c" * 64
    memo.status = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}
    with Store(tmp_path / "state.db") as store:
        save_memo(store, memo)
    with Store(tmp_path / "state.db") as store:
        loaded = load_memos(store)
    assert loaded == {"Project/research": memo}
    again = loaded["Project/research"].applied_state
    assert again is not None and again.spec_hash == state.spec_hash
    assert again.document == DOCUMENT


def test_a_memo_with_nothing_applied_has_no_applied_state() -> None:
    assert ObjectMemo(kind="Model", name="m").applied_state is None
