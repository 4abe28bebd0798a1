"""The flow framework's request and answer bodies, snake_case as that API has them
(reference: flow-framework-create-workflow.txt), and the part of its search query language
``_search`` takes (:mod:`flow_framework_search` reads it).

A template's ``workflows`` stay free-form here: the repo's validation decides what its
graphs may hold (step types and inputs, edges, references).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, RootModel

from reconciler.api.shapes.common import RequestShape, Shape
from reconciler.core.step_types import WORKFLOW_STEP_TYPES

BASE = "/_plugins/_flow_framework/workflow"
ID_PATTERN = "[a-z0-9][-a-z0-9]{0,62}"
"""A workflow_id is a Workflow's name (a DNS label), so ``_steps`` and ``_search`` never
read as one."""
MILLIS = "milliseconds since the epoch"
_STEP_NAMES = "(?:" + "|".join(WORKFLOW_STEP_TYPES) + ")"
ProvisioningState = Literal["NOT_STARTED", "PROVISIONING", "FAILED", "COMPLETED"]

# --- templates ---------------------------------------------------------------------------


class FlowUser(Shape):
    name: str


class FlowTemplateRequest(RequestShape):
    """A workflow template. Its workflows are provision (required to run) and deprovision,
    each {nodes: [{id, type, user_inputs, previous_node_inputs, retries, timeout}], edges:
    [{source, dest}], user_params}; with validation=all (the default) the repo's validation
    decides what they may hold (step types and inputs, edges, references), a 400 with its
    diagnostics (as that API answers); otherwise a template it rejects is kept as a draft.
    The edges its nodes' previous_node_inputs imply are added to the stored template. The
    fields a GET adds (created_time, last_updated_time, last_provisioned_time, user) may be
    sent back and are dropped, as that API drops them."""

    name: str = Field(pattern=r"\S")
    description: str | MISSING = MISSING
    use_case: str | MISSING = MISSING
    version: dict[str, Any] | MISSING = MISSING
    workflows: dict[str, Any] | MISSING = MISSING
    ui_metadata: dict[str, Any] | MISSING = MISSING
    created_time: Any = Field(default=MISSING, description="dropped")
    last_updated_time: Any = Field(default=MISSING, description="dropped")
    last_provisioned_time: Any = Field(default=MISSING, description="dropped")
    user: Any = Field(default=MISSING, description="dropped")


class FlowTemplate(Shape):
    """A workflow template: name, description, use_case, version, workflows (provision,
    deprovision: nodes, edges, user_params), ui_metadata."""

    name: str
    description: str | MISSING = MISSING
    use_case: str | MISSING = MISSING
    version: dict[str, Any] | str | MISSING = MISSING
    workflows: dict[str, Any] | MISSING = MISSING
    """Provision and deprovision (a draft saved without them has none)."""
    ui_metadata: dict[str, Any] | str | MISSING = MISSING


class FlowWorkflow(FlowTemplate):
    last_provisioned_time: int | MISSING = Field(default=MISSING, description=MILLIS)
    created_time: int | MISSING = Field(default=MISSING, description=MILLIS)
    last_updated_time: int | MISSING = Field(default=MISSING, description=MILLIS)
    user: FlowUser | MISSING = MISSING
    """Who created it through this API."""
    draft: bool | MISSING = MISSING
    """A draft saved without validation (never committed)."""
    problem: str | MISSING | None = MISSING
    """Why a draft does not validate."""


# --- writes and runs ---------------------------------------------------------------------


class FlowWritten(Shape):
    workflow_id: str
    execution_id: str | MISSING = MISSING
    """With provision=true: the provision run started."""
    draft: bool | MISSING = MISSING
    problem: str | MISSING = MISSING
    commit: str | MISSING = MISSING
    branch: str | MISSING = MISSING
    task_id: str | MISSING = MISSING


class FlowDeleted(Shape):
    index: str = Field(alias="_index")
    id: str = Field(alias="_id")
    result: Literal["deleted"]
    workflow_id: str
    commit: str | MISSING = MISSING
    branch: str | MISSING = MISSING
    task_id: str | MISSING = MISSING


class FlowRun(Shape):
    workflow_id: str
    execution_id: str


class FlowResource(Shape):
    workflow_step_name: str
    workflow_step_id: str
    resource_type: str | None
    resource_id: str | None


class FlowStatus(Shape):
    workflow_id: str
    state: ProvisioningState
    error: str | MISSING = MISSING
    provisioning_progress: Literal["NOT_STARTED", "IN_PROGRESS", "DONE", "FAILED"] | MISSING = (
        MISSING
    )
    provision_start_time: int | MISSING = Field(default=MISSING, description=MILLIS)
    provision_end_time: int | MISSING = Field(default=MISSING, description=MILLIS)
    resources_created: list[FlowResource]


class FlowStepType(Shape):
    inputs: list[str]
    optional_inputs: list[str]
    outputs: list[str]
    required_plugins: list[str]
    description: str


class FlowSteps(RootModel[dict[str, FlowStepType]]):
    """The step types, by name."""


# --- search ------------------------------------------------------------------------------

_CLOSED = ConfigDict(extra="forbid")


class FlowMatchText(BaseModel):
    model_config = _CLOSED
    query: str


class FlowTermValue(BaseModel):
    model_config = _CLOSED
    value: str


def _one_field(values: Any) -> Any:
    return Annotated[dict[str, values], Field(min_length=1, max_length=1)]


class FlowMatchAll(BaseModel):
    model_config = _CLOSED
    match_all: dict[str, Any] = Field(max_length=0)


class FlowMatch(BaseModel):
    model_config = _CLOSED
    match: _one_field(str | FlowMatchText)  # type: ignore[valid-type]


class FlowTerm(BaseModel):
    model_config = _CLOSED
    term: _one_field(str | FlowTermValue)  # type: ignore[valid-type]


class FlowTerms(BaseModel):
    model_config = _CLOSED
    terms: _one_field(list[str])  # type: ignore[valid-type]


class FlowPrefix(BaseModel):
    model_config = _CLOSED
    prefix: _one_field(str | FlowTermValue)  # type: ignore[valid-type]


class FlowIdValues(BaseModel):
    model_config = _CLOSED
    values: list[str]


class FlowIds(BaseModel):
    model_config = _CLOSED
    ids: FlowIdValues


class FlowBoolBody(BaseModel):
    model_config = _CLOSED
    must: FlowQuery | list[FlowQuery] | MISSING = MISSING
    filter: FlowQuery | list[FlowQuery] | MISSING = MISSING
    should: FlowQuery | list[FlowQuery] | MISSING = MISSING
    must_not: FlowQuery | list[FlowQuery] | MISSING = MISSING
    minimum_should_match: int | MISSING = Field(default=MISSING, ge=0)


class FlowBool(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=True)
    bool_: FlowBoolBody = Field(alias="bool")


class FlowQuery(
    RootModel[FlowMatchAll | FlowMatch | FlowTerm | FlowTerms | FlowPrefix | FlowIds | FlowBool]
):
    """One query clause: match_all, match, term, terms, prefix, ids or bool."""


FlowBoolBody.model_rebuild()


class FlowSearchRequest(RequestShape):
    query: FlowQuery | MISSING = MISSING
    from_: int | MISSING = Field(default=MISSING, alias="from", ge=0, le=10000)
    size: int | MISSING = Field(default=MISSING, ge=0, le=10000)


class FlowShards(Shape):
    total: int
    successful: int
    skipped: int
    failed: int


class FlowHitCount(Shape):
    value: int
    relation: str


class FlowHit(Shape):
    index: str = Field(alias="_index")
    id: str = Field(alias="_id")
    score: float = Field(alias="_score")
    source: FlowTemplate = Field(alias="_source")


class FlowHits(Shape):
    total: FlowHitCount
    max_score: float | None
    hits: list[FlowHit]


class FlowSearchAnswer(Shape):
    took: int
    timed_out: bool
    shards: FlowShards = Field(alias="_shards")
    hits: FlowHits


# --- query parameters --------------------------------------------------------------------


class CreateQuery(BaseModel):
    provision: Literal["true", "false"] | MISSING = Field(
        default=MISSING, description="provision right after"
    )
    validation: str | MISSING = Field(
        default=MISSING,
        description="all (default) validates; any other value, e.g. none, saves a draft",
    )


class UpdateQuery(BaseModel):
    validation: str | MISSING = Field(
        default=MISSING,
        description="all (default) validates; any other value, e.g. none, saves a draft",
    )


class StepsQuery(BaseModel):
    workflow_step: str | MISSING = Field(
        default=MISSING,
        pattern=f"^{_STEP_NAMES}(?:,{_STEP_NAMES})*$",
        description="only these step types, comma-separated",
    )


class StatusQuery(BaseModel):
    all: Literal["true", "false"] | MISSING = Field(
        default=MISSING, description="add progress and times"
    )
