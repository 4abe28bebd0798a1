"""What an object waits for before its chain may run, and what of it can drift.

A Deployment's create or update waits for the objects it uses: ``ready`` ones (its Model,
its Cluster) must be applied at their current spec; ``settled`` ones (a template, a
Credential, a Project) only tried at it, their failure being their own. A Model blocked
by its scan does not hold its Deployments (their own step stalls with the findings). The
object reconciler parks an object on what these functions name and wakes it when one of
them moves. Resyncs re-apply what can change outside Git by itself.
"""

from __future__ import annotations

from reconciler.daemon import object_status
from reconciler.daemon.dependency_index import DependencyIndex
from reconciler.daemon.object_book import DesiredObject, ObjectBook

READY, SETTLED = "ready", "settled"
GATES: dict[str, dict[str, str]] = {
    "Deployment": {
        "Model": READY,
        "Cluster": READY,
        "DeploymentTemplate": SETTLED,
        "Credential": SETTLED,
        "Project": SETTLED,
    },
    "Model": {"Credential": SETTLED},
}
"""What an object's create or update waits for: ``ready`` objects must be applied at
their current spec; ``settled`` ones only tried at it (their failure is their own)."""


def blockers(
    desired: DesiredObject, *, book: ObjectBook, deps: DependencyIndex
) -> list[tuple[str, str]]:
    """``(kind/name, why)`` of each object ``desired`` must wait for now."""
    gates = GATES.get(desired.state.kind)
    if not gates:
        return []
    found: list[tuple[str, str]] = []
    for ref in desired.refs:
        policy = gates.get(ref.split("/", 1)[0])
        target = book.desired.get(ref)
        if policy is None or target is None:
            continue
        why = unsettled(ref, target, policy, book=book, deps=deps)
        if why is not None:
            found.append((ref, why))
    return found


def unsettled(
    ref: str, target: DesiredObject, policy: str, *, book: ObjectBook, deps: DependencyIndex
) -> str | None:
    """Why ``ref`` holds its dependants back now, or None."""
    memo = book.memos.get(ref)
    applied_here = memo is not None and memo.applied_hash == target.state.spec_hash
    if target.suspended:
        return None if memo is not None and memo.applied is not None else "suspended"
    waits = deps.waiting_on(ref)
    if waits:
        return f"it waits for {', '.join(sorted(waits))}"
    attempt = book.attempt(ref)
    if attempt is not None and not attempt.finished:
        return "it is being reconciled"
    if applied_here:
        return None
    note = book.notes.get(ref)
    if note is not None and note.reason == "NoChainYet":
        return "this daemon cannot run its chain (NoChainYet)"
    tried_here = attempt is not None and attempt.spec_hash == target.state.spec_hash
    if tried_here and attempt is not None:
        if policy == SETTLED:
            return None
        reason = object_status.stall_reason(attempt.error)
        if reason == "ScanFailed":
            return None  # the Deployment's own step stalls with the scan's findings
        if attempt.status in ("failed", "stalled"):
            return f"it is Stalled: {attempt.error or attempt.status}"
    return "it is not Ready yet"


def can_drift(desired: DesiredObject, book: ObjectBook) -> bool:
    """Whether ``desired`` stands for something outside Git that changes by itself: a
    Deployment on a kubernetes Cluster (live objects) or a cloud model's gateway (the key
    it holds: a rotated secret restarts it), a Model read from disk or from a Hugging Face
    branch (files that change under the same spec)."""
    spec = desired.spec
    if desired.state.kind == "Deployment":
        cluster = book.desired.get(f"Cluster/{spec.cluster}")
        if cluster is not None and cluster.spec.driver == "kubernetes":
            return True
        model = book.desired.get(f"Model/{spec.model}")
        source = getattr(model.spec, "source", None) if model is not None else None
        return cluster is not None and getattr(source, "provider_type", None) == "cloud_model"
    if desired.state.kind == "Model":
        source = spec.source
        kind = source.provider_type
        revision = str(getattr(source, "revision", "") or "main")
        pinned = len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
        return kind == "disk" or (kind == "hugging_face" and not pinned)
    return False
