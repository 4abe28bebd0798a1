"""Deprovision on request, through a real daemon: the Workflow stays in Git and in status.

Without a deprovision graph the undo of what the last provision made runs, newest first;
with one, that graph runs. Either way the object is not forgotten, its provisioning state
reads NOT_STARTED with nothing in ``resources_created`` once the run succeeded (FAILED
when it failed), and later cycles neither rerun the provision nor forget the Workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.daemon_view import DaemonAdapter
from reconciler.api.view import ViewError
from tests.conftest import MakeGitRemote
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until
from tests.workflows.flow_template import FLOW_TEMPLATE

CLOCK = "2025-01-01T00:00:00Z"


def flow_workflow() -> str:
    template = yaml.safe_load(FLOW_TEMPLATE)
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "Workflow",
        "metadata": {"name": "remote-model"},
        "spec": {"trigger": "on_change", "workflows": template["workflows"]},
    }
    return yaml.safe_dump(document, sort_keys=False)


def graph_workflow(name: str, deprovision_step: str, *, trigger: str = "on_change") -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  trigger: {trigger}
  user_params: {{hold: 0s}}
  workflows:
    provision:
      nodes:
        - {{id: made, type: noop, user_inputs: {{delay: "${{{{ hold }}}}"}}}}
    deprovision:
      nodes:
        - {deprovision_step}
"""


def flow_records(running: RunningDaemon) -> list[str]:
    assert running.daemon.store is not None
    rows = running.daemon.store._conn.execute(
        "SELECT key FROM daemon_state WHERE key LIKE 'flow/%' AND value != 'null'"
    ).fetchall()
    return sorted(str(row["key"]) for row in rows)


async def finished(running: RunningDaemon, execution_id: str) -> Any:
    store = running.daemon.store
    assert store is not None
    return await wait_until(
        f"execution {execution_id} finished",
        lambda: (r := store.get_execution(execution_id)).finished and r,
    )


async def provisioned(running: RunningDaemon, name: str) -> dict[str, Any]:
    return await wait_until(
        f"{name} provisioned",
        lambda: (s := running.status(f"Workflow/{name}")).get("state") == "COMPLETED" and s,
    )


async def test_undo_on_request_keeps_the_workflow_and_reads_not_started(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "openai-api-key").write_text("sk-never-printed\n")
    remote = make_git_remote(files={"flow.yaml": flow_workflow()})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    view = DaemonAdapter(running.daemon)
    try:
        status = await provisioned(running, "remote-model")
        made = status["resources_created"]
        assert [r["step"] for r in made] == [
            "create_connector_1",
            "register_model_2",
            "deploy_model_3",
        ]
        assert len(flow_records(running)) == 2  # the connector and the remote model

        execution_id = view.deprovision_workflow(name="remote-model", requested_by="alice")
        record = await finished(running, execution_id)
        assert (record.status, record.action, record.trigger) == (
            "succeeded",
            "deprovision",
            "api",
        )
        store = running.daemon.store
        assert store is not None
        steps = sorted(store.get_steps(execution_id), key=lambda s: s.started_at)
        assert [(s.node_id, s.type) for s in steps] == [
            ("undo_deploy_model_3", "undeploy_model"),
            ("undo_register_model_2", "delete_model"),
            ("undo_create_connector_1", "delete_connector"),
        ]
        assert steps[2].inputs is not None
        assert steps[2].inputs["connector_id"] == made[0]["resource_id"]
        assert flow_records(running) == []
        after = await wait_until(
            "NOT_STARTED in status",
            lambda: (s := running.status("Workflow/remote-model")).get("state") == "NOT_STARTED"
            and s,
        )
        assert after["resources_created"] == []
        assert store.get_object("Workflow", "remote-model") is not None

        # Nothing left to undo: a second request is refused, and nothing was submitted.
        with pytest.raises(ViewError) as refused:
            view.deprovision_workflow(name="remote-model", requested_by="alice")
        assert refused.value.reason == "conflict"
        assert "nothing provisioned" in str(refused.value)

        # Later cycles (a new revision, a resync) neither provision again nor forget it.
        remote.writer.commit_and_push(
            {"other.yaml": graph_workflow("other", "{id: gone, type: noop}")}, "another"
        )
        await provisioned(running, "other")
        running.daemon.trigger("test resync", resync=True)
        await provisioned(running, "other")
        await wait_until(
            "the resync planned",
            lambda: running.daemon.reconciler is not None
            and running.daemon.reconciler.last_report is not None
            and running.daemon.reconciler.last_report.loaded,
        )
        assert [r.action for r in running.executions("remote-model")] == [
            "deprovision",
            "execute",
        ]
        assert running.status("Workflow/remote-model")["state"] == "NOT_STARTED"
        assert store.get_object("Workflow", "remote-model") is not None
    finally:
        await running.stop()


async def test_a_deprovision_graph_runs_and_a_failed_one_reads_failed(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(
        files={
            "good.yaml": graph_workflow("good", "{id: cleaned, type: noop}"),
            "bad.yaml": graph_workflow(
                "bad", "{id: broken, type: fail, user_inputs: {message: cannot clean}}"
            ),
        }
    )
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    view = DaemonAdapter(running.daemon)
    store = running.daemon.store
    assert store is not None
    try:
        await provisioned(running, "good")
        await provisioned(running, "bad")

        good = await finished(running, view.deprovision_workflow(name="good", requested_by="a"))
        assert good.status == "succeeded"
        assert [s.node_id for s in store.get_steps(good.id)] == ["cleaned"]
        await wait_until(
            "good NOT_STARTED",
            lambda: running.status("Workflow/good").get("state") == "NOT_STARTED",
        )
        # Removed from Git afterwards: its deprovision graph does not run a second time.
        remote.writer.commit_and_push({"good.yaml": None}, "good goes")
        await wait_until("good forgotten", lambda: not running.status("Workflow/good"))
        removal = store.list_executions(kind="Workflow", name="good", limit=1)[0]
        assert (removal.action, removal.status) == ("delete", "succeeded")
        assert store.get_steps(removal.id) == []

        bad = await finished(running, view.deprovision_workflow(name="bad", requested_by="a"))
        assert bad.status == "failed" and "cannot clean" in (bad.error or "")
        status = await wait_until(
            "bad FAILED",
            lambda: (s := running.status("Workflow/bad")).get("state") == "FAILED" and s,
        )
        assert [r["step"] for r in status["resources_created"]] == []  # noop makes nothing
        assert store.get_object("Workflow", "bad") is not None
        # A failed deprovision leaves something provisioned: it may be asked for again.
        again = await finished(running, view.deprovision_workflow(name="bad", requested_by="a"))
        assert again.action == "deprovision" and again.status == "failed"
    finally:
        await running.stop()


async def test_refused_for_an_unknown_workflow_and_while_a_run_is_going(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(
        files={"slow.yaml": graph_workflow("slow", "{id: c, type: noop}", trigger="manual")}
    )
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    view = DaemonAdapter(running.daemon)
    try:
        with pytest.raises(ViewError) as unknown:
            view.deprovision_workflow(name="nowhere", requested_by="a")
        assert unknown.value.reason == "not_found"
        await wait_until(
            "slow recorded",
            lambda: running.status("Workflow/slow").get("phase") not in (None, "Pending"),
        )
        with pytest.raises(ViewError) as never:
            view.deprovision_workflow(name="slow", requested_by="a")
        assert never.value.reason == "conflict" and "NOT_STARTED" in str(never.value)

        run = view.start_workflow(name="slow", params={"hold": "1h"}, requested_by="a")
        with pytest.raises(ViewError) as busy:
            view.deprovision_workflow(name="slow", requested_by="a")
        assert busy.value.reason == "conflict" and run in str(busy.value)
        assert view.cancel(run)
        assert (await finished(running, run)).status == "cancelled"
    finally:
        await running.stop()
