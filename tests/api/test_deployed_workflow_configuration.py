"""get-configuration of the deployed-workflow endpoint carries the document's keys
(deployed-workflow-endpoint.txt), each filled from the Workflow: agents and their ids,
tasks with expected_output and assigned_agent_id, and the workflow's crew_ai_process,
manager_agent_id, is_conversational and llm_provider_model_id. The request is the
document's own example body, sent over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import API_SEED, StartApi, wait_until
from tests.api.test_deployed_workflow import CHAT_EVAL, CLOUD, ENDPOINT

# The document's example request, verbatim.
GET_CONFIGURATION = {"request": {"action_type": "get-configuration"}}
DOCUMENT_WORKFLOW_KEYS = {
    "agent_ids", "crew_ai_process", "description", "id", "is_conversational",
    "llm_provider_model_id", "manager_agent_id", "name", "task_ids",
}  # fmt: skip
DOCUMENT_TASK_KEYS = {"assigned_agent_id", "description", "expected_output", "id"}


async def _configuration(api: Any, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        reply = await api.client.post(ENDPOINT.format(name), json=GET_CONFIGURATION)
        return reply.json()["configuration"] if reply.status == 200 else None

    found: dict[str, Any] = await wait_until(f"{name}'s configuration", probe)
    return found


async def test_the_documents_keys_are_filled_from_the_workflow(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "cloud.yaml": CLOUD, "chat.yaml": CHAT_EVAL})
    config = await _configuration(api, "chat-eval")
    workflow = config["workflow"]
    assert set(workflow) >= DOCUMENT_WORKFLOW_KEYS
    assert workflow["agent_ids"] == ["wait_ready", "noop"]
    assert workflow["task_ids"] == ["wait", "note"]
    assert workflow["crew_ai_process"] == "sequential"
    assert workflow["manager_agent_id"] is None and workflow["is_conversational"] is False
    assert workflow["llm_provider_model_id"] == "gpt-mini-endpoint"
    assert workflow["llm_provider_model_id"] == config["default_language_model_id"]

    wait, note = config["tasks"]
    assert set(wait) >= DOCUMENT_TASK_KEYS and set(note) >= DOCUMENT_TASK_KEYS
    assert wait["assigned_agent_id"] == "wait_ready" and note["assigned_agent_id"] == "noop"
    assert wait["expected_output"] == "outputs: endpoint_url; handed to note (endpoint_url)"
    assert note["expected_output"] == "no outputs: done when it succeeds"

    agents = {a["id"]: a for a in config["agents"]}
    assert list(agents) == workflow["agent_ids"]
    tools = {t["id"] for t in config["tool_instances"]}
    for agent in agents.values():
        assert set(agent["tool_instance_ids"]) <= tools
        assert agent["crew_ai_goal"] and agent["crew_ai_backstory"]
    assert "(wait)" in agents["wait_ready"]["crew_ai_backstory"]
    assert {t["assigned_agent_id"] for t in config["tasks"]} == set(agents)

    plain = (await _configuration(api, "train"))["workflow"]
    assert plain["llm_provider_model_id"] == "" and plain["agent_ids"] == ["noop"]
