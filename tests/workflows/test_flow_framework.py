"""The flow framework's template runs unchanged through the durable executor, and its
deprovision (undeploy, delete model, delete connector) undoes it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from flow_template import FLOW_TEMPLATE

from reconciler.core.chain_builders import graph_steps
from reconciler.core.chains import Chain
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.executor import Executor
from reconciler.engine.store import Store
from reconciler.steps.flow_framework import (
    CONNECTOR,
    REMOTE_MODEL,
    StoreFlowRecords,
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


async def run(executor: Executor, store: Store, chain: Chain) -> dict[str, Mapping[str, Any]]:
    execution_id = executor.submit(chain)
    record = await executor.wait(execution_id)
    assert record.status == "succeeded", record.error
    return {step.node_id: dict(step.outputs or {}) for step in store.get_steps(execution_id)}


async def test_template_provisions_and_deprovisions(tmp_path: Path) -> None:
    store = Store(tmp_path)
    records = StoreFlowRecords(store)
    registry = default_registry()
    register_flow_framework_steps(registry, records=records)
    executor = Executor(store=store, registry=registry)
    await executor.start()

    template = yaml.safe_load(FLOW_TEMPLATE)
    outputs = await run(executor, store, workflow_chain(template["workflows"]["provision"]))
    connector_id = outputs["create_connector_1"]["connector_id"]
    model_id = outputs["register_model_2"]["model_id"]
    assert outputs["register_model_2"]["register_model_status"] == "REGISTERED"
    assert outputs["deploy_model_3"] == {"model_id": model_id, "deploy_model_status": "DEPLOYED"}
    connector = records.get(CONNECTOR, connector_id)
    assert connector is not None
    assert connector["credential"] == {"openAI_key": "openai-api-key"}  # a secret's name
    assert connector["parameters"] == {"endpoint": "api.openai.com", "model": "gpt-3.5-turbo"}
    remote = records.get(REMOTE_MODEL, model_id)
    assert remote is not None and remote["connector_id"] == connector_id and remote["deployed"]

    again = await run(executor, store, workflow_chain(template["workflows"]["provision"]))
    assert again["create_connector_1"]["connector_id"] == connector_id  # idempotent re-run

    undo = await run(
        executor,
        store,
        workflow_chain(
            yaml.safe_load(DEPROVISION), params={"model": model_id, "conn": connector_id}
        ),
    )
    assert undo["undeploy"] == {"success": True}
    assert records.get(REMOTE_MODEL, model_id) is None
    assert records.get(CONNECTOR, connector_id) is None
    await executor.shutdown()
    store.close()


async def test_deleting_a_deployed_remote_model_fails_and_a_missing_connector_stalls(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    registry = default_registry()
    records = StoreFlowRecords(store)
    register_flow_framework_steps(registry, records=records)
    executor = Executor(store=store, registry=registry)
    await executor.start()
    template = yaml.safe_load(FLOW_TEMPLATE)
    outputs = await run(executor, store, workflow_chain(template["workflows"]["provision"]))
    model_id = outputs["register_model_2"]["model_id"]
    delete = {"nodes": [{"id": "d", "type": "delete_model", "user_inputs": {"model_id": model_id}}]}
    record = await executor.wait(executor.submit(workflow_chain(delete)))
    assert record.status == "failed"
    assert "undeploy it first" in (record.error or "")

    orphan = {
        "nodes": [
            {
                "id": "r",
                "type": "register_remote_model",
                "user_inputs": {"name": "m", "connector_id": "connector-nope"},
            }
        ]
    }
    record = await executor.wait(executor.submit(workflow_chain(orphan)))
    assert record.status == "stalled"
    assert "connector connector-nope does not exist" in (record.error or "")
    await executor.shutdown()
    store.close()


class ModelSteps:
    """Stand-ins registered as the model and deployment steps, recording their inputs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def add_model(self, ctx: StepContext) -> outcomes.Outcome:
        self.calls.append(("add_model", dict(ctx.inputs)))
        return outcomes.Done({"model_id": ctx.inputs["name"]})

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
    outputs = await run(executor, store, workflow_chain(graph))
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
    assert steps.calls[1][1]["model"] == model_id
    assert steps.calls[2][1]["name"] == model_id
    assert steps.calls[3][1] == {"name": model_id}
    await executor.shutdown()
    store.close()
