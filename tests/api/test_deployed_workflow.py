"""The deployed-workflow endpoint (deployed-workflow-endpoint.txt) over real HTTP against a
real daemon on a real Git remote: kickoff runs the workflow with the decoded inputs,
get-configuration resolves it, get-mcp-tool-definitions lists the step catalogue, and
get-asset-data reads only regular files below assets/ of the last validated revision."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from reconciler.api.compat import deployed_workflow
from tests.api.conftest import API_SEED, SECRET_VALUES, RunningDaemon, StartApi, wait_until

ENDPOINT = "/api/workflows/{}/endpoint"
CLOUD = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt-4o-mini}
spec:
  modality: llm
  source: {provider_type: cloud_model, provider: openai, uri: openai/gpt-4o-mini}
---
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: gpt-mini-endpoint}
spec:
  project: research
  model: gpt-4o-mini
  credential: openai-prod
  endpoint_name: chat
  deploy_config: {concurrent_requests: 10, avg_sequence_length: 100, avg_context_length: 102}
"""
CHAT_EVAL = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: chat-eval}
spec:
  description: Evaluate the chat endpoint
  trigger: manual
  user_params: {endpoint: gpt-mini-endpoint, label: nightly}
  workflows:
    provision:
      nodes:
        - {id: wait, type: wait_ready, user_inputs: {deployment: "${{ endpoint }}"}}
        - id: note
          type: noop
          user_inputs: {delay: 10ms}
          previous_node_inputs: {wait: endpoint_url}
      edges:
        - {source: wait, dest: note}
"""
ICON = bytes(range(256)) * 4


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


async def _ask(api: RunningDaemon, workflow: str, role: str = "viewer", **request: Any) -> Any:
    return await api.client.post(ENDPOINT.format(workflow), role=role, json={"request": request})


async def _ready(api: RunningDaemon, name: str) -> None:
    async def probe() -> bool:
        reply = await api.client.get(f"/api/v1/objects/Workflow/{name}")
        return reply.status == 200 and reply.json()["phase"] == "Ready"

    await wait_until(f"Workflow/{name} Ready", probe)


async def test_kickoff_runs_the_workflow_with_the_decoded_inputs(start_api: StartApi) -> None:
    api = await start_api()
    await _ready(api, "train")
    viewer = await _ask(api, "train", action_type="kickoff", kickoff_inputs=_b64({"epochs": 3}))
    assert viewer.status == 403
    reply = await _ask(
        api, "train", role="operator", action_type="kickoff", kickoff_inputs=_b64({"epochs": 3})
    )
    assert reply.status == 200, reply.text
    trace_id = reply.json()["trace_id"]
    assert set(reply.json()) == {"trace_id"}

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.client.get(f"/api/v1/executions/{trace_id}")).json()
        return body if body["status"] == "succeeded" else None

    run = await wait_until("the kicked-off run to succeed", finished)
    assert run["params"] == {"epochs": 3, "delay": "10ms"} and run["trigger"] == "api"
    dashboard = (await api.client.get(f"/api/workflows/train/executions/{trace_id}")).json()
    assert dashboard["executor"] == "operator-bot"


async def test_kickoff_refuses_bad_inputs_naming_them(start_api: StartApi) -> None:
    api = await start_api()
    cases = {
        "not base64!": "kickoff_inputs is not valid base64",
        base64.b64encode(b"\xff\xfe").decode(): "does not decode to JSON",
        _b64([1, 2]): "JSON object",
        _b64({"nope": 1}): "params.nope",
    }
    for inputs, words in cases.items():
        reply = await _ask(
            api, "train", role="operator", action_type="kickoff", kickoff_inputs=inputs
        )
        assert reply.status == 422 and words in reply.json()["detail"], reply.text
    extra = await _ask(api, "train", role="operator", action_type="kickoff", trace_level="hi")
    assert extra.status == 422 and "request.trace_level" in extra.json()["detail"]
    unknown = await _ask(api, "train", action_type="explode")
    assert unknown.status == 422 and "action_type" in unknown.json()["detail"]
    bare = await api.client.post(ENDPOINT.format("train"), json={"action_type": "kickoff"})
    assert bare.status == 422 and "'action_type'" in bare.json()["detail"]
    absent = await _ask(api, "absent", role="operator", action_type="kickoff")
    assert absent.status == 404
    assert (await api.client.post(ENDPOINT.format("train"), role=None, json={})).status == 401
    listed = await api.client.get("/api/v1/executions?kind=Workflow&name=train")
    assert all(e["trigger"] != "api" for e in listed.json()["items"])


async def test_get_configuration_resolves_the_workflow(start_api: StartApi) -> None:
    api = await start_api(files={**API_SEED, "cloud.yaml": CLOUD, "chat.yaml": CHAT_EVAL})
    await _ready(api, "chat-eval")

    async def deployed() -> bool:
        reply = await api.client.get("/api/v1/objects/Deployment/gpt-mini-endpoint")
        return bool(reply.json()["phase"] == "Ready")

    await wait_until("the cloud Deployment Ready", deployed)
    reply = await _ask(api, "chat-eval", action_type="get-configuration")
    assert reply.status == 200, reply.text
    config = reply.json()["configuration"]
    assert set(config) == {
        "agents",
        "default_language_model_id",
        "language_models",
        "mcp_instances",
        "tasks",
        "tool_instances",
        "workflow",
    }
    assert config["workflow"]["id"] == "chat-eval"
    assert config["workflow"]["task_ids"] == ["wait", "note"]
    assert config["workflow"]["user_params"] == {
        "endpoint": "gpt-mini-endpoint",
        "label": "nightly",
    }
    wait, note = config["tasks"]
    assert wait["user_inputs"] == {"deployment": "gpt-mini-endpoint"}
    assert note["depends_on"] == ["wait"] and note["previous_node_inputs"] == {
        "wait": "endpoint_url"
    }
    assert [t["id"] for t in config["tool_instances"]] == ["noop", "wait_ready"]
    assert config["default_language_model_id"] == "gpt-mini-endpoint"
    model = config["language_models"][0]
    assert model["model_name"] == "gpt-4o-mini" and model["endpoint_name"] == "chat"
    assert model["endpoint_url"] == "https://api.openai.com/v1" and model["phase"] == "Ready"
    assert not [v for r in api.client.replies for v in SECRET_VALUES if v in r.text]


async def test_mcp_tool_definitions_are_the_step_catalogue(start_api: StartApi) -> None:
    api = await start_api()
    reply = await _ask(api, "train", action_type="get-mcp-tool-definitions")
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["ready"] is True
    tools = {t["name"]: t for t in body["mcp_tool_definitions"]["reconciler-steps"]}
    steps = (await api.client.get("/api/v1/steps")).json()["items"]
    usable = {s["name"] for s in steps if s["name"] in tools}
    assert usable == set(tools) and {"noop", "http_request", "k8s_job", "wait_ready"} <= usable
    assert "record_spec" not in tools  # internal chain steps are not offered
    http = tools["http_request"]
    assert http["inputSchema"]["required"] == ["method", "url"]
    assert http["inputSchema"]["type"] == "object" and http["description"]


async def _with_assets(start_api: StartApi) -> RunningDaemon:
    """A remote whose latest commit has assets, things beside them, and symlinks out."""
    api = await start_api()
    clone = api.remote.writer
    clone.write(
        {
            "assets/icons/calc.png": ICON,
            "assets/docs/read me.txt": "hello\n",
            "notes/secret.txt": "outside assets\n",
        }
    )
    os.symlink("../notes/secret.txt", clone.path / "assets" / "escape.txt")
    os.symlink("../notes", clone.path / "assets" / "notes")
    os.symlink("/etc/passwd", clone.path / "assets" / "passwd")
    clone.commit("Add assets")
    clone.push()
    await api.client.post("/api/v1/sync", role="operator", json={})

    async def served() -> bool:
        reply = await _ask(
            api,
            "train",
            action_type="get-asset-data",
            get_asset_data_inputs=["assets/icons/calc.png"],
        )
        return reply.status == 200 and "assets/icons/calc.png" in reply.json()["asset_data"]

    await wait_until("the assets commit to validate", served)
    return api


async def test_asset_data_reads_regular_files_under_assets(start_api: StartApi) -> None:
    api = await _with_assets(start_api)
    wanted = ["assets/icons/calc.png", "assets/docs/read me.txt", "assets/icons/missing.png"]
    reply = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=wanted)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert base64.b64decode(body["asset_data"]["assets/icons/calc.png"]) == ICON
    assert base64.b64decode(body["asset_data"]["assets/docs/read me.txt"]) == b"hello\n"
    assert body["unavailable_assets"] == ["assets/icons/missing.png"]


async def test_asset_data_caps_file_and_answer_sizes(
    start_api: StartApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await _with_assets(start_api)
    monkeypatch.setattr(deployed_workflow, "MAX_ASSET_BYTES", len(ICON) - 1)
    wanted = ["assets/docs/read me.txt", "assets/icons/calc.png"]
    reply = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=wanted)
    assert list(reply.json()["asset_data"]) == ["assets/docs/read me.txt"]
    assert reply.json()["unavailable_assets"] == ["assets/icons/calc.png"]
    monkeypatch.setattr(deployed_workflow, "MAX_ASSET_BYTES", len(ICON))
    monkeypatch.setattr(deployed_workflow, "MAX_ANSWER_BYTES", len(ICON) + 3)
    reply = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=wanted)
    assert list(reply.json()["asset_data"]) == ["assets/docs/read me.txt"]
    assert reply.json()["unavailable_assets"] == ["assets/icons/calc.png"]
    monkeypatch.setattr(deployed_workflow, "MAX_ANSWER_BYTES", len(ICON) + 6)
    reply = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=wanted)
    assert sorted(reply.json()["asset_data"]) == sorted(wanted)


async def test_asset_data_never_escapes_assets(start_api: StartApi) -> None:
    api = await _with_assets(start_api)
    escapes = [
        "notes/secret.txt",
        "assets/../notes/secret.txt",
        "assets/icons/../../notes/secret.txt",
        "assets/%2e%2e/notes/secret.txt",
        "assets/%2E%2E%2Fnotes%2Fsecret.txt",
        "/assets/icons/calc.png",
        "/etc/passwd",
        "assets/./icons/calc.png",
        "assets//icons/calc.png",
        "assets\\..\\notes\\secret.txt",
        "assets/escape.txt",
        "assets/notes/secret.txt",
        "assets/passwd",
        "assets/icons",
        "assets",
        "assets/icons/calc.png\x00",
        "../" * 20 + "etc/passwd",
        "manual.yaml",
    ]
    reply = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=escapes)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["asset_data"] == {}
    assert body["unavailable_assets"] == escapes
    assert "outside assets" not in reply.text and "root:" not in reply.text
    for bad in ("assets/x", 3), None, ["a"] * 101:
        refused = await _ask(api, "train", action_type="get-asset-data", get_asset_data_inputs=bad)
        assert refused.status == 422 and "get_asset_data_inputs" in refused.json()["detail"]


async def test_oversized_and_malformed_bodies_are_refused(start_api: StartApi) -> None:
    api = await start_api()
    path = ENDPOINT.format("train")
    inputs = ["assets/" + "a" * (1 << 20)]
    huge = json.dumps(
        {"request": {"action_type": "get-asset-data", "get_asset_data_inputs": inputs}}
    )
    reply = await api.client.post(
        path, data=huge.encode(), headers={"Content-Type": "application/json"}
    )
    assert reply.status == 413, reply.text
    broken = await api.client.post(
        path, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400
    listed = await api.client.post(path, json=[1])
    assert listed.status == 422


async def test_asset_data_needs_the_api_writer(start_api: StartApi) -> None:
    api = await start_api(write_mode="off")
    reply = await _ask(
        api, "train", action_type="get-asset-data", get_asset_data_inputs=["assets/a.png"]
    )
    assert reply.status == 503 and "write_mode is off" in reply.json()["detail"]
    config = await _ask(api, "train", action_type="get-configuration")
    assert config.status == 200 and config.json()["configuration"]["workflow"]["id"] == "train"
