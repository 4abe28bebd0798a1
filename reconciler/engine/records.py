"""Typed records of the state store: what callers read instead of raw SQLite rows.

Kept apart from the store so the executor, the daemon and the API can share the types
without importing SQLite code.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Literal, NewType

from reconciler.core import chains

ExecutionId = NewType("ExecutionId", str)
ApiTaskId = NewType("ApiTaskId", str)

ExecutionStatus = Literal[
    "queued", "running", "succeeded", "failed", "stalled", "cancelled", "superseded"
]
StepStatus = Literal["pending", "running", "done", "failed", "stalled", "skipped", "cancelled"]

UNFINISHED_EXECUTION: frozenset[ExecutionStatus] = frozenset({"queued", "running"})
FINISHED_EXECUTION: frozenset[ExecutionStatus] = frozenset(
    {"succeeded", "failed", "stalled", "cancelled", "superseded"}
)
FINISHED_STEP: frozenset[StepStatus] = frozenset(
    {"done", "failed", "stalled", "skipped", "cancelled"}
)


@dataclasses.dataclass(frozen=True)
class ObjectRecord:
    """What the daemon last did to one object (``kind/name``)."""

    kind: str
    name: str
    spec_hash: str | None
    revision: str | None
    phase: str | None
    status: Mapping[str, Any]
    updated_at: datetime.datetime

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclasses.dataclass(frozen=True)
class ExecutionRecord:
    """One run of one chain."""

    id: ExecutionId
    kind: str
    name: str
    action: str
    revision: str
    spec_hash: str
    cluster: str | None
    chain: chains.Chain
    params: Mapping[str, Any]
    status: ExecutionStatus
    error: str | None
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    trigger: str = "on_change"

    @property
    def object_key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_EXECUTION


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """The state of one node of one execution.

    ``attempts`` counts the attempts started; ``next_attempt_at`` is set while the step
    waits to be retried.
    """

    execution_id: ExecutionId
    node_id: str
    position: int
    type: str
    status: StepStatus
    attempts: int
    inputs: Mapping[str, Any] | None
    outputs: Mapping[str, Any] | None
    error: str | None
    logs: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    next_attempt_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class ApiTaskRecord:
    """A long-running request made through the HTTP API (a deploy, a delete)."""

    id: ApiTaskId
    kind: str
    payload: Mapping[str, Any]
    status: str
    result: Mapping[str, Any] | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
