"""Workflow: a user-defined DAG of typed steps, with the run settings of a dashboard.

The graph format follows the Flow Framework templates (``nodes``, ``edges``,
``user_inputs``, ``previous_node_inputs``). Here each part only has its shape checked;
step types, cycles, duplicate ids and substitutions are checked by the validator, which
knows the step catalogue and the whole graph.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.common import (
    Duration,
    HttpUrl,
    NonEmptyStr,
    PlainValue,
    ProjectRef,
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
        return value
    raise PydanticCustomError(
        "cron",
        f"cron {value!r} is not a cron expression: five fields (minute hour day month "
        "weekday), e.g. '0 0 * * 1', or a macro such as @daily",
    )


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


class Schedule(SpecModel):
    cron: Cron
    skip_on_failure: bool = Field(
        default=False, description="true: no scheduled run while the last one failed"
    )
    catch_up: bool = Field(default=False, description="true: run missed slots after downtime")
    timezone: NonEmptyStr | None = Field(
        default=None, description="IANA name, e.g. Europe/Paris; default UTC"
    )


def _default_events() -> list[NotificationEvent]:
    return ["complete", "fail"]


class Notifications(SpecModel):
    webhook: HttpUrl
    events: list[NotificationEvent] = Field(default_factory=_default_events)
    secret: NonEmptyStr | None = Field(
        default=None,
        description="a secret's name on the daemon host; signs each body "
        "(X-Reconciler-Signature: sha256=<hmac>)",
    )

    @field_validator("events")
    @classmethod
    def _no_repeats(cls, events: list[NotificationEvent]) -> list[NotificationEvent]:
        repeated = sorted({e for e in events if events.count(e) > 1})
        if repeated:
            raise PydanticCustomError(
                "events", f"events lists {', '.join(repeated)} more than once"
            )
        return events


class WorkflowConfig(SpecModel):
    timeout: Duration | None = Field(default=None, description="whole execution; none: no limit")
    retries: int = Field(default=0, ge=0, description="retries of a failed step")
    retry_delay: Duration = "30s"
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
    environments: list[str] = Field(default_factory=list)
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


class WorkflowDocument(Document):
    """A Workflow document."""

    kind: Literal["Workflow"]
    spec: WorkflowSpec
