"""What each situation of an object or of the source says in its status, table by table."""

from __future__ import annotations

import datetime

import pytest

from reconciler.core.chains import Chain
from reconciler.core.status import build_status
from reconciler.daemon import object_status
from reconciler.engine.records import (
    ExecutionId,
    ExecutionRecord,
    ExecutionStatus,
    StepRecord,
    StepStatus,
)

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


def _record(status: ExecutionStatus, *, action: str = "apply", error: str | None = None):
    chain = Chain(
        kind="Credential", name="c", action="apply", revision="r" * 40, spec_hash="h", steps=()
    )
    return ExecutionRecord(
        id=ExecutionId("e1"),
        kind="Credential",
        name="c",
        action=action,
        revision="a" * 40,
        spec_hash="h",
        cluster=None,
        chain=chain,
        params={},
        status=status,
        error=error,
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW if status != "running" else None,
    )


@pytest.mark.parametrize(
    ("status", "action", "error", "phase", "ready", "reason", "reconciling", "stalled"),
    [
        ("queued", "apply", None, "Reconciling", "Unknown", "Progressing", True, False),
        ("running", "apply", None, "Reconciling", "Unknown", "Progressing", True, False),
        ("succeeded", "apply", None, "Ready", "True", "Succeeded", False, False),
        ("succeeded", "execute", None, "Ready", "True", "Succeeded", False, False),
        ("failed", "apply", "step x: boom", "Stalled", "False", "StepFailed", False, True),
        (
            "stalled",
            "apply",
            "SecretNotFound: secret 'k' is not in ...",
            "Stalled",
            "False",
            "SecretNotFound",
            False,
            True,
        ),
        ("stalled", "apply", "a person must look", "Stalled", "False", "StepStalled", False, True),
        ("superseded", "apply", None, "Pending", "Unknown", "Superseded", False, False),
        ("cancelled", "apply", None, "Pending", "Unknown", "Cancelled", False, False),
    ],
)
def test_execution_verdicts(status, action, error, phase, ready, reason, reconciling, stalled):
    verdict = object_status.verdict_for_execution(
        _record(status, action=action, error=error), running_step=None
    )
    assert (verdict.phase, verdict.ready, verdict.reason) == (phase, ready, reason)
    assert (verdict.reconciling, verdict.stalled) == (reconciling, stalled)


@pytest.mark.parametrize(
    ("stalled", "error", "planned", "applied", "phase", "reason"),
    [
        (True, None, "b", "a", "Stalled", "ValidationFailed"),
        (True, "remote gone", "b", "a", "Stalled", "ValidationFailed"),
        (False, "remote gone", "a", "a", "Stalled", "SourceUnavailable"),
        (False, None, "b", "a", "Reconciling", "Progressing"),
        (False, None, "a", "a", "Ready", "Applied"),
    ],
)
def test_source_verdicts(stalled, error, planned, applied, phase, reason):
    verdict = object_status.source_verdict(
        stalled=stalled, source_error=error, last_seen="c", planned=planned, last_applied=applied
    )
    assert (verdict.phase, verdict.reason) == (phase, reason)
    assert verdict.stalled == (phase == "Stalled")


def test_a_condition_keeps_its_transition_time_while_its_status_holds():
    ready = object_status.ready_unchanged("a" * 40)
    first = build_status(
        kind="Project", name="p", verdict=ready, observed_revision="a", previous=None, now="T1"
    )
    again = build_status(
        kind="Project", name="p", verdict=ready, observed_revision="a", previous=first, now="T2"
    )
    assert again == first
    failed = object_status.verdict_for_execution(_record("failed", error="x"), running_step=None)
    later = build_status(
        kind="Project", name="p", verdict=failed, observed_revision="b", previous=again, now="T3"
    )
    times = {c["type"]: c["last_transition_time"] for c in later["conditions"]}
    # A failed chain is not run again until something changes: Stalled turns True.
    assert times == {"Ready": "T3", "Reconciling": "T1", "Stalled": "T3"}


def test_workflow_execution_summaries_list_provision_and_deprovision_runs_only():
    summaries = object_status.execution_summaries(
        [
            _record("succeeded", action="deprovision"),
            _record("succeeded", action="execute"),
            _record("succeeded", action="apply"),
            _record("succeeded", action="delete"),
        ]
    )
    assert [s["action"] for s in summaries] == ["deprovision", "execute"]
    assert summaries[1] == {
        "id": "e1",
        "action": "execute",
        "revision": "a" * 40,
        "status": "succeeded",
        "trigger": "on_change",
        "started_at": "2026-11-23T12:00:00Z",
        "finished_at": "2026-11-23T12:00:00Z",
        "error": None,
        "steps": [],
    }


def _step(node: str, status: StepStatus) -> StepRecord:
    return StepRecord(
        execution_id=ExecutionId("e1"),
        node_id=node,
        position=0,
        type="noop",
        status=status,
        attempts=1,
        inputs={},
        outputs=None,
        error=None,
        logs="",
        started_at=NOW,
        finished_at=NOW,
        next_attempt_at=None,
    )


@pytest.mark.parametrize(
    ("stored", "stated"),
    [
        ("done", "succeeded"),  # the executions' word, not the store's
        ("pending", "pending"),
        ("running", "running"),
        ("failed", "failed"),
        ("stalled", "stalled"),
        ("skipped", "skipped"),
        ("cancelled", "cancelled"),
    ],
)
def test_step_statuses_use_the_executions_words(stored: StepStatus, stated: str) -> None:
    (summary,) = object_status.execution_summaries(
        [_record("succeeded", action="execute")], steps={"e1": [_step("a", stored)]}
    )
    assert summary["steps"][0]["status"] == stated


PHASES = {"Pending", "Reconciling", "Ready", "Stalled", "Deleting"}


def test_every_verdict_has_a_phase_of_the_spec_contract() -> None:
    statuses = ("queued", "running", "succeeded", "failed", "stalled", "superseded", "cancelled")
    verdicts = [
        object_status.verdict_for_execution(_record(status, action=action), running_step=None)
        for status in statuses
        for action in ("apply", "execute", "delete", "deprovision")
    ]
    verdicts += [
        object_status.suspended(),
        object_status.retained("kept"),
        object_status.pending("p"),
    ]
    assert {v.phase for v in verdicts} <= PHASES
