"""The native API's answers built from the daemon's records: executions, steps, objects.

One function per shape of :mod:`reconciler.api.shapes.native`, so a route answers with
the model the OpenAPI document describes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.api.shapes.native import Execution, ObjectSummary, Step
from reconciler.core.diff import ObjectState
from reconciler.daemon.object_status import step_status_word
from reconciler.engine.records import ExecutionRecord, ObjectRecord, StepRecord

API_TASK_WORKFLOW_RUN = "workflow_run"
"""The API task kind that records a run started through the API (its trigger and caller)."""


def stamp(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def step_run(step: StepRecord, *, logs: bool) -> Step:
    run = Step(
        id=step.node_id,
        type=step.type,
        position=step.position,
        status=step_status_word(step.status),
        attempts=step.attempts,
        error=step.error,
        outputs=dict(step.outputs) if step.outputs is not None else None,
        started_at=stamp(step.started_at),
        finished_at=stamp(step.finished_at),
        next_attempt_at=stamp(step.next_attempt_at),
    )
    if logs:
        run.logs = step.logs
    return run


def execution_of(
    record: ExecutionRecord,
    *,
    trigger: str,
    steps: Iterable[StepRecord] | None = None,
    logs: bool = False,
) -> Execution:
    execution = Execution(
        id=record.id,
        object=record.object_key,
        kind=record.kind,
        name=record.name,
        action=record.action,
        trigger=trigger,
        revision=record.revision,
        spec_hash=record.spec_hash,
        cluster=record.cluster,
        status=record.status,
        error=record.error,
        params=dict(record.params),
        created_at=stamp(record.created_at),
        started_at=stamp(record.started_at),
        finished_at=stamp(record.finished_at),
    )
    if steps is not None:
        execution.steps = [step_run(step, logs=logs) for step in steps]
    return execution


def labels_of(state: ObjectState | None) -> dict[str, str]:
    if state is None:
        return {}
    metadata = state.document.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def status_of(record: ObjectRecord | None) -> dict[str, Any] | None:
    """The status document the daemon last wrote for an object."""
    if record is None:
        return None
    document = record.status.get("status")
    return dict(document) if isinstance(document, Mapping) else None


def object_summary(
    kind: str, name: str, *, state: ObjectState | None, record: ObjectRecord | None
) -> ObjectSummary:
    status = status_of(record) or {}
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    return ObjectSummary(
        kind=kind,
        name=name,
        phase=str(status.get("phase") or (record.phase if record else None) or "Pending"),
        ready=str(ready.get("status")) if ready else "Unknown",
        observed_revision=status.get("observed_revision"),
        labels=labels_of(state),
        in_git=state is not None,
    )
