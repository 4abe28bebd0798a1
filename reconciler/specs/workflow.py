"""Workflow: a user-defined DAG of typed steps, with the run settings of a dashboard.

The graph format follows the Flow Framework templates (``nodes``, ``edges``,
``user_inputs``, ``previous_node_inputs``). A schedule's ``cron`` and ``timezone`` are
checked by croniter and zoneinfo, as the daemon's scheduler reads them, so validate
refuses what the daemon would. Otherwise each part only has its shape checked;
step types, cycles, duplicate ids and substitutions are checked by the validator, which
knows the step catalogue and the whole graph.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from reconciler.core import schedule
from reconciler.specs.common import (
    Duration,
    HttpUrl,
    NonEmptyStr,
    PlainValue,
    ProjectRef,
    SecretName,
    SpecModel,
    seconds,
)
from reconciler.specs.envelope import Document

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_NODE_ID = re.compile(NODE_ID_PATTERN)
CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#LW-]+$")

Priority = Literal["low", "medium", "high", "critical"]
Trigger = Literal["on_change", "manual"]
NotificationEvent = Literal["start", "complete", "fail", "cancel"]
EnvironmentStrategy = Literal["ordered", "round_robin", "time"]
"""How a run picks one of the clusters its ``environments`` name: ``ordered``, the first
one that is Ready (else the first); ``round_robin``, the one after the cluster the
previous run targeted; ``time``, the Ready one with the fewest executions queued or
running on it now, so the run starts soonest (ties in listed order)."""
StepLogLevel = Literal["error", "warning", "info"]
ENVIRONMENT_LABEL = "reconciler/environment"
"""A Cluster label: the environment the cluster is in (a Workflow's environments name it)."""
EMAIL_PATTERN = r"^[^@\s,<>]+@[^@\s,<>]+$"
_EMAIL = re.compile(EMAIL_PATTERN)


def _check_node_id(value: str) -> str:
    if len(value) > 63 or not _NODE_ID.fullmatch(value):
        raise PydanticCustomError(
            "node_id",
            f"node id {value!r} is not an identifier: letters, digits, '_' and '-', "
            "starting with a letter or '_', at most 63 chars (it is used in ${{ id.output }})",
        )
    return value


def _check_cron(value: str) -> str:
    text = value.strip()
    fields = text.split()
    if text in CRON_MACROS or (
        len(fields) in (5, 6) and all(_CRON_FIELD.fullmatch(f) for f in fields)
    ):
        problem = schedule.cron_problem(value)  # what the daemon's scheduler would refuse
        if problem is None:
            return value
        raise PydanticCustomError("cron", problem)
    raise PydanticCustomError(
        "cron",
        f"cron {value!r} is not a cron expression: five fields (minute hour day month "
        "weekday), e.g. '0 0 * * 1', or a macro such as @daily",
    )


def _check_timezone(value: str) -> str:
    problem = schedule.timezone_problem(value)
    if problem is not None:
        raise PydanticCustomError("timezone", problem)
    return value


NodeId = Annotated[
    str,
    AfterValidator(_check_node_id),
    WithJsonSchema({"type": "string", "pattern": NODE_ID_PATTERN, "maxLength": 63}),
]
Cron = Annotated[
    str,
    AfterValidator(_check_cron),
    WithJsonSchema({"type": "string", "description": "five-field cron, or @daily etc."}),
]
TimeZone = Annotated[
    NonEmptyStr,
    AfterValidator(_check_timezone),
]


class Schedule(SpecModel):
    cron: Cron
    skip_on_failure: bool = Field(
        default=False, description="true: no scheduled run while the last one failed"
    )
    catch_up: bool = Field(default=False, description="true: run missed slots after downtime")
    timezone: TimeZone | None = Field(
        default=None, description="IANA name, e.g. Europe/Paris; default UTC"
    )


def _default_events() -> list[NotificationEvent]:
    return ["complete", "fail"]


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise PydanticCustomError(
            "email", f"{value!r} is not an email address (one address, e.g. ops@example.com)"
        )
    return value


EmailAddress = Annotated[
    str,
    AfterValidator(_check_email),
    WithJsonSchema({"type": "string", "pattern": EMAIL_PATTERN}),
]


class SlackChannel(SpecModel):
    """A Slack incoming webhook. Its URL is a credential, so only a secret's name is here."""

    secret: SecretName = Field(
        description="a secret on the daemon host holding the incoming webhook's URL"
    )


class EmailChannel(SpecModel):
    """Mail through the daemon's SMTP server (``notifications.smtp`` of its config)."""

    to: list[EmailAddress] = Field(min_length=1, description="recipients")


class Notifications(SpecModel):
    enabled: bool = Field(
        default=True,
        description="false: nothing is sent (the channels stay configured). true with no "
        "channel of its own: the daemon config's notifications.defaults channels",
    )
    webhook: HttpUrl | None = Field(default=None, description="POSTs each event as JSON")
    slack: SlackChannel | None = None
    email: EmailChannel | None = None
    events: list[NotificationEvent] = Field(default_factory=_default_events)
    secret: NonEmptyStr | None = Field(
        default=None,
        description="a secret's name on the daemon host; signs each webhook body "
        "(X-Reconciler-Signature: sha256=<hmac>)",
    )

    @model_validator(mode="after")
    def _secret_needs_webhook(self) -> Notifications:
        if self.secret is not None and self.webhook is None:
            raise PydanticCustomError(
                "secret_without_webhook",
                "secret signs the webhook's bodies, and no webhook is given: add webhook "
                "or remove secret",
            )
        return self

    @field_validator("events")
    @classmethod
    def _no_repeats(cls, events: list[NotificationEvent]) -> list[NotificationEvent]:
        repeated = sorted({e for e in events if events.count(e) > 1})
        if repeated:
            raise PydanticCustomError(
                "events", f"events lists {', '.join(repeated)} more than once"
            )
        return events


class StepLogs(SpecModel):
    """Which log lines of this workflow's steps the daemon keeps (and the API serves)."""

    enabled: bool = Field(default=True, description="false: no step log line is kept")
    level: StepLogLevel = Field(
        default="info", description="the lowest level kept: error < warning < info"
    )


class WorkflowConfig(SpecModel):
    timeout: Duration | None = Field(default=None, description="whole execution; none: no limit")
    retries: int = Field(default=0, ge=0, description="retries of a failed step")
    retry_delay: Duration = "30s"
    retry_enabled: bool = Field(
        default=True,
        description="false: no step is retried, whatever retries and a node's retries say",
    )
    logs: StepLogs = Field(default_factory=StepLogs)
    schedule: Schedule | None = None
    notifications: Notifications | None = None

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else seconds(self.timeout)

    @property
    def retry_delay_seconds(self) -> float:
        return seconds(self.retry_delay)


class Node(SpecModel):
    id: NodeId
    type: NonEmptyStr = Field(description="a step type, e.g. http_request, k8s_job")
    user_inputs: dict[str, PlainValue] = Field(default_factory=dict)
    previous_node_inputs: dict[str, str] = Field(
        default_factory=dict, description="{upstream_node_id: output_key}"
    )
    retries: int | None = Field(default=None, ge=0, description="overrides config.retries")
    timeout: Duration | None = Field(default=None, description="this step; none: no limit")

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else seconds(self.timeout)


class Edge(SpecModel):
    source: NonEmptyStr
    dest: NonEmptyStr


class Graph(SpecModel):
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)


class WorkflowGraphs(SpecModel):
    provision: Graph
    deprovision: Graph | None = Field(
        default=None, description="run when the workflow is removed or deprovisioned"
    )


class WorkflowSpec(SpecModel):
    project: ProjectRef | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # absent stays absent: no spec hash moves
        description="the Project whose roles say who may run and change it (docs/api.md)",
    )
    description: str = ""
    use_case: str | None = None
    priority: Priority = "medium"
    tags: list[str] = Field(default_factory=list)
    environments: list[NonEmptyStr] = Field(
        default_factory=list,
        description="the clusters a run targets: each names a Cluster, by its name or its "
        f"label {ENVIRONMENT_LABEL}",
    )
    environment_strategy: EnvironmentStrategy = Field(
        default="ordered",
        description="how a run picks among the environments' clusters: ordered (the first "
        "Ready one), round_robin (the one after the previous run's), time (the Ready one "
        "with the fewest executions queued or running)",
    )
    suspend: bool = Field(default=False, description="true: no scheduled or Git-triggered runs")
    trigger: Trigger = Field(
        default="manual",
        description="on_change: run when the spec or its params change; manual: on request",
    )
    config: WorkflowConfig = Field(default_factory=WorkflowConfig)
    user_params: dict[str, PlainValue] = Field(
        default_factory=dict, description="values for ${{ name }} in user_inputs"
    )
    workflows: WorkflowGraphs

    @model_validator(mode="after")
    def _strategy_needs_environments(self) -> WorkflowSpec:
        # The default may stand alone (a canonical document read back carries it).
        if self.environment_strategy != "ordered" and not self.environments:
            raise PydanticCustomError(
                "strategy_without_environments",
                "environment_strategy picks among environments, and none are listed: add "
                "environments or remove environment_strategy",
            )
        repeated = sorted({e for e in self.environments if self.environments.count(e) > 1})
        if repeated:
            raise PydanticCustomError(
                "environments", f"environments lists {', '.join(repeated)} more than once"
            )
        return self


class WorkflowDocument(Document):
    """A Workflow document."""

    kind: Literal["Workflow"]
    spec: WorkflowSpec
