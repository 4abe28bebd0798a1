"""The daemon's life: SIGHUP reloads, SIGTERM mid-chain then a restart, resync reruns a
stalled chain, a force-push to the watched branch, another writer rewriting the status
branch. Each runs a real daemon subprocess on a bare remote (see harness.py)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import GitRemote, git
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import DaemonProcess, NotifySocket, daemon_env, read_status, wait_for


def _status(remote: GitRemote, path: str) -> dict[str, Any] | None:
    return read_status(remote.path, f"status/{path}")


def _config(tmp_path: Path, remote: GitRemote, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "repo": {"url": str(remote.path), "branch": "main", "poll_interval": "500ms"},
        "resync_interval": "1h",
        "state_dir": str(tmp_path / "state"),
        "secrets_dir": str(tmp_path / "secrets"),
        **extra,
    }
    path = tmp_path / "reconciler.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sighup_applies_new_values_and_a_bad_reload_keeps_the_old_ones(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    config = _config(tmp_path, remote, logging={"level": "warning"})
    daemon = start_daemon(config_path=config, notify=notify_socket)
    wait_for("ready", lambda: notify_socket.seen("READY=1"))
    assert daemon.records("revision loaded") == []  # info lines are off at level warning

    _config(tmp_path, remote, logging={"level": "info"})
    daemon.signal(signal.SIGHUP)
    wait_for("config reloaded", lambda: daemon.records("config reloaded"))
    # The new level is in force: the resync a reload asks for is logged at info.
    wait_for("an info line after the reload", lambda: daemon.records("revision loaded"))

    config.write_text(config.read_text() + "resync_interval: soon\n")
    daemon.signal(signal.SIGHUP)
    (failed,) = wait_for(
        "reload refused", lambda: daemon.records("config reload failed; keeping the running config")
    )
    assert "resync_interval" in failed["error"] and "reconciler.yaml" in failed["error"]
    assert daemon.alive()
    # The running config (level info) still serves: a push is planned and logged.
    pushed = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=2)}, "round 2")
    wait_for(
        "the push planned under the kept config",
        lambda: any(r.get("revision") == pushed for r in daemon.records("revision loaded")),
    )
    assert len(daemon.records("config reloaded")) == 1


def _done(daemon: DaemonProcess, execution_id: str) -> int:
    return sum(1 for s in daemon.steps(execution_id) if s["status"] == "done")


def test_sigterm_mid_chain_lets_the_step_finish_and_a_restart_resumes_the_chain(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    head = remote.writer.commit_and_push(
        {"workflows.yaml": workflow(delay="400ms", nodes=6, round_=9)}, "slow chain"
    )
    daemon = start_daemon()
    execution = wait_for("execution", lambda: daemon.executions("Workflow", "smoke"))[0]["id"]
    wait_for(
        "one step done and the next running",
        lambda: (
            _done(daemon, execution) == 1
            and any(s["status"] == "running" for s in daemon.steps(execution))
        ),
        every=0.02,
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=25) == 0
    stopped = {s["node_id"]: s for s in daemon.steps(execution)}
    # The step running when the stop was taken reached its boundary; nothing after it
    # started. (On a loaded machine the signal can land a step or two later than n1.)
    statuses = [stopped[f"n{i}"]["status"] if f"n{i}" in stopped else None for i in range(6)]
    finished = statuses.count("done")
    assert 2 <= finished < 6, statuses
    assert statuses[:finished] == ["done"] * finished, statuses
    assert set(statuses[finished:]) <= {"pending", "queued", None}, statuses
    assert daemon.executions("Workflow", "smoke")[0]["status"] == "running"

    restarted = start_daemon()
    wait_for(
        "finished after the restart",
        lambda: (
            (s := _status(remote, "workflows/smoke.yaml"))
            and s["observed_revision"] == head
            and s["phase"] == "Ready"
        ),
        timeout=30,
    )
    executions = restarted.executions("Workflow", "smoke")
    assert [e["id"] for e in executions] == [execution]  # resumed, not started again
    steps = {s["node_id"]: s for s in restarted.steps(execution)}
    assert all(s["status"] == "done" and s["attempts"] == 1 for s in steps.values())
    for node in (f"n{i}" for i in range(finished)):  # done before the stop: kept, not rerun
        assert steps[node]["finished_at"] == stopped[node]["finished_at"]
    assert restarted.records("resumed interrupted chains")


def test_resync_reruns_a_stalled_chain(remote: GitRemote, tmp_path: Path) -> None:
    """The credential's secret appears in $CREDENTIALS_DIRECTORY, which nothing watches:
    only the periodic resync runs its stalled chain again and finds it."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (tmp_path / "secrets").mkdir()
    config = _config(tmp_path, remote, resync_interval="2s")
    daemon = DaemonProcess(
        config,
        tmp_path / "state",
        tmp_path / "daemon.log",
        daemon_env(CREDENTIALS_DIRECTORY=str(credentials)),
    ).start()
    try:
        stalled = wait_for(
            "credential stalled",
            lambda: (
                (s := _status(remote, "credentials/openai-prod.yaml"))
                and s["phase"] == "Stalled"
                and s
            ),
        )
        assert "SecretNotFound" in str(stalled["conditions"])
        (credentials / "openai-api-key").write_text("sk-appeared-later\n")
        wait_for(
            "credential ready after a resync",
            lambda: (
                (s := _status(remote, "credentials/openai-prod.yaml")) and s["phase"] == "Ready"
            ),
        )
        runs = daemon.executions("Credential", "openai-prod")
        # a resync may come between the stall and the secret: stalled once or more, then not
        statuses = [r["status"] for r in runs]
        assert statuses[-1] == "succeeded" and set(statuses[:-1]) == {"stalled"}, statuses
        assert {r["spec_hash"] for r in runs} == {runs[0]["spec_hash"]}  # reruns, not a change
    finally:
        assert daemon.stop() == 0
    assert "sk-appeared-later" not in daemon.log_text()


def test_a_force_push_to_the_watched_branch_is_applied(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    base = remote.tip("main")
    start_daemon()
    first = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=2)}, "round 2")
    wait_for(
        "round 2 applied",
        lambda: (s := _status(remote, "source.yaml")) and s.get("last_applied_revision") == first,
    )
    git(remote.writer.path, "reset", "--quiet", "--hard", str(base))
    remote.writer.write({"workflows.yaml": workflow(round_=3)})
    rewritten = remote.writer.commit("rewrite: round 3 instead")
    git(remote.writer.path, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")
    run = wait_for(
        "the rewritten head ran",
        lambda: (
            (s := _status(remote, "workflows/smoke.yaml"))
            and s["observed_revision"] == rewritten
            and s["phase"] == "Ready"
            and s
        ),
    )
    assert run["last_executions"][0]["revision"] == rewritten
    source = wait_for(
        "source on the rewritten head",
        lambda: (
            (s := _status(remote, "source.yaml"))
            and s.get("last_applied_revision") == rewritten
            and s
        ),
    )
    assert source["last_seen_revision"] == rewritten


def test_another_writer_rewriting_the_status_branch_gets_every_file_back(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    start_daemon()
    wait_for(
        "workflow status published",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["phase"] == "Ready",
    )
    other = remote.clone("rewriter")
    git(other.path, "checkout", "--quiet", "--orphan", "rewritten")
    git(other.path, "rm", "-r", "--quiet", "--cached", ".")
    git(other.path, "clean", "-fdq")
    other.write({"NOTE.md": "status was reset by an operator\n"})
    git(other.path, "add", "NOTE.md")
    git(other.path, "commit", "--quiet", "-m", "reset the status branch")
    git(other.path, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/reconciler/status")
    assert "status/workflows/smoke.yaml" not in remote.paths("reconciler/status")

    # Any later status change (here: a push that runs the workflow) finds the branch lost.
    pushed = remote.writer.commit_and_push({"workflows.yaml": workflow(round_=2)}, "round 2")
    wait_for(
        "status rebuilt on the rewritten branch",
        lambda: (
            {"status/source.yaml", "status/projects/research.yaml", "NOTE.md"}
            <= remote.paths("reconciler/status")
        ),
    )
    wait_for(
        "the push's status",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["observed_revision"] == pushed,
    )
    assert "NOTE.md" in remote.paths("reconciler/status")  # the other writer's file survives
