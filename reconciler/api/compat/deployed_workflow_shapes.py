"""The deployed-workflow endpoint's request and answers, snake_case as that API has them
(reference: deployed-workflow-endpoint.txt); ``inputSchema`` keeps its camelCase."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from reconciler.api.shapes.common import RequestShape, Shape
from reconciler.specs.workflow import Priority

# --- the request -------------------------------------------------------------------------


class EndpointKickoffAction(RequestShape):
    action_type: Literal["kickoff"]
    kickoff_inputs: str | None = Field(
        default=None,
        description="base64 of a JSON object of params",
        json_schema_extra={"contentEncoding": "base64"},
    )


class EndpointConfigurationAction(RequestShape):
    action_type: Literal["get-configuration"]


class EndpointAssetDataAction(RequestShape):
    action_type: Literal["get-asset-data"]
    get_asset_data_inputs: list[str] = Field(max_length=100, description="repo paths under assets/")


class EndpointMcpToolsAction(RequestShape):
    action_type: Literal["get-mcp-tool-definitions"]


class EndpointRequest(RequestShape):
    request: Annotated[
        EndpointKickoffAction
        | EndpointConfigurationAction
        | EndpointAssetDataAction
        | EndpointMcpToolsAction,
        Field(discriminator="action_type"),
    ]


# --- the answers -------------------------------------------------------------------------


class EndpointKickoff(Shape):
    trace_id: str
    """The execution the kickoff started."""


class EndpointAgent(Shape):
    """The runner of one step type the workflow uses; its one tool is that type."""

    id: str
    """The step type."""
    name: str
    crew_ai_role: str
    crew_ai_goal: str
    crew_ai_backstory: str
    crew_ai_allow_delegation: bool
    tool_instance_ids: list[str]
    llm_provider_model_id: str


class EndpointTask(Shape):
    """One node of the provision graph."""

    id: str
    """The node's id."""
    type: str
    description: str
    expected_output: str
    """The outputs its step type produces and which tasks take them."""
    assigned_agent_id: str
    """The agent of its step type."""
    tool_instance_id: str
    user_inputs: dict[str, Any]
    previous_node_inputs: dict[str, str]
    depends_on: list[str]


class EndpointLanguageModel(Shape):
    """A Deployment the workflow's steps name."""

    model_id: str
    model_name: str
    endpoint_name: str | None
    endpoint_url: str | None
    phase: str | None


class EndpointToolInstance(Shape):
    """A step type the workflow uses, with the JSON Schema of its inputs."""

    id: str
    name: str
    description: str
    input_schema: dict[str, Any]


class EndpointWorkflow(Shape):
    id: str
    name: str
    description: str
    use_case: str | None
    priority: Priority | None
    tags: list[str]
    environments: list[str]
    suspend: bool
    trigger: str | None
    config: dict[str, Any]
    user_params: dict[str, Any]
    agent_ids: list[str]
    """The step types its tasks use."""
    task_ids: list[str]
    """The provision graph's node ids."""
    crew_ai_process: Literal["sequential"]
    """Each task runs after the tasks it depends on (the graph's edges)."""
    manager_agent_id: None
    """No manager: the graph decides."""
    is_conversational: Literal[False]
    """A run takes its inputs once, at kickoff."""
    llm_provider_model_id: str
    """The default language model (a Deployment the steps name), or ''."""
    has_deprovision: bool


class EndpointConfigurationBody(Shape):
    agents: list[EndpointAgent]
    default_language_model_id: str | None
    language_models: list[EndpointLanguageModel]
    mcp_instances: list[dict[str, Any]]
    tasks: list[EndpointTask]
    tool_instances: list[EndpointToolInstance]
    workflow: EndpointWorkflow


class EndpointConfiguration(Shape):
    configuration: EndpointConfigurationBody


class EndpointAssetData(Shape):
    asset_data: dict[str, str]
    """Base64 of each file found, by the path asked for."""
    unavailable_assets: list[str]


class EndpointMcpTool(Shape):
    name: str
    description: str
    input_schema: dict[str, Any] = Field(alias="inputSchema")
    parameters: dict[str, Any]
    """The same schema, under the reference's other name."""


class EndpointMcpTools(Shape):
    ready: bool
    mcp_tool_definitions: dict[str, list[EndpointMcpTool]]


EndpointAnswer = EndpointKickoff | EndpointConfiguration | EndpointAssetData | EndpointMcpTools
