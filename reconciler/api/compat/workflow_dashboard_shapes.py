"""The workflow dashboard's request and answer bodies, camelCase as that API has them
(reference: workflow-dashboard-api.md); Python names are snake_case with camelCase
aliases, and ``workflows`` and ``user_params`` are our own Workflow's fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from reconciler.api.compat.workflow_dashboard_fields import TRACE_LEVELS
from reconciler.api.shapes.common import RequestShape, Scalar, Shape, literal_of
from reconciler.core.step_types import WORKFLOW_STEP_TYPES
from reconciler.specs.workflow import (
    NODE_ID_PATTERN,
    EnvironmentStrategy,
    NotificationEvent,
    Priority,
)

if TYPE_CHECKING:
    StepType = str
    TraceLevel = str
else:
    StepType = literal_of(WORKFLOW_STEP_TYPES)
    TraceLevel = literal_of(tuple(TRACE_LEVELS))

WorkflowStatus = Literal["active", "inactive"]
RunStatus = Literal["running", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed"]

_CAMEL = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)
_STRATEGY_WORDS = (
    "spec.environment_strategy, how a run picks among its environments' clusters: ordered "
    "(the first Ready one), round_robin (the one after the previous run's), time (the Ready "
    "one with the fewest executions queued or running)"
)
_TRACE_WORDS = "spec.config.logs.level, the lowest step log level kept: " + ", ".join(
    f"{trace} -> {level}" for trace, level in TRACE_LEVELS.items()
)
_OPTIONS_WORDS = (
    "enableRetry -> spec.config.retry_enabled (turned on with no retries: config.retries "
    "3), enableLogging -> spec.config.logs.enabled, enableNotifications -> "
    "spec.config.notifications.enabled (422 when neither the workflow nor the daemon "
    "config's notifications.defaults names a channel)"
)


class _Answer(Shape):
    model_config = _CAMEL


# --- create and update -------------------------------------------------------------------


class DashboardGraphNode(BaseModel):
    """One node of a graph, in our Workflow's shape (validated with the repo)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=NODE_ID_PATTERN, max_length=63)
    type: StepType
    user_inputs: dict[str, Any] | MISSING = MISSING
    previous_node_inputs: dict[str, str] | MISSING = MISSING


class DashboardGraphEdge(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    dest: str


class DashboardGraph(BaseModel):
    model_config = ConfigDict(extra="allow")

    nodes: list[DashboardGraphNode] = Field(min_length=1)
    edges: list[DashboardGraphEdge] | MISSING = MISSING


class DashboardGraphs(BaseModel):
    """Our Workflow's graphs, `{provision: {nodes, edges}, deprovision?}`; the repo is
    validated with them before anything is committed (422 otherwise)."""

    model_config = ConfigDict(extra="forbid")

    provision: DashboardGraph
    deprovision: DashboardGraph | MISSING = MISSING


class DashboardOptions(BaseModel):
    """enableRetry -> spec.config.retry_enabled, enableLogging -> spec.config.logs.enabled,
    enableNotifications -> spec.config.notifications.enabled."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True,
                              serialize_by_alias=True)  # fmt: skip

    enable_notifications: bool | MISSING = MISSING
    enable_logging: bool | MISSING = MISSING
    enable_retry: bool | MISSING = MISSING


def _name(default: Any) -> Any:
    return Field(
        default=default,
        min_length=1,
        max_length=200,
        pattern="[A-Za-z0-9]",
        description="create: the id is its letters and digits joined by '-'; update: the "
        "name shown (the id stays)",
    )


class DashboardUpdateRequest(RequestShape):
    model_config = ConfigDict(alias_generator=to_camel)

    name: str | MISSING = _name(MISSING)
    description: str | MISSING = MISSING
    priority: Priority | MISSING = MISSING
    status: WorkflowStatus | MISSING = MISSING
    tags: list[str] | MISSING = MISSING
    environments: list[Annotated[str, Field(min_length=1)]] | dict[str, bool] | MISSING = Field(
        default=MISSING,
        description="the clusters runs target (spec.environments): each names a Cluster by "
        "its name or its label reconciler/environment; the object form keeps the true ones",
    )
    environment_strategy: EnvironmentStrategy | MISSING = Field(
        default=MISSING, description=_STRATEGY_WORDS
    )
    trace_level: TraceLevel | MISSING = Field(default=MISSING, description=_TRACE_WORDS)
    options: DashboardOptions | MISSING = Field(default=MISSING, description=_OPTIONS_WORDS)
    user_params: dict[str, Scalar] | MISSING = Field(default=MISSING, alias="user_params")
    workflows: DashboardGraphs | MISSING = Field(
        default=MISSING,
        description="our Workflow's graphs: {provision: {nodes, edges}, deprovision?}; the "
        "repo is validated with them before anything is committed (422 otherwise)",
    )


class DashboardCreateRequest(DashboardUpdateRequest):
    """Without workflows a workflow is created inactive and stays so until an update gives
    it workflows."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["status"], "properties": {"status": {"const": "active"}}},
            "then": {"required": ["workflows"]},
        }
    )

    name: str = _name(...)

    @model_validator(mode="after")
    def _active_needs_graphs(self) -> DashboardCreateRequest:
        if self.status == "active" and self.workflows is MISSING:
            raise ValueError(
                "status: a workflow created without a graph is inactive until an update "
                "gives it workflows"
            )
        return self


class DashboardExecuteRequest(RequestShape):
    unknown_field = "unknown field {field!r}; execute takes environment, parameters"
    problems = {
        "environment": "environment must be a string",
        "parameters": "parameters must be an object",
    }

    environment: str | None = None
    parameters: dict[str, Scalar] | None = None


# --- answers -----------------------------------------------------------------------------


class DashboardCreateAnswer(_Answer):
    id: str
    name: str
    description: str
    status: WorkflowStatus
    priority: Priority
    creator: str
    created_at: str
    commit: str
    branch: str
    task_id: str


class DashboardUpdateAnswer(_Answer):
    id: str
    name: str
    description: str
    status: WorkflowStatus
    priority: Priority
    updated_at: str | None
    commit: str
    branch: str
    task_id: str


class DashboardDeleteAnswer(_Answer):
    success: bool
    message: str
    commit: str
    branch: str
    task_id: str


class DashboardWorkflowSummary(_Answer):
    id: str
    name: str
    description: str
    status: WorkflowStatus
    priority: Priority
    last_run: str | None


class DashboardWorkflowPage(_Answer):
    workflows: list[DashboardWorkflowSummary]
    total: int
    page: int
    page_size: int


class DashboardStep(_Answer):
    name: str
    status: StepStatus
    duration: str | None


class DashboardResources(_Answer):
    """What the graph's k8s_job nodes and the Deployments it names ask for, all at once."""

    cpu: str
    memory: str
    gpu: str


class DashboardChannels(_Answer):
    """The channels this workflow's events go to."""

    email: bool
    slack: bool
    webhook: bool


class DashboardSchedule(_Answer):
    type: Literal["cron"]
    cron: str
    description: str
    skip_on_failure: bool
    catch_up: bool


class DashboardConfig(_Answer):
    timeout: str | None
    retries: int = Field(ge=0, description="0 with retry off")
    retry_delay: str
    compute_profile: Literal["GPU-Optimized", "CPU-Only", "None"]
    resources: DashboardResources
    notifications: DashboardChannels
    notification_events: list[NotificationEvent]
    schedule: DashboardSchedule | MISSING = MISSING


class DashboardOptionsState(_Answer):
    """The options as the Workflow's spec has them (see the create request's options)."""

    enable_notifications: bool
    enable_logging: bool
    enable_retry: bool


class DashboardWorkflow(DashboardWorkflowSummary):
    creator: str | None = Field(description="the author of the commit that added its file")
    created_at: str | None = Field(description="that commit's author date")
    environments: list[str]
    environment_strategy: EnvironmentStrategy = Field(description=_STRATEGY_WORDS)
    trace_level: TraceLevel = Field(description=_TRACE_WORDS)
    options: DashboardOptionsState
    tags: list[str]
    steps: list[DashboardStep]
    config: DashboardConfig


class DashboardExecuteAnswer(_Answer):
    execution_id: str
    workflow_id: str
    status: RunStatus
    start_time: str
    estimated_duration: str | None


class DashboardLogLine(_Answer):
    timestamp: str
    level: Literal["info", "warning", "error"]
    message: str


class DashboardStepExecution(_Answer):
    name: str
    status: StepStatus
    start_time: str | None
    end_time: str | None
    duration: str | None
    error: str | MISSING = MISSING
    logs: list[DashboardLogLine]


class DashboardExecution(_Answer):
    id: str
    workflow_id: str
    status: RunStatus
    start_time: str
    """When it started (when it was queued, while it waits)."""
    end_time: str | None
    duration: str | None
    executor: str
    error: str | MISSING = MISSING
    environment: str | MISSING = Field(
        default=MISSING, description="the environment the run targeted"
    )
    cluster: str | MISSING = Field(default=MISSING, description="the cluster the run targeted")
    step_executions: list[DashboardStepExecution] | MISSING = MISSING
    """On one execution, not in lists."""
    parameters: dict[str, Any] | MISSING = MISSING
    """On one execution, not in lists."""


class DashboardExecutionPage(_Answer):
    executions: list[DashboardExecution]
    total: int
    limit: int
    offset: int


class DashboardCancel(_Answer):
    success: Literal[True]
    message: str
    execution_id: str
    status: Literal["cancelling", "cancelled"]
    detail: str


# --- query parameters --------------------------------------------------------------------


class WorkflowsQuery(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    status: WorkflowStatus | MISSING = Field(default=MISSING, description="only this status")
    priority: Priority | MISSING = Field(default=MISSING, description="only this priority")
    search: str | MISSING = Field(default=MISSING, description="in the name or description")
    page: int | MISSING = Field(default=MISSING, ge=1, le=10**6, description="page")
    page_size: int | MISSING = Field(default=MISSING, ge=1, le=1000, description="page size")


class ExecutionsQuery(BaseModel):
    status: RunStatus | MISSING = Field(default=MISSING, description="only this status")
    limit: int | MISSING = Field(default=MISSING, ge=1, le=1000, description="page size")
    offset: int | MISSING = Field(default=MISSING, ge=0, le=10**9, description="skip")
