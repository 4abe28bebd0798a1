"""The shapes of the native API: probes, status, objects, plans, executions, writes.

Answers are closed models (every field documented); the free-form parts are what the
daemon keeps as documents: a spec, a status file, step outputs, a plan, a write's result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, model_validator

from reconciler.api.shapes.common import RequestShape, Scalar, Shape
from reconciler.specs.registry import KINDS, Kind

REF_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$"
"""A branch name or commit sha as ``/api/v1/plan?ref=`` takes it."""

ExecutionState = Literal[
    "cancelled", "failed", "queued", "running", "stalled", "succeeded", "superseded"
]
StepState = Literal["pending", "running", "succeeded", "failed", "stalled", "skipped", "cancelled"]
WriteState = Literal["committing", "pending", "review", "done", "failed"]
Stamp = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
"""A UTC time as ``YYYY-MM-DDTHH:MM:SSZ``, or null."""


# --- probes and status -------------------------------------------------------------------


class Health(Shape):
    status: Literal["ok"]


class Readiness(Shape):
    ready: bool
    loaded: bool
    store_writable: bool
    detail: str


class SourceState(Shape):
    url: str
    branch: str
    last_seen_revision: str | None
    last_applied_revision: str | None
    status: dict[str, Any] | None
    """The status document the daemon last wrote for the source (null before the first)."""


class ObjectCounts(Shape):
    in_git: int
    recorded: int
    by_phase: dict[str, int]


class QueueCounts(Shape):
    queued: int
    running: int


class Status(Shape):
    ready: bool
    source: SourceState
    objects: ObjectCounts
    executions: QueueCounts


# --- objects -----------------------------------------------------------------------------


class ObjectSummary(Shape):
    kind: str
    name: str
    phase: str
    ready: str
    """The status of its Ready condition: True, False or Unknown."""
    observed_revision: str | None
    labels: dict[str, str]
    in_git: bool


class ObjectPage(Shape):
    items: list[ObjectSummary]
    total: int
    limit: int
    offset: int
    continue_: str | None = Field(alias="continue")
    """Give it as `continue` for the next page; null on the last."""


class Step(Shape):
    """One step of an execution."""

    id: str
    type: str
    position: int
    status: StepState
    attempts: int
    error: str | None
    outputs: dict[str, Any] | None
    started_at: Stamp
    finished_at: Stamp
    next_attempt_at: Stamp
    logs: str | MISSING = MISSING
    """Only when asked for (`logs=true`, the default on one execution)."""


class Execution(Shape):
    id: str
    object: str
    kind: str
    name: str
    action: Literal["apply", "delete", "execute", "deprovision"]
    trigger: Literal["on_change", "manual", "schedule", "api"]
    revision: str
    spec_hash: str
    cluster: str | None
    status: ExecutionState
    error: str | None
    params: dict[str, Any]
    created_at: Stamp
    started_at: Stamp
    finished_at: Stamp
    steps: list[Step] | MISSING = MISSING
    """Not in lists of executions."""


class ObjectDetail(ObjectSummary):
    spec: dict[str, Any] | None
    metadata: dict[str, Any] | None
    spec_hash: str | None
    applied_hash: str | None
    applied_revision: str | None
    status: dict[str, Any] | None
    conditions: list[dict[str, Any]]
    last_executions: list[Execution]


class ExecutionPage(Shape):
    items: list[Execution]
    limit: int
    offset: int


class ExplainedVerdict(Shape):
    object: str
    phase: str | None
    reason: str
    message: str | None
    what_to_do: str | None
    waits_for: list[ExplainedVerdict]


class ExplainedStep(Shape):
    id: str
    type: str
    status: str
    attempts: int
    error: str | None
    log_tail: list[str]


class ExplainedExecution(Shape):
    id: str
    action: str
    trigger: str
    revision: str
    status: str
    error: str | None
    steps: list[ExplainedStep]


class Explanation(ExplainedVerdict):
    last_execution: ExplainedExecution | None


# --- plan, sync, runs, cancel ------------------------------------------------------------


class PlanResult(Shape):
    ref: str
    revision: str | None
    valid: bool
    diagnostics: list[str]
    plan: dict[str, Any] | None


class SyncRequest(RequestShape):
    """Reconcile everything, or name one object (both `kind` and `name`)."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"maxProperties": 0}, {"required": ["kind", "name"]}]}
    )
    unknown_field = "unknown field {field!r}; sync takes 'kind' and 'name'"
    problems = {
        "kind": f"kind must be one of {', '.join(KINDS)}, given with 'name'",
        "name": "give both 'kind' and 'name' as strings, or neither",
    }

    kind: Kind | MISSING = MISSING
    name: str | MISSING = MISSING

    @model_validator(mode="after")
    def _both_or_neither(self) -> SyncRequest:
        if (self.kind is MISSING) != (self.name is MISSING):
            raise ValueError("give both 'kind' and 'name' as strings, or neither")
        return self


class SyncAccepted(Shape):
    triggered: Literal[True]
    object: str | None


class RunRequest(RequestShape):
    unknown_field = "unknown field {field!r}; a run takes 'params'"
    problems = {"params": "'params' must be an object of parameter names to values"}

    params: dict[str, Scalar] | None = None


class DeprovisionRequest(RequestShape):
    """A deprovision takes no fields."""

    unknown_field = "unknown field {field!r}; a deprovision takes no body"


class Cancelling(Shape):
    """What the cancel does now: a queued execution is cancelled at once; a running one's
    steps are interrupted at their next await (subprocesses get subprocess_grace_s after
    SIGTERM) and undone where their step type has an undo."""

    id: str
    state: Literal["cancelled", "cancelling"]
    cancelling: bool
    interrupting: list[str]
    undo: list[str]
    subprocess_grace_s: float
    message: str


class CatalogueEntry(Shape):
    name: str
    description: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    implemented: bool


class StepCatalogue(Shape):
    items: list[CatalogueEntry]


class WebhookAccepted(Shape):
    accepted: Literal[True]
    provider: Literal["github", "gitlab", "gitea"]
    delivery: str


# --- writes ------------------------------------------------------------------------------


class WriteAccepted(Shape):
    task_id: str
    status: WriteState
    commit: str
    branch: str
    path: str


class WriteTask(Shape):
    id: str
    status: WriteState
    action: Literal["put", "delete"]
    object: str
    path: str | None
    mode: Literal["commit", "branch"]
    commit: str | None
    branch: str | None
    requested_by: str | None
    result: dict[str, Any] | None


# --- query parameters --------------------------------------------------------------------


class _Query(BaseModel):
    """The query parameters of one route (documented; the route reads them itself)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True)


def _limit() -> Any:
    return Field(default=MISSING, ge=1, le=1000, description="page size")


def _offset() -> Any:
    return Field(default=MISSING, ge=0, le=10**9, description="items to skip")


class ObjectsQuery(_Query):
    kind: Kind | MISSING = Field(default=MISSING, description="only this kind")
    phase: str | MISSING = Field(default=MISSING, description="only this phase")
    label: list[str] | MISSING = Field(
        default=MISSING,
        description="KEY or KEY=VALUE",
        json_schema_extra={"items": {"type": "string", "pattern": "^[^=]+(=.*)?$"}},
    )
    limit: int | MISSING = _limit()
    offset: int | MISSING = _offset()
    continue_: str | MISSING = Field(
        default=MISSING, alias="continue", description="the previous page's continue"
    )


class ExecutionsQuery(_Query):
    kind: Kind | MISSING = Field(default=MISSING, description="only this kind")
    name: str | MISSING = Field(default=MISSING, description="only this object name")
    status: list[ExecutionState] | MISSING = Field(
        default=MISSING, description="only these statuses"
    )
    limit: int | MISSING = _limit()
    offset: int | MISSING = _offset()


class ExecutionQuery(_Query):
    logs: Literal["true", "false"] | MISSING = Field(
        default=MISSING, description="include step logs"
    )


class PlanQuery(_Query):
    ref: str | MISSING = Field(
        default=MISSING,
        pattern=REF_PATTERN,
        description="a branch or commit; default: the watched branch",
    )


class ShardMember(Shape):
    identity: str
    url: str | None
    alive: bool


class ShardEntry(Shape):
    shard: int
    lease: str
    holder: str | None
    assigned_to: str | None
    state: str | None
    transitions: int | None = None
    renewed_at: str | None = None
    clusters: list[str]
    objects: dict[str, int] = Field(default_factory=dict)


class ShardMap(Shape):
    """Which replica holds which shard (one shard, held here, when not sharded)."""

    enabled: bool
    identity: str | None
    shards: int
    held_here: list[int]
    members: list[ShardMember]
    items: list[ShardEntry]
