"""Chains for one object: built (and kept while its spec stays the same), expanded,
submitted with the attempt recorded first, and their end recorded in the object's memo.

The submitter is the object reconciler's hands on the executor. An attempt is written to
the object's memo (execution id and signature) before the executor stores the
execution, so a crash in between loses nothing: after a restart the memo names either
nothing yet or an execution that exists. When a chain ends, what it applied (the spec and
the hashes of the objects it was applied with) goes into the memo; a succeeded delete
says the object is gone.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

from reconciler.core.chain_builders import BuiltChain, ChainRequest, build_chain
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState
from reconciler.daemon.object_book import ObjectBook
from reconciler.daemon.object_memo import ObjectMemo
from reconciler.engine.records import ExecutionId, ExecutionRecord
from reconciler.engine.store import new_execution_id


class Executor(Protocol):
    def submit(
        self,
        chain: Chain,
        *,
        trigger: str = ...,
        execution_id: ExecutionId | None = ...,
        rank: int = ...,
    ) -> ExecutionId: ...


class ChainHooks(Protocol):
    def expand(self, chain: Chain) -> Chain: ...


class ChainSubmitter:
    """Builds, expands and submits one object's chains; records how they end."""

    def __init__(self, *, book: ObjectBook, executor: Executor) -> None:
        self._book = book
        self._executor = executor
        self._built: dict[str, tuple[tuple[str, str, frozenset[str]], BuiltChain]] = {}
        self._submitted: dict[str, tuple[ObjectState, dict[str, str]]] = {}
        self.hooks: ChainHooks | None = None
        """A Workflow's undo spelled out, a prune of what a Workflow owns emptied."""

    def build(self, request: ChainRequest) -> BuiltChain:
        """The chain for ``request``, kept per object while its action, spec and changed
        fields stay the same (waking a parked object again does not rebuild it)."""
        key = request.state.key
        wanted = (request.action, request.state.spec_hash, request.changed)
        known = self._built.get(key)
        if known is not None and known[0] == wanted:
            built = known[1]
            if built.chain is not None and built.chain.revision != request.revision:
                built = BuiltChain(
                    dataclasses.replace(built.chain, revision=request.revision), built.note
                )
                self._built[key] = (wanted, built)
            return built
        built = build_chain(request)
        self._built[key] = (wanted, built)
        return built

    def expand(self, chain: Chain) -> Chain:
        return self.hooks.expand(chain) if self.hooks is not None else chain

    def forget(self, key: str) -> None:
        self._built.pop(key, None)

    def submit(
        self,
        memo: ObjectMemo,
        chain: Chain,
        sig: str,
        state: ObjectState,
        refs: dict[str, str],
        trigger: str,
        rank: int,
    ) -> ExecutionId:
        """Record the attempt in ``memo``, then submit ``chain``; its execution id."""
        execution_id = new_execution_id()
        memo.attempted_execution, memo.attempted_sig = execution_id, sig
        self._book.save(memo)  # recorded before the executor stores it: never lost
        self._submitted[execution_id] = (state, refs)
        self._executor.submit(chain, trigger=trigger, execution_id=execution_id, rank=rank)
        self._book.attempt_moved(memo.key)
        return execution_id

    def record_finished(self, record: ExecutionRecord) -> Literal["gone", "recorded", "none"]:
        """Record what a finished chain did in its object's memo; ``gone`` when it was a
        delete that succeeded (the caller forgets the object)."""
        key = record.object_key
        book = self._book
        submitted = self._submitted.pop(record.id, None)
        book.attempt_moved(key)
        if record.status in ("cancelled", "superseded"):
            return "none"
        if record.action == "delete":
            return "gone" if record.status == "succeeded" else "none"
        memo = book.memos.get(key)
        if memo is None:
            return "none"
        memo.observed_revision = record.revision
        applied = record.status == "succeeded" or record.action == "execute"
        state, refs = submitted if submitted is not None else (None, None)
        if state is None:
            desired = book.desired.get(key)
            if desired is not None and desired.state.spec_hash == record.spec_hash:
                state, refs = desired.state, book.trigger_refs(desired)
        if applied and state is not None:
            book.record_applied(memo, state, record.revision, refs)
        else:
            book.save(memo)
        return "recorded"
