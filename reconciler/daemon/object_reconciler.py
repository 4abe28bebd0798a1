"""One object's reconcile: compare, plan its chain, park it or submit it.

The work queue hands this module one ``kind/name`` at a time. It compares the object's
desired state with what was applied and what was last attempted, builds the chain that
closes the difference (reconciler.core.chain_builders), and then, in this order:

- nothing to do: settled (its note cleared);
- a step type this build lacks: noted NoChainYet, once per spec;
- something it needs is not settled (a Deployment's Model not Ready, a Model's delete
  while Deployments of it still exist): parked in the dependency index with one
  condition naming what it waits for and one log line, until that object moves;
- the same chain was already attempted: running, done (recorded now after a crash), or
  failed and left alone until the spec changes in any way or a resync retries it;
- otherwise submitted, the attempt recorded before the executor stores it.

An attempt is known by its signature: the chain's action, the spec hash and the hashes
of the objects whose change redeploys this one. So a Stalled object is planned again
when its spec changes back to the last applied one (that is another attempt), a
Deployment is deployed again when its Model changes, and the executions of an earlier
life of a removed object never count for the new one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from reconciler.core.chain_builders import (
    SUSPENDED_NOTE,
    ChainRequest,
    ChainRequestAction,
    workflow_rank,
)
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState, diff_values
from reconciler.core.status import Verdict, no_chain_yet
from reconciler.daemon import object_gates, object_status
from reconciler.daemon.chain_submitter import ChainSubmitter, Executor
from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import DesiredObject, ObjectBook
from reconciler.daemon.object_memo import ObjectMemo
from reconciler.engine.records import ExecutionId, ExecutionRecord

log = logging.getLogger("reconciler.daemon")

Outcome = Literal["settled", "noted", "parked", "running", "stalled", "submitted", "forgotten"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """What one reconcile of one object did."""

    key: str
    outcome: Outcome
    detail: str = ""
    execution: ExecutionId | None = None


class Registry(Protocol):
    def missing(self, types: tuple[str, ...]) -> list[str]: ...


def rank_of(desired: DesiredObject | None) -> int:
    """A Workflow's priority as a rank (critical 0 .. low 3); other objects 2."""
    if desired is None or desired.state.kind != "Workflow":
        return 2
    return workflow_rank(desired.state.spec)


def signature(action: str, spec_hash: str, refs: Mapping[str, str]) -> str:
    return "|".join([action, spec_hash, *(f"{k}={v}" for k, v in sorted(refs.items()))])


class ObjectReconciler:
    """Reconciles one object at a time over the book; see the module docstring."""

    def __init__(
        self,
        *,
        book: ObjectBook,
        deps: DependencyIndex,
        executor: Executor,
        registry: Registry,
        revision: Callable[[], str],
        on_status: Callable[[str], None],
    ) -> None:
        self._book = book
        self._deps = deps
        self._executor = executor
        self._registry = registry
        self._revision = revision
        self._on_status = on_status
        self.chains = ChainSubmitter(book=book, executor=executor)

    # -- entry --------------------------------------------------------------------------

    def reconcile(self, key: str, *, resync: bool = False, drift: bool = False) -> Decision:
        desired = self._book.desired.get(key)
        if desired is None:
            return self._removed(key, resync=resync)
        return self._wanted(key, desired, resync=resync, drift=drift)

    # -- an object Git wants ------------------------------------------------------------

    def _wanted(self, key: str, desired: DesiredObject, *, resync: bool, drift: bool) -> Decision:
        book, memo, state = self._book, self._book.memo(key), desired.state
        if desired.suspended:
            self._deps.release(key)
            self._note(key, object_status.suspended(), observe=memo)
            return Decision(key, "noted", "suspended")
        refs = book.trigger_refs(desired)
        applied = memo.applied_state
        attempt = book.attempt(key)
        running_other = attempt is not None and not attempt.finished
        reasons = _ref_reasons(memo, refs)
        in_sync = applied is not None and applied.spec_hash == state.spec_hash and not reasons
        force: str | None = None
        if in_sync:
            force = self._redo(key, desired, memo, attempt, refs, resync=resync, drift=drift)
            if force is None and not running_other:
                return self._settle(key)
        action: ChainRequestAction = "create" if applied is None else "update"
        fields: frozenset[str] = frozenset()
        if applied is not None and applied.spec_hash != state.spec_hash and not reasons:
            fields = frozenset(c.path for c in diff_values(applied.document, state.document))
        built = self.chains.build(ChainRequest(action, state, self._revision(), changed=fields))
        if built.chain is None:
            return self._no_chain(key, memo, state, refs)
        chain = self.chains.expand(built.chain)
        missing = self._registry.missing(chain.step_types())
        if missing:
            self._deps.release(key)
            self._note_unrunnable(key, memo, state, missing)
            return Decision(key, "noted", "NoChainYet")
        blockers = object_gates.blockers(desired, book=self._book, deps=self._deps)
        if blockers:
            return self._park(key, blockers, deleting=False)
        self._deps.release(key)
        sig = signature(chain.action, state.spec_hash, refs)
        if force is None and attempt is not None and memo.attempted_sig == sig:
            repeat = self._repeat(key, memo, attempt, chain, resync=resync)
            if repeat is not None:
                return repeat
        trigger = "on_change" if force is None or force == "revert" else force
        return self._submit(key, memo, chain, sig, state, refs, trigger, rank_of(desired))

    def _redo(
        self,
        key: str,
        desired: DesiredObject,
        memo: ObjectMemo,
        attempt: ExecutionRecord | None,
        refs: Mapping[str, str],
        *,
        resync: bool,
        drift: bool,
    ) -> str | None:
        """Why an object already applied at its spec runs again (None: it does not): back
        from a failed attempt of another spec, drift seen, or a resync of what can drift
        or of a chain that failed."""
        if attempt is None or not attempt.finished:
            return None
        current = memo.attempted_sig
        here = signature(attempt.action, desired.state.spec_hash, refs)
        if attempt.status != "succeeded" and current is not None and current != here:
            return "revert"
        if drift:
            return "drift"
        if resync and attempt.status == "succeeded" and object_gates.can_drift(desired, self._book):
            return "resync"
        if resync and attempt.status in ("failed", "stalled") and attempt.action != "execute":
            return "resync"
        return None

    def _repeat(
        self,
        key: str,
        memo: ObjectMemo,
        attempt: ExecutionRecord,
        chain: Chain,
        *,
        resync: bool,
    ) -> Decision | None:
        """The chain about to be submitted was attempted already: what became of it
        decides (None: submit it again)."""
        if not attempt.finished:
            self._note(key, None)
            return Decision(key, "running", execution=attempt.id)
        if attempt.status == "succeeded":
            self.record_finished(attempt)  # it ended before a crash let us record it
            self._note(key, None)
            return Decision(key, "settled", "recorded after a restart")
        if attempt.status == "superseded":
            return None
        if resync and chain.action != "execute":
            return None
        self._note(key, None)
        return Decision(key, "stalled", attempt.status, execution=attempt.id)

    def _no_chain(
        self, key: str, memo: ObjectMemo, state: ObjectState, refs: dict[str, str]
    ) -> Decision:
        """A change with nothing to run: recorded as applied right away."""
        self._deps.release(key)
        self._note(key, None)
        revision = self._revision()
        memo.observed_revision = revision
        self._book.record_applied(memo, state, revision, refs)
        self._on_status(key)
        return Decision(key, "settled", "nothing to run")

    def _settle(self, key: str) -> Decision:
        self._deps.release(key)
        if key in self._book.notes and self._book.notes[key].reason != "NoChainYet":
            self._note(key, None)
        return Decision(key, "settled")

    # -- an object Git no longer wants --------------------------------------------------

    def _removed(self, key: str, *, resync: bool) -> Decision:
        book = self._book
        memo = book.memos.get(key)
        if memo is None:
            self._deps.release(key)
            return Decision(key, "forgotten")
        attempt = book.attempt(key)
        applied = memo.applied_state
        if applied is None:
            if attempt is not None and not attempt.finished:
                return Decision(key, "running", "its chain ends first", execution=attempt.id)
            self.forget(key)
            return Decision(key, "forgotten", "nothing was applied")
        wanted_by = sorted(r for r in book.referrers(key) if r in book.desired)
        if wanted_by:
            self._deps.release(key)
            note = f"blocked: still referenced by {', '.join(wanted_by)}"
            self._note(key, object_status.retained(note), observe=memo)
            return Decision(key, "noted", "still referenced")
        if applied.prune_disabled:
            self._deps.release(key)
            self._note(key, object_status.retained("kept: prune disabled"), observe=memo)
            return Decision(key, "noted", "prune disabled")
        dependants = sorted(
            r for r in book.applied_referrers(key) if r not in book.desired and r in book.memos
        )
        if dependants:
            why = [(r, "is deleted first") for r in dependants]
            return self._park(key, why, deleting=True)
        built = self.chains.build(ChainRequest("delete", applied, self._revision()))
        if built.chain is None:
            self._deps.release(key)
            if built.note == SUSPENDED_NOTE:
                self._note(key, object_status.suspended(), observe=memo)
                return Decision(key, "noted", "suspended")
            self.forget(key)
            return Decision(key, "forgotten", built.note or "nothing to run")
        chain = self.chains.expand(built.chain)
        missing = self._registry.missing(chain.step_types())
        if missing:
            self._deps.release(key)
            self._note_unrunnable(key, memo, applied, missing)
            return Decision(key, "noted", "NoChainYet")
        self._deps.release(key)
        sig = signature("delete", applied.spec_hash, {})
        if attempt is not None and memo.attempted_sig == sig:
            repeat = self._repeat(key, memo, attempt, chain, resync=resync)
            if repeat is not None:
                return repeat
        return self._submit(key, memo, chain, sig, applied, {}, "on_change", 2)

    def forget(self, key: str) -> None:
        self._book.forget(key)
        self.chains.forget(key)
        self._deps.release(key)
        self._on_status(key)

    # -- waiting ------------------------------------------------------------------------

    def _park(self, key: str, blockers: list[tuple[str, str]], *, deleting: bool) -> Decision:
        targets = [ref for ref, _ in blockers]
        first_kind = targets[0].split("/", 1)[0]
        message = "; ".join(f"waiting for {ref}: {why}" for ref, why in blockers)
        verdict = Verdict(
            phase="Deleting" if deleting else "Pending",
            ready="False",
            reason=f"WaitingFor{first_kind}",
            message=message,
        )
        if self._deps.park(key, targets):
            log.info("%s waits: %s", key, message, extra={"object": key, "waits_for": targets})
        self._note(key, verdict)
        return Decision(key, "parked", message)

    # -- submitting ---------------------------------------------------------------------

    def _submit(
        self,
        key: str,
        memo: ObjectMemo,
        chain: Chain,
        sig: str,
        state: ObjectState,
        refs: dict[str, str],
        trigger: str,
        rank: int,
    ) -> Decision:
        self._note(key, None)
        execution_id = self.chains.submit(memo, chain, sig, state, refs, trigger, rank)
        self._on_status(key)
        return Decision(key, "submitted", chain.action, execution=execution_id)

    # -- executions ending --------------------------------------------------------------

    def record_finished(self, record: ExecutionRecord) -> None:
        """Record what a finished chain did in its object's memo."""
        if self.chains.record_finished(record) == "gone":
            self.forget(record.object_key)

    # -- notes --------------------------------------------------------------------------

    def _note(self, key: str, note: Verdict | None, *, observe: ObjectMemo | None = None) -> None:
        """Replace ``key``'s note (None: none); its status is due only if it changed."""
        notes = self._book.notes
        if notes.get(key) == note:
            return
        if note is None:
            notes.pop(key, None)
        else:
            notes[key] = note
            if observe is not None:
                observe.observed_revision = self._revision()
                self._book.save(observe)
        self._on_status(key)

    def _note_unrunnable(
        self, key: str, memo: ObjectMemo, state: ObjectState, missing: list[str]
    ) -> None:
        """Noted once per spec, so its status file moves only when its own spec does."""
        if memo.seen_hash != state.spec_hash:
            memo.seen_hash = state.spec_hash
            memo.observed_revision = self._revision()
            self._book.save(memo)
            self._on_status(key)
        self._note(key, no_chain_yet(state.kind, missing))


def _ref_reasons(memo: ObjectMemo, refs: Mapping[str, str]) -> list[str]:
    """Why a Deployment must be deployed again because something it uses changed."""
    before = memo.applied_refs
    if before is None:
        return []
    return [f"{ref} changed" for ref, now in refs.items() if before.get(ref) not in (None, now)]
