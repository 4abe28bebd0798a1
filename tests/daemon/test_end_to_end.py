"""The closed loop with real parts: a pushed spec becomes status on the status branch."""

from __future__ import annotations

import json

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import condition, read_status, wait_for


def _status(remote: GitRemote, path: str) -> dict | None:
    return read_status(remote.path, f"status/{path}")


def test_status_files_land_on_the_status_branch(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    head = remote.tip("main")
    start_daemon()

    source = wait_for(
        "source applied",
        lambda: (
            (s := _status(remote, "source.yaml")) and s.get("last_applied_revision") == head and s
        ),
    )
    assert condition(source, "Ready")["status"] == "True"
    assert source["last_seen_revision"] == head

    project = wait_for(
        "project ready",
        lambda: (s := _status(remote, "projects/research.yaml")) and s["phase"] == "Ready" and s,
    )
    assert project["observed_revision"] == head
    assert condition(project, "Ready") | {"last_transition_time": None} == {
        "type": "Ready",
        "status": "True",
        "reason": "Succeeded",
        "message": project["conditions"][0]["message"],
        "last_transition_time": None,
    }
    assert condition(project, "Stalled")["status"] == "False"

    credential = wait_for(
        "credential ready",
        lambda: (
            (s := _status(remote, "credentials/openai-prod.yaml")) and s["phase"] == "Ready" and s
        ),
    )
    assert condition(credential, "Ready")["status"] == "True"

    run = wait_for(
        "workflow ran",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["phase"] == "Ready" and s,
    )
    assert run["observed_revision"] == head
    assert [e["status"] for e in run["last_executions"]] == ["succeeded"]
    assert {s["status"] for s in run["last_executions"][0]["steps"]} == {"succeeded"}
    assert run["last_executions"][0]["revision"] == head

    # The local cluster's chain (check_cluster) runs since the cluster drivers landed.
    cluster = wait_for(
        "cluster ready",
        lambda: (s := _status(remote, "clusters/local.yaml")) and s["phase"] == "Ready" and s,
    )
    assert condition(cluster, "Ready")["status"] == "True"
    assert cluster["observed_revision"] == head


def test_a_push_runs_the_changed_workflow_once_per_revision(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    first = remote.tip("main")
    daemon = start_daemon()
    wait_for(
        "first run",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["phase"] == "Ready",
    )
    second = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=2)}, "round 2")
    done = wait_for(
        "second run",
        lambda: (
            (s := _status(remote, "workflows/smoke.yaml"))
            and s["observed_revision"] == second
            and s["phase"] == "Ready"
            and s
        ),
    )
    # newest first: the run for the push, then the first run, and nothing else
    assert [e["revision"] for e in done["last_executions"]] == [second, first]
    assert [e["status"] for e in done["last_executions"]] == ["succeeded", "succeeded"]
    # A push that does not touch the workflow runs nothing new for it.
    third = remote.writer.commit_and_push(
        {
            "notes.yaml": None,
            "clusters.yaml": (
                "apiVersion: reconciler/v1\nkind: Cluster\nmetadata: {name: local}\n"
                "spec: {driver: local, display_name: This host}\n"
            ),
        },
        "cluster name",
    )
    wait_for(
        "third seen",
        lambda: (s := _status(remote, "source.yaml")) and s["last_applied_revision"] == third,
    )
    assert len(daemon.executions("Workflow", "smoke")) == 2
    # Secrets never reach the logs.
    assert "sk-test-value-never-printed" not in daemon.log_text()


def test_an_invalid_push_stalls_the_source_and_keeps_the_last_good_state(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    good = remote.tip("main")
    daemon = start_daemon()
    wait_for(
        "applied",
        lambda: (s := _status(remote, "source.yaml")) and s.get("last_applied_revision") == good,
    )
    bad = remote.writer.commit_and_push(
        {"workflows.yaml": workflow(round_=2).replace("type: noop", "type: nope", 1)}, "typo"
    )
    source = wait_for(
        "stalled",
        lambda: (s := _status(remote, "source.yaml")) and s["last_seen_revision"] == bad and s,
    )
    stalled = condition(source, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "ValidationFailed"
    assert source["phase"] == "Stalled"
    assert source["last_applied_revision"] == good
    assert any(
        "workflows.yaml:" in d and "unknown step type 'nope'" in d for d in source["diagnostics"]
    )
    workflow_status = _status(remote, "workflows/smoke.yaml")
    assert workflow_status is not None and workflow_status["observed_revision"] == good
    assert len(daemon.executions("Workflow", "smoke")) == 1

    fixed = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=3)}, "fix")
    recovered = wait_for(
        "recovered",
        lambda: (s := _status(remote, "source.yaml")) and s["last_applied_revision"] == fixed and s,
    )
    assert condition(recovered, "Stalled")["status"] == "False"
    assert recovered["diagnostics"] == []


PROJECT_RENAMED = """\
apiVersion: reconciler/v1
kind: Project
metadata: {name: research}
spec: {description: 'Research endpoints, renamed'}
"""

MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: minilm}
spec:
  modality: embedding
  source: {provider_type: disk, uri: /var/lib/reconciler/models/minilm}
"""


def test_a_model_that_cannot_be_read_stalls_and_its_status_goes_with_it(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    added = remote.writer.commit_and_push({"models.yaml": MODEL}, "add a model")
    start_daemon()
    model = wait_for(
        "model status",
        lambda: (s := _status(remote, "models/minilm.yaml")) and s["phase"] == "Stalled" and s,
    )
    ready = condition(model, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] in ("DiskSourceUnreadable", "SourceNotFound")
    assert "/var/lib/reconciler/models/minilm" in ready["message"]
    assert model["observed_revision"] == added
    assert condition(model, "Stalled")["status"] == "True"

    unrelated = remote.writer.commit_and_push(
        {"projects.yaml": PROJECT_RENAMED}, "describe the project"
    )
    wait_for(
        "unrelated push applied",
        lambda: (s := _status(remote, "source.yaml")) and s["last_applied_revision"] == unrelated,
    )
    still = _status(remote, "models/minilm.yaml")
    assert still is not None and still["observed_revision"] == added  # its spec did not change
    assert still["phase"] == "Stalled"

    removed = remote.writer.commit_and_push({"models.yaml": None}, "remove the model")
    wait_for(
        "status gone",
        lambda: (
            (s := _status(remote, "source.yaml"))
            and s["last_seen_revision"] == removed
            and _status(remote, "models/minilm.yaml") is None
        ),
    )


def test_a_config_less_start_from_flags(remote: GitRemote, tmp_path) -> None:
    from tests.daemon.harness import DaemonProcess, daemon_env

    state = tmp_path / "flag-state"
    flags = ("--repo", str(remote.path), "--branch", "main", "--state-dir", str(state))
    daemon = DaemonProcess(
        tmp_path / "unused.yaml",
        state,
        tmp_path / "flags.log",
        daemon_env(RECONCILER_SECRET_OPENAI_API_KEY="from-env"),
        flags=flags,
    ).start()
    try:
        credential = wait_for(
            "credential ready from an environment secret",
            lambda: (
                (s := _status(remote, "credentials/openai-prod.yaml")) and s["phase"] == "Ready"
            ),
        )
        assert credential
        assert (state / "state.db").exists()
    finally:
        assert daemon.stop() == 0
    assert "from-env" not in daemon.log_text()


K8S_JOB_WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: runs-a-job}
spec:
  trigger: on_change
  user_params: {greeting: hello}
  workflows:
    provision:
      nodes:
        - id: train
          type: k8s_job
          user_inputs:
            cluster: local
            command: [sh, -c]
            args: ['echo "training: $GREETING"; echo "{\\"loss\\": 0.25}"']
            env: {GREETING: "${{ greeting }}"}
            node_timeout: 5m
        - id: report
          type: noop
          previous_node_inputs: {train: outputs}
"""


def test_a_k8s_job_on_the_local_cluster_runs_its_command_and_hands_on_its_outputs(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    added = remote.writer.commit_and_push({"jobs.yaml": K8S_JOB_WORKFLOW}, "add a job workflow")
    daemon = start_daemon()
    status = wait_for(
        "the job workflow to run",
        lambda: (s := _status(remote, "workflows/runs-a-job.yaml"))
        and s["observed_revision"] == added
        and s["phase"] in {"Ready", "Stalled"}
        and s,
    )
    assert status["phase"] == "Ready", status
    [execution] = daemon.executions("Workflow", "runs-a-job")
    steps = {row["node_id"]: row for row in daemon.steps(execution["id"])}
    assert steps["train"]["status"] == "done"
    outputs = json.loads(steps["train"]["outputs"])
    assert outputs == {
        "logs": 'training: hello\n{"loss": 0.25}\n',
        "exit_code": 0,
        "outputs": {"loss": 0.25},
    }
    assert "| training: hello" in steps["train"]["logs"]
    assert steps["report"]["status"] == "done"  # ran after it, given its outputs


MANUAL_WITH_PARAMS = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: by-hand}
spec:
  trigger: manual
  user_params: {delay: 10ms}
  workflows:
    provision:
      nodes:
        - id: wait
          type: noop
          user_inputs: {delay: "${{ delay }}"}
"""


def test_a_manual_workflow_with_parameters_is_recorded_not_stalled(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    added = remote.writer.commit_and_push({"manual.yaml": MANUAL_WITH_PARAMS}, "a manual one")
    start_daemon()
    status = wait_for(
        "manual workflow recorded",
        lambda: (
            (s := _status(remote, "workflows/by-hand.yaml"))
            and s["observed_revision"] == added
            and s["phase"] != "Pending"
            and s
        ),
    )
    assert status["phase"] == "Ready", status
    assert status["last_executions"] == []  # recorded, never run by a push
