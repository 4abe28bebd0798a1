"""Where the flow framework document says what that API does, ours does it too: edges that
``previous_node_inputs`` imply are added to the stored template, a template that fails
validation is a 400, and ``_provision`` takes substitution values as query parameters.
Over real HTTP against a real daemon and Git remote, starting from the document's own
example template (flow-framework-create-workflow.txt)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.api.conftest import StartApi
from tests.api.test_flow_framework_api import (
    BASE,
    REFERENCE_JSON,
    _assert_value_nowhere,
    _served,
    _state,
)

REFERENCE_EDGES = REFERENCE_JSON["workflows"]["provision"]["edges"]


def _without_edges(*, keep_key: bool) -> dict[str, Any]:
    """The example as the document says it may be sent: its edges left to be implied."""
    template = copy.deepcopy(REFERENCE_JSON)
    graph = template["workflows"]["provision"]
    if keep_key:
        graph["edges"] = []
    else:
        del graph["edges"]
    return template


@pytest.mark.parametrize("keep_key", [False, True], ids=["no edges key", "edges: []"])
async def test_edges_implied_by_previous_node_inputs_are_stored(
    start_api: StartApi, keep_key: bool
) -> None:
    api = await start_api()
    created = await api.client.post(BASE, role="editor", json=_without_edges(keep_key=keep_key))
    assert created.status == 201, created.text
    workflow_id = created.json()["workflow_id"]
    written = yaml.safe_load(api.remote.read(f"workflows/{workflow_id}.yaml"))
    assert written["spec"]["workflows"]["provision"]["edges"] == REFERENCE_EDGES
    served = await _served(api, workflow_id)
    assert served["workflows"]["provision"]["edges"] == REFERENCE_EDGES

    # An edge given already is not added twice; an extra one for sequencing is kept.
    extra = copy.deepcopy(REFERENCE_JSON)
    extra["workflows"]["provision"]["edges"] = [
        {"source": "create_connector_1", "dest": "deploy_model_3"},
        REFERENCE_EDGES[1],
    ]
    again = await api.client.post(BASE, role="editor", json=extra)
    assert again.status == 201, again.text
    spec = yaml.safe_load(api.remote.read(f"workflows/{again.json()['workflow_id']}.yaml"))
    assert spec["spec"]["workflows"]["provision"]["edges"] == [
        {"source": "create_connector_1", "dest": "deploy_model_3"},
        REFERENCE_EDGES[1],
        REFERENCE_EDGES[0],
    ]


def _broken(change: str) -> dict[str, Any]:
    template = copy.deepcopy(REFERENCE_JSON)
    graph = template["workflows"]["provision"]
    if change == "cycle":
        graph["edges"].append({"source": "deploy_model_3", "dest": "create_connector_1"})
    elif change == "duplicate id":
        graph["nodes"][2]["id"] = "register_model_2"
    elif change == "unknown step type":
        graph["nodes"][2]["type"] = "deploy_somewhere"
    elif change == "input from no node":
        graph["nodes"][2]["previous_node_inputs"] = {"register_model_9": "model_id"}
    elif change == "unknown template field":
        template["owner"] = "someone"
    elif change == "no name":
        del template["name"]
    return template


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("cycle", "cycle"),
        ("duplicate id", "register_model_2"),
        ("unknown step type", "deploy_somewhere"),
        ("input from no node", "register_model_9"),
        ("unknown template field", "owner"),
        ("no name", "name"),
    ],
)
async def test_a_template_that_fails_validation_is_a_400(
    start_api: StartApi, change: str, words: str
) -> None:
    api = await start_api()
    before = api.remote.tip()
    reply = await api.client.post(BASE, role="editor", json=_broken(change))
    assert reply.status == 400, reply.text
    assert words in reply.json()["detail"] or words in reply.text
    assert api.remote.tip() == before


def _placeholder_template() -> dict[str, Any]:
    template = copy.deepcopy(REFERENCE_JSON)
    connector = template["workflows"]["provision"]["nodes"][0]["user_inputs"]
    connector["credential"] = {"openAI_key": "${{ openai_key }}"}
    return template


async def test_provision_takes_substitution_values_as_query_parameters(
    start_api: StartApi,
) -> None:
    api = await start_api()
    client = api.client
    created = await client.post(BASE, role="editor", json=_placeholder_template())
    assert created.status == 201, created.text
    workflow_id = created.json()["workflow_id"]
    await _served(api, workflow_id)
    provision = f"{BASE}/{workflow_id}/_provision"
    both = await client.post(f"{provision}?openai_key=a", role="operator", json={"openai_key": "b"})
    assert both.status == 400 and "both as a query parameter and in the body" in both.text
    twice = await client.post(f"{provision}?openai_key=a&openai_key=b", role="operator")
    assert twice.status == 400 and "more than once" in twice.text
    undeclared = await client.post(f"{provision}?nope=x", role="operator")
    assert undeclared.status == 400 and "nope" in undeclared.json()["detail"]

    value = "query-provision-key-3f0c5a"
    started = await client.post(f"{provision}?openai_key={value}", role="operator")
    assert started.status == 200, started.text
    await _state(api, workflow_id, "COMPLETED")
    stored = api.state_dir.parent / "secrets" / f"{workflow_id}.param.openai_key"
    assert stored.read_text() == value
    run = (await client.get(f"/api/v1/executions/{started.json()['execution_id']}")).json()
    assert run["params"]["openai_key"] == f"{workflow_id}.param.openai_key"
    _assert_value_nowhere(api, value)
