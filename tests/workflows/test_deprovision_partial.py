"""A deprovision that fails part-way leaves exactly what it did not undo.

The flow framework's steps on a real store and executor, with the real Credential and
model steps they act through (tests/workflows/flow_daemon.py): a provision makes two
connectors and a remote model registered already deployed. Its undo deletes the newest
connector, then fails on the model (a deployed model cannot be deleted): the state reads
FAILED and ``resources_created`` lists the model and the first connector only. Asked
again, the undo runs for those two alone; once the model is undeployed it succeeds and
the state reads NOT_STARTED with nothing left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flow_daemon import SECRET_NAME, flow_daemon

from reconciler.core.chain_builders import UNDO_PROVISION, graph_steps
from reconciler.core.chains import Chain, ChainAction, StepNode
from reconciler.daemon import provisioning
from reconciler.engine.chain_codec import chain_from_json, chain_to_json
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.flow_framework import CONNECTOR, REMOTE_MODEL


def connector(node_id: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "create_connector",
        "user_inputs": {
            "name": node_id,
            "description": "",
            "version": "1",
            "protocol": "http",
            "parameters": {"model": "gpt-4o-mini"},
            "credential": {"api_key": SECRET_NAME},
            "actions": [{"action_type": "predict", "url": "https://api.openai.com/v1/chat"}],
        },
    }


PROVISION = {
    "nodes": [
        connector("first"),
        {
            "id": "model",
            "type": "register_remote_model",
            "user_inputs": {
                "name": "m",
                "connector_id": "${{ first.connector_id }}",
                "deploy": True,
            },
        },
        connector("second"),
    ],
    "edges": [{"source": "model", "dest": "second"}],
}


def chain(action: ChainAction, steps: tuple[StepNode, ...]) -> Chain:
    return Chain(
        kind="Workflow", name="w", action=action, revision="r1", spec_hash="h", steps=steps
    )


async def deprovision(executor: Executor, store: Store) -> ExecutionRecord:
    placeholder = (StepNode(id=UNDO_PROVISION, type=UNDO_PROVISION),)
    expanded = provisioning.deprovision_chain(chain("deprovision", placeholder), store)
    return await executor.wait(executor.submit(expanded, trigger="api"))


def ran(store: Store, record: ExecutionRecord) -> list[tuple[str, str]]:
    return [(s.node_id, s.status) for s in store.get_steps(record.id)]


async def test_a_failed_undo_leaves_what_it_did_not_undo_and_a_retry_undoes_only_that(
    tmp_path: Path,
) -> None:
    async with flow_daemon(tmp_path) as daemon:
        store, records, executor = daemon.store, daemon.records, daemon.executor
        made = await executor.wait(executor.submit(chain("execute", graph_steps({}, PROVISION))))
        assert made.status == "succeeded", made.error
        outputs = {s.node_id: dict(s.outputs or {}) for s in store.get_steps(made.id)}
        model_id = outputs["model"]["model_id"]
        assert provisioning.status_fields(store, "w")["state"] == "COMPLETED"

        first = await deprovision(executor, store)
        assert first.status == "failed" and "undeploy it first" in (first.error or "")
        assert ran(store, first) == [
            ("undo_second", "done"),
            ("undo_model", "failed"),
            ("undo_first", "skipped"),
        ]
        fields = provisioning.status_fields(store, "w")
        assert fields["state"] == "FAILED"
        assert [r["step"] for r in fields["resources_created"]] == ["first", "model"]
        assert records.get(CONNECTOR, outputs["second"]["connector_id"]) is None

        again = await deprovision(executor, store)
        assert again.status == "failed"
        assert [s.node_id for s in store.get_steps(again.id)] == ["undo_model", "undo_first"]

        remote = records.get(REMOTE_MODEL, model_id)
        assert remote is not None
        records.put(REMOTE_MODEL, model_id, {**remote, "deployed": False})  # undeployed
        last = await deprovision(executor, store)
        assert last.status == "succeeded", last.error
        assert ran(store, last) == [("undo_model", "done"), ("undo_first", "done")]
        assert provisioning.status_fields(store, "w") == {
            "state": "NOT_STARTED",
            "resources_created": [],
        }
        assert records.get(CONNECTOR, outputs["first"]["connector_id"]) is None


def test_a_deprovision_chain_is_stored_and_read_back_as_one() -> None:
    """A restart resumes the stored plan of record: the action must survive the codec."""
    stored = chain("deprovision", (StepNode(id="undo_first", type="delete_connector"),))
    assert chain_from_json(chain_to_json(stored)) == stored
