"""From what the store knows of an object to the verdict its status file states.

One function per situation, so each reason a status can give is written once: a chain
that is not implemented yet (NoChainYet), a suspended object, a running, failed, stalled
or finished execution, a prune that was refused.
"""

from __future__ import annotations

from reconciler.core.status import Verdict, no_chain_yet
from reconciler.engine.records import ExecutionRecord

_STALL_REASONS = {
    "SecretNotFound": ("secret", "not found"),
}


def stall_reason(error: str | None) -> str:
    """A CamelCase reason for a stalled execution's error text."""
    text = error or ""
    for reason in _STALL_REASONS:
        if reason in text:
            return reason
    lowered = text.lower()
    for reason, words in _STALL_REASONS.items():
        if all(word in lowered for word in words):
            return reason
    return "StepStalled"


def verdict_for_execution(record: ExecutionRecord, *, running_step: str | None) -> Verdict:
    action = "delete" if record.action == "delete" else record.action
    if record.status in ("queued", "running"):
        where = f" (step {running_step})" if running_step else ""
        return Verdict(
            phase="Reconciling",
            ready="Unknown",
            reason="Progressing",
            message=f"{action} chain {record.id} {record.status}{where} for revision "
            f"{record.revision[:12]}",
            reconciling=True,
        )
    if record.status == "succeeded":
        phase = "Succeeded" if record.action == "execute" else "Ready"
        return Verdict(
            phase=phase,
            ready="True",
            reason="Succeeded",
            message=f"{action} chain {record.id} succeeded at revision {record.revision[:12]}",
        )
    if record.status == "stalled":
        return Verdict(
            phase="Stalled",
            ready="False",
            reason=stall_reason(record.error),
            message=record.error or "a step needs a person to act",
            stalled=True,
        )
    if record.status == "failed":
        return Verdict(
            phase="Failed",
            ready="False",
            reason="StepFailed",
            message=record.error or "a step failed",
        )
    return Verdict(
        phase="Pending",
        ready="Unknown",
        reason="Superseded" if record.status == "superseded" else "Cancelled",
        message=f"execution {record.id} was {record.status}",
    )


def suspended() -> Verdict:
    return Verdict(
        phase="Suspended",
        ready="Unknown",
        reason="Suspended",
        message="spec.suspend is true: the daemon leaves this object as it is",
    )


def retained(note: str) -> Verdict:
    return Verdict(phase="Retained", ready="Unknown", reason="PruneSkipped", message=note)


def pending(message: str) -> Verdict:
    return Verdict(phase="Pending", ready="Unknown", reason="Pending", message=message)


def ready_unchanged(revision: str | None) -> Verdict:
    return Verdict(
        phase="Ready",
        ready="True",
        reason="UpToDate",
        message=f"applied at revision {(revision or '')[:12]}",
    )


__all__ = [
    "no_chain_yet",
    "pending",
    "ready_unchanged",
    "retained",
    "stall_reason",
    "suspended",
    "verdict_for_execution",
]
