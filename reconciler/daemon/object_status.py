"""From what the store knows of an object to the verdict its status file states.

One function per situation, so each reason a status can give is written once: a chain
that is not implemented yet (NoChainYet), a suspended object, a running, failed, stalled
or finished execution, a prune that was refused. The phase is always one of the five the
spec contract names (Pending, Reconciling, Ready, Stalled, Deleting): a Workflow run that
succeeded is Ready (reason Succeeded), a failed chain is Stalled (reason StepFailed: the
daemon does not run it again until something changes), a suspended object is Pending
(reason Suspended) and a refused prune is Stalled (reason PruneSkipped).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.core.status import Verdict, no_chain_yet
from reconciler.engine.records import ExecutionRecord, StepRecord

# A step that stalls starts its reason with a capitalised word and a colon
# ("SecretNotFound: secret 'x' is not in ...", "Unauthorized: ..."): that word becomes the
# condition's reason. The executor puts "step 'id' (type) stalled: " before it.
_REASON = re.compile(r"(?:^|\bstalled: )([A-Z][a-z]+(?:[A-Z][a-z]+)*): ")


def stall_reason(error: str | None) -> str:
    """The condition reason a stalled execution's error names, else ``StepStalled``."""
    found = _REASON.search(error or "")
    return found.group(1) if found else "StepStalled"


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
        return Verdict(
            phase="Ready",
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
            phase="Stalled",
            ready="False",
            reason="StepFailed",
            message=record.error or "a step failed",
            stalled=True,
        )
    return Verdict(
        phase="Pending",
        ready="Unknown",
        reason="Superseded" if record.status == "superseded" else "Cancelled",
        message=f"execution {record.id} was {record.status}",
    )


def suspended() -> Verdict:
    return Verdict(
        phase="Pending",
        ready="Unknown",
        reason="Suspended",
        message="spec.suspend is true: the daemon leaves this object as it is",
    )


def retained(note: str) -> Verdict:
    return Verdict(
        phase="Stalled", ready="Unknown", reason="PruneSkipped", message=note, stalled=True
    )


def pending(message: str) -> Verdict:
    return Verdict(phase="Pending", ready="Unknown", reason="Pending", message=message)


def ready_unchanged(revision: str | None) -> Verdict:
    return Verdict(
        phase="Ready",
        ready="True",
        reason="UpToDate",
        message=f"applied at revision {(revision or '')[:12]}",
    )


def source_verdict(
    *,
    stalled: bool,
    source_error: str | None,
    last_seen: str | None,
    planned: str | None,
    last_applied: str | None,
) -> Verdict:
    """The watched branch's verdict: invalid, unreachable, applying, or applied."""
    if stalled:
        return Verdict(
            phase="Stalled",
            ready="False",
            reason="ValidationFailed",
            message=f"revision {str(last_seen)[:12]} does not validate; the objects keep "
            f"running as applied at {str(last_applied)[:12]}",
            stalled=True,
        )
    if source_error:
        return Verdict(
            phase="Stalled",
            ready="False",
            reason="SourceUnavailable",
            message=f"{source_error}; the objects keep running as applied at "
            f"{str(last_applied)[:12]}; polling again with backoff",
            stalled=True,
        )
    if planned != last_applied:
        return Verdict(
            phase="Reconciling",
            ready="Unknown",
            reason="Progressing",
            message=f"applying revision {str(planned)[:12]}",
            reconciling=True,
        )
    return Verdict(
        phase="Ready",
        ready="True",
        reason="Applied",
        message=f"revision {str(last_applied)[:12]} applied",
    )


STEP_STATUS_WORDS: Mapping[str, str] = {"done": "succeeded"}
"""The store's step statuses that status files, the native API and notifications say in
the executions' words: a step that finished well ``succeeded``, like its execution. The
others (pending, running, failed, stalled, skipped, cancelled) are the same words."""


def step_status_word(status: str) -> str:
    """A step's status as every native surface states it (see STEP_STATUS_WORDS)."""
    return STEP_STATUS_WORDS.get(status, status)


def _stamp(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def execution_summaries(
    records: Iterable[ExecutionRecord],
    *,
    steps: Mapping[str, Sequence[StepRecord]] | None = None,
) -> list[dict[str, Any]]:
    """A Workflow's recent executions as its status file lists them, newest first.

    Each names what started it and, when ``steps`` holds the execution's step records,
    every step with its status, attempts, times and error.
    """
    listed = steps or {}
    return [
        {
            "id": r.id,
            "action": r.action,
            "revision": r.revision,
            "status": r.status,
            "trigger": r.trigger,
            "started_at": _stamp(r.started_at),
            "finished_at": _stamp(r.finished_at),
            "error": r.error,
            "steps": [_step_summary(s) for s in listed.get(r.id, ())],
        }
        for r in records
        if r.action in ("execute", "deprovision")
    ]


def _step_summary(step: StepRecord) -> dict[str, Any]:
    return {
        "id": step.node_id,
        "type": step.type,
        "status": step_status_word(step.status),
        "attempts": step.attempts,
        "started_at": _stamp(step.started_at),
        "finished_at": _stamp(step.finished_at),
        "error": step.error,
    }


__all__ = [
    "execution_summaries",
    "no_chain_yet",
    "pending",
    "ready_unchanged",
    "retained",
    "source_verdict",
    "stall_reason",
    "step_status_word",
    "suspended",
    "verdict_for_execution",
]
