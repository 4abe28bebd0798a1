"""The daemon's per-object truth: what Git wants, what was applied and tried, and notes.

One place holds, by ``kind/name``: the desired object of the last revision that
validated (its canonical state and its typed spec model), the memo of what the daemon
applied and last attempted (reconciler.daemon.object_memo), the note that overrides an
object's verdict while it is parked, suspended or unrunnable, and the attempt (execution)
each object's memo points to. Objects refer to each other, so the references are indexed
both ways, for the desired objects and for what was applied: a changed Model finds the
Deployments to redeploy, a Model's delete the Deployments to delete first.

Replacing the desired objects returns the keys that changed (added, removed, or another
spec hash): the daemon enqueues those and their referrers, nothing else.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.core.diff import ObjectState, state_from
from reconciler.core.plan import references_of
from reconciler.core.status import Verdict
from reconciler.core.validation.objects import SpecObject
from reconciler.daemon.object_memo import ObjectMemo, load_memos, save_memo
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store

TRIGGERING_KINDS = ("Model", "DeploymentTemplate")
"""A Deployment is deployed again when one of these it uses changes."""


@dataclasses.dataclass(frozen=True, eq=False)
class DesiredObject:
    """One object of the last valid revision: canonical state and typed spec model."""

    state: ObjectState
    model: Any
    refs: tuple[str, ...]
    """``kind/name`` of every object it refers to."""
    path: str = ""
    """The repo path of the file that holds it."""

    @property
    def key(self) -> str:
        return self.state.key

    @property
    def spec(self) -> Any:
        """The typed spec (``model.spec``): read fields as attributes."""
        return self.model.spec

    @property
    def suspended(self) -> bool:
        return getattr(self.spec, "suspend", False) is True


class _RefIndex:
    """``key -> refs`` and its inverse."""

    def __init__(self) -> None:
        self._out: dict[str, tuple[str, ...]] = {}
        self._in: dict[str, set[str]] = {}

    def set(self, key: str, refs: Iterable[str]) -> None:
        self.drop(key)
        found = tuple(r for r in refs if r != key)
        if found:
            self._out[key] = found
            for target in found:
                self._in.setdefault(target, set()).add(key)

    def drop(self, key: str) -> None:
        for target in self._out.pop(key, ()):
            referrers = self._in.get(target)
            if referrers is not None:
                referrers.discard(key)
                if not referrers:
                    del self._in[target]

    def referrers(self, target: str) -> frozenset[str]:
        return frozenset(self._in.get(target, ()))


class ObjectBook:
    """Desired objects, memos, notes and attempts, by ``kind/name``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._desired: dict[str, DesiredObject] = {}
        self._states: dict[str, ObjectState] = {}
        self._state_cache: dict[SpecObject, DesiredObject] = {}
        self.memos: dict[str, ObjectMemo] = load_memos(store)
        self.notes: dict[str, Verdict] = {}
        self._wanted_refs = _RefIndex()
        self._applied_refs = _RefIndex()
        for key, memo in self.memos.items():
            applied = memo.applied_state
            if applied is not None:
                self._applied_refs.set(key, references_of(applied))
        self._attempts: dict[str, ExecutionRecord | None] = {}

    # -- desired --------------------------------------------------------------------------

    @property
    def desired(self) -> Mapping[str, DesiredObject]:
        return self._desired

    def states(self) -> Mapping[str, ObjectState]:
        """The desired objects' canonical states (read-only view)."""
        return types.MappingProxyType(self._states)

    def replace_desired(self, objects: Iterable[SpecObject]) -> set[str]:
        """Take the objects of a new valid revision; the keys added, removed or changed.

        The loader hands back the very objects of files it did not parse again, so only
        objects new to this revision (and those gone from it) are looked at: a one-file
        push into a 10,000-object repo costs that file's objects, not the repo's.
        """
        listed = objects if isinstance(objects, list | tuple) else list(objects)
        old_cache = self._state_cache
        gone = old_cache.keys() - set(listed)
        fresh = [obj for obj in listed if obj not in old_cache]
        if not gone and not fresh:
            return set()
        cache = dict(old_cache)
        desired = dict(self._desired)
        states = dict(self._states)
        moved: set[str] = set()
        for obj in gone:
            was = cache.pop(obj)
            moved.add(was.key)
            if desired.get(was.key) is was:
                del desired[was.key]
                del states[was.key]
        for obj in fresh:
            state = state_from(obj)
            found = DesiredObject(state, obj.model, tuple(references_of(state)), obj.path)
            cache[obj] = found
            moved.add(found.key)
            if found.key not in desired:  # the first of a name wins, as in validation
                desired[found.key] = found
                states[found.key] = state
        before = self._desired
        changed = {key for key in moved if _hash(before.get(key)) != _hash(desired.get(key))}
        for key in changed:
            new = desired.get(key)
            if new is None:
                self._wanted_refs.drop(key)
            else:
                self._wanted_refs.set(key, new.refs)
        self._state_cache = cache
        self._desired = desired
        self._states = states
        return changed

    def referrers(self, key: str) -> frozenset[str]:
        """Desired objects that refer to ``key``."""
        return self._wanted_refs.referrers(key)

    def applied_referrers(self, key: str) -> frozenset[str]:
        """Objects whose applied state refers to ``key`` (applied and not yet deleted)."""
        return self._applied_refs.referrers(key)

    def trigger_refs(self, desired: DesiredObject) -> dict[str, str]:
        """``kind/name`` -> desired spec hash of the objects whose change redeploys
        ``desired`` (a Deployment's Model and DeploymentTemplate)."""
        if desired.state.kind != "Deployment":
            return {}
        found: dict[str, str] = {}
        for ref in desired.refs:
            if ref.split("/", 1)[0] in TRIGGERING_KINDS:
                target = self._desired.get(ref)
                if target is not None:
                    found[ref] = target.state.spec_hash
        return found

    # -- memos ----------------------------------------------------------------------------

    def memo(self, key: str) -> ObjectMemo:
        """``key``'s memo, made when the object is first seen (a new life begins)."""
        memo = self.memos.get(key)
        if memo is None:
            kind, name = key.split("/", 1)
            memo = self.memos[key] = ObjectMemo(
                kind=kind, name=name, born_seq=self._store.execution_seq()
            )
        return memo

    def save(self, memo: ObjectMemo) -> None:
        save_memo(self._store, memo)

    def record_applied(
        self, memo: ObjectMemo, state: ObjectState, revision: str, refs: dict[str, str] | None
    ) -> None:
        memo.record_applied(state, revision, refs=refs)
        self._applied_refs.set(memo.key, references_of(state))
        self.save(memo)

    def adopt(self, memos: Iterable[ObjectMemo], *, drop: Iterable[str] = ()) -> None:
        """Take memos another replica handed over (its shard moved here), already written
        to the store; ``drop`` are local memos the handover says are gone."""
        for key in drop:
            self.memos.pop(key, None)
            self.notes.pop(key, None)
            self._attempts.pop(key, None)
            self._applied_refs.drop(key)
        for memo in memos:
            self.memos[memo.key] = memo
            self.notes.pop(memo.key, None)
            self._attempts.pop(memo.key, None)
            applied = memo.applied_state
            if applied is not None:
                self._applied_refs.set(memo.key, references_of(applied))
            else:
                self._applied_refs.drop(memo.key)

    def forget(self, key: str) -> ObjectMemo | None:
        """The object is gone (deleted, or removed before anything was applied)."""
        memo = self.memos.pop(key, None)
        self.notes.pop(key, None)
        self._attempts.pop(key, None)
        self._applied_refs.drop(key)
        if memo is not None:
            self._store.delete_object(memo.kind, memo.name)
        return memo

    # -- attempts -------------------------------------------------------------------------

    def attempt(self, key: str) -> ExecutionRecord | None:
        """The execution of ``key``'s last attempted chain in this life, or None."""
        if key in self._attempts:
            return self._attempts[key]
        memo = self.memos.get(key)
        found = None
        if memo is not None and memo.attempted_execution is not None:
            found = self._store.find_execution(memo.attempted_execution)
        self._attempts[key] = found
        return found

    def attempt_moved(self, key: str) -> None:
        """An execution of ``key`` was submitted, moved or ended: read it again."""
        self._attempts.pop(key, None)

    def latest(self, key: str) -> ExecutionRecord | None:
        """The newest execution of ``key`` in this life, whatever started it (a Workflow's
        scheduled or API runs too)."""
        memo = self.memos.get(key)
        kind, name = key.split("/", 1)
        found = self._store.list_executions(
            kind=kind, name=name, limit=1, after_seq=memo.born_seq if memo else 0
        )
        return found[0] if found else None


def _hash(desired: DesiredObject | None) -> str | None:
    return None if desired is None else desired.state.spec_hash
