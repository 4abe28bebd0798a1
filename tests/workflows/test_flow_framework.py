"""The flow framework's template runs unchanged through the durable executor, acting
through our own Credential (check_secret), cloud Model (add_model, remove_model) and
cloud Deployment steps, all real, over a real secrets folder and model cache; its
deprovision (undeploy, delete model, delete connector) undoes it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from flow_daemon import SECRET_VALUE, Daemonish, flow_daemon
from flow_template import FLOW_TEMPLATE

from reconciler.core.chain_builders import graph_steps
from reconciler.core.chains import Chain
from reconciler.drivers.models import records as model_records
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.flow_framework import (
    CONNECTOR,
    REMOTE_MODEL,
    StoreFlowRecords,
    connector_credential,
    register_flow_framework_steps,
)
from reconciler.steps.registry import StepRegistry, default_registry

DEPROVISION = """\
nodes:
- {id: undeploy, type: undeploy_model, user_inputs: {model_id: "${{ model }}"}}
- {id: delete_model, type: delete_model, user_inputs: {model_id: "${{ model }}"}}
- {id: delete_connector, type: delete_connector, user_inputs: {connector_id: "${{ conn }}"}}
edges:
- {source: undeploy, dest: delete_model}
- {source: delete_model, dest: delete_connector}
"""


def workflow_chain(graph: Mapping[str, Any], *, params: Mapping[str, Any] | None = None) -> Chain:
    return Chain(
        kind="Workflow",
        name="remote-model",
        action="execute",
        revision="r1",
        spec_hash="h1",
        steps=graph_steps({}, graph),
        params=dict(params or {}),
    )


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemonish]:
    async with flow_daemon(tmp_path) as running:
        yield running


def provision() -> Chain:
    return workflow_chain(yaml.safe_load(FLOW_TEMPLATE)["workflows"]["provision"])


async def test_template_provisions_and_deprovisions(daemon: Daemonish) -> None:
    outputs = await daemon.outputs(provision())
    connector_id = outputs["create_connector_1"]["connector_id"]
    model_id = outputs["register_model_2"]["model_id"]
    assert outputs["register_model_2"]["register_model_status"] == "REGISTERED"
    assert outputs["deploy_model_3"] == {
        "model_id": model_id,
        "deploy_model_status": "DEPLOYED",
        "endpoint_url": "https://api.openai.com/v1",
    }
    # The connector is a Credential for openai naming the secret, never holding it.
    connector = daemon.records.get(CONNECTOR, connector_id)
    assert connector is not None
    assert connector["credential"] == {"openAI_key": "openai-api-key"}
    assert connector["credential_spec"] == {"provider": "openai", "secret": "openai-api-key"}
    assert connector_credential(daemon.records, connector_id) == connector["credential_spec"]
    assert connector["models"] == [model_id]
    assert SECRET_VALUE not in repr(dict(daemon.store.get_value(f"flow/connector/{connector_id}")))
    # The remote model is a cloud Model add_model registered in the model cache.
    remote = daemon.records.get(REMOTE_MODEL, model_id)
    assert remote is not None and remote["deployed"] and remote["connector_id"] == connector_id
    source = {
        "provider_type": "cloud_model",
        "provider": "openai",
        "uri": "openai/gpt-3.5-turbo",
        "credential": connector_id,
    }
    assert remote["source"] == source
    cached = model_records.read_record(cache_dir=daemon.model_cache, model=model_id)
    assert cached is not None and cached["source"] == source

    again = await daemon.outputs(provision())
    assert again["create_connector_1"]["connector_id"] == connector_id  # idempotent re-run
    assert daemon.records.get(CONNECTOR, connector_id)["models"] == [model_id]  # type: ignore[index]

    undo = await daemon.outputs(
        workflow_chain(
            yaml.safe_load(DEPROVISION), params={"model": model_id, "conn": connector_id}
        )
    )
    assert undo["undeploy"] == {"success": True}
    assert daemon.records.get(REMOTE_MODEL, model_id) is None
    assert daemon.records.get(CONNECTOR, connector_id) is None
    assert model_records.read_record(cache_dir=daemon.model_cache, model=model_id) is None


async def test_a_missing_secret_stalls_the_connector_like_a_credential(
    daemon: Daemonish,
) -> None:
    (daemon.secrets_dir / "openai-api-key").unlink()
    record = await daemon.run(provision())
    assert record.status == "stalled"
    error = record.error or ""
    assert "SecretNotFound" in error and "'openai-api-key'" in error
    assert "credential 'openAI_key' of connector 'OpenAI Chat Connector'" in error
    (daemon.secrets_dir / "openai-api-key").write_text(SECRET_VALUE)
    assert (await daemon.run(provision())).status == "succeeded"


async def test_a_deployment_checks_the_connector_secret_again(daemon: Daemonish) -> None:
    template = yaml.safe_load(FLOW_TEMPLATE)["workflows"]["provision"]
    deploy = template["nodes"].pop()
    template["edges"].pop()
    outputs = await daemon.outputs(workflow_chain(template))
    (daemon.secrets_dir / "openai-api-key").unlink()
    model_id = outputs["register_model_2"]["model_id"]
    deploy["user_inputs"] = {"model_id": model_id}
    deploy.pop("previous_node_inputs")
    record = await daemon.run(workflow_chain({"nodes": [deploy]}))
    assert record.status == "stalled"
    assert "SecretNotFound" in (record.error or "")
    assert not daemon.records.get(REMOTE_MODEL, model_id)["deployed"]  # type: ignore[index]


async def test_a_connector_to_an_unknown_service_stalls_naming_its_host(
    daemon: Daemonish,
) -> None:
    template = yaml.safe_load(FLOW_TEMPLATE)["workflows"]["provision"]
    template["nodes"][0]["user_inputs"]["parameters"]["endpoint"] = "llm.internal.example"
    record = await daemon.run(workflow_chain(template))
    assert record.status == "stalled"
    assert "'llm.internal.example', which is not a cloud provider" in (record.error or "")


async def test_register_and_deploy_in_one_step(daemon: Daemonish) -> None:
    template = yaml.safe_load(FLOW_TEMPLATE)["workflows"]["provision"]
    template["nodes"].pop()
    template["edges"].pop()
    template["nodes"][1]["user_inputs"]["deploy"] = True
    outputs = await daemon.outputs(workflow_chain(template))
    registered = outputs["register_model_2"]
    assert registered["deploy_model_status"] == "DEPLOYED"
    assert registered["endpoint_url"] == "https://api.openai.com/v1"
    assert daemon.records.get(REMOTE_MODEL, registered["model_id"])["deployed"]  # type: ignore[index]


async def test_deleting_what_is_in_use_fails_and_a_missing_connector_stalls(
    daemon: Daemonish,
) -> None:
    outputs = await daemon.outputs(provision())
    model_id = outputs["register_model_2"]["model_id"]
    connector_id = outputs["create_connector_1"]["connector_id"]
    delete = {"nodes": [{"id": "d", "type": "delete_model", "user_inputs": {"model_id": model_id}}]}
    record = await daemon.run(workflow_chain(delete))
    assert record.status == "failed"
    assert "undeploy it first" in (record.error or "")
    drop = {
        "nodes": [
            {"id": "c", "type": "delete_connector", "user_inputs": {"connector_id": connector_id}}
        ]
    }
    record = await daemon.run(workflow_chain(drop))
    assert record.status == "failed"
    assert f"used by model(s) {model_id}" in (record.error or "")
    assert daemon.records.get(CONNECTOR, connector_id) is not None

    orphan = {
        "nodes": [
            {
                "id": "r",
                "type": "register_remote_model",
                "user_inputs": {"name": "m", "connector_id": "connector-nope"},
            }
        ]
    }
    record = await daemon.run(workflow_chain(orphan))
    assert record.status == "stalled"
    assert "connector connector-nope does not exist" in (record.error or "")


class ModelSteps:
    """Stand-ins registered as the model and deployment steps, recording their inputs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def add_model(self, ctx: StepContext) -> outcomes.Outcome:
        self.calls.append(("add_model", dict(ctx.inputs)))
        return outcomes.Done({"model_id": ctx.inputs["model"]})

    async def deploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        self.calls.append(("deploy_model", dict(ctx.inputs)))
        return outcomes.Done({"endpoint_url": "http://127.0.0.1:1/v1", "workers": 1})

    async def undeploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        self.calls.append(("undeploy_model", dict(ctx.inputs)))
        return outcomes.Done()

    async def remove_model(self, ctx: StepContext) -> outcomes.Outcome:
        self.calls.append(("remove_model", dict(ctx.inputs)))
        return outcomes.Done()


async def test_local_models_go_to_the_model_and_deployment_steps(tmp_path: Path) -> None:
    store = Store(tmp_path)
    registry: StepRegistry = default_registry()
    steps = ModelSteps()
    for name in ("add_model", "deploy_model", "undeploy_model", "remove_model"):
        registry.register(name, getattr(steps, name))
    register_flow_framework_steps(registry, records=StoreFlowRecords(store))
    executor = Executor(store=store, registry=registry)
    await executor.start()
    graph = {
        "nodes": [
            {
                "id": "reg",
                "type": "register_local_pretrained_model",
                "user_inputs": {
                    "name": "huggingface/sentence-transformers/all-MiniLM-L6-v2",
                    "version": "1.0.1",
                    "model_format": "TORCH_SCRIPT",
                },
            },
            {"id": "dep", "type": "deploy_model", "previous_node_inputs": {"reg": "model_id"}},
            {"id": "undep", "type": "undeploy_model", "previous_node_inputs": {"reg": "model_id"}},
            {"id": "del", "type": "delete_model", "previous_node_inputs": {"reg": "model_id"}},
        ],
        "edges": [
            {"source": "dep", "dest": "undep"},
            {"source": "undep", "dest": "del"},
        ],
    }
    record = await executor.wait(executor.submit(workflow_chain(graph)))
    assert record.status == "succeeded", record.error
    outputs = {s.node_id: dict(s.outputs or {}) for s in store.get_steps(record.id)}
    model_id = "sentence-transformers-all-minilm-l6-v2"
    assert outputs["reg"] == {"model_id": model_id, "register_model_status": "REGISTERED"}
    assert outputs["dep"]["model_id"] == model_id
    assert outputs["dep"]["endpoint_url"] == "http://127.0.0.1:1/v1"
    kinds = [kind for kind, _ in steps.calls]
    assert kinds == ["add_model", "deploy_model", "undeploy_model", "remove_model"]
    added = steps.calls[0][1]
    assert added["source"] == {
        "provider_type": "hugging_face",
        "uri": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": "main",
    }
    assert added["model"] == model_id  # the name add_model reads
    assert steps.calls[1][1]["model"] == model_id
    assert steps.calls[1][1]["deployment"] == model_id
    assert steps.calls[2][1]["deployment"] == model_id
    assert steps.calls[3][1] == {"model": model_id}
    await executor.shutdown()
    store.close()
