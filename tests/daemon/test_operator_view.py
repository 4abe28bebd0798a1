"""What an operator sees: status that tells the truth while a step runs and never goes
missing, one daemon per state dir, stop requests that say what they wait for, secrets
picked up at once, logs that carry each problem.

Each test drives a real daemon process on a real bare remote and reads what it wrote to
Git, its log or its exit code.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon, workflow
from tests.daemon.harness import condition, daemon_env, read_status, wait_for

SLOW = workflow("slow", delay="60s", nodes=1)


def _status(remote: GitRemote, path: str) -> dict | None:
    return read_status(remote.path, f"status/{path}")


def test_a_running_step_shows_as_running_and_a_second_stop_request_ends_at_once(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    remote.writer.commit_and_push({"workflows.yaml": SLOW}, "a slow workflow")
    daemon = start_daemon()
    # The execution is running a moment before its step is: a status commit made in
    # between says so truthfully, so wait for the one that shows the step running.
    running = wait_for(
        "status says the step is running",
        lambda: (
            (s := _status(remote, "workflows/slow.yaml"))
            and s["last_executions"]
            and s["last_executions"][0]["status"] == "running"
            and s["last_executions"][0]["steps"]
            and s["last_executions"][0]["steps"][0]["status"] == "running"
            and s
        ),
        timeout=60,
    )
    (execution,) = running["last_executions"][:1]
    assert execution["started_at"] is not None
    (step,) = execution["steps"]
    assert step["status"] == "running" and step["attempts"] == 1
    assert running["phase"] == "Reconciling"
    assert f"(step {step['id']})" in condition(running, "Ready")["message"]

    daemon.signal(signal.SIGTERM)
    waiting = wait_for(
        "stop says what it waits for",
        lambda: daemon.records("stopping: waiting for running steps to reach a boundary"),
    )
    assert waiting[0]["grace_s"] == 20.0 and waiting[0]["deadline"]
    assert "again" in waiting[0]["hint"]
    asked = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=15) == 0
    assert time.monotonic() - asked < 10  # not the 20 s grace
    after = _status(remote, "workflows/slow.yaml")
    assert after is not None and after["last_executions"][0]["status"] == "running"


def test_a_deleted_status_branch_is_written_again_whole(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    start_daemon()
    wait_for(
        "status published",
        lambda: (s := _status(remote, "workflows/smoke.yaml")) and s["phase"] == "Ready",
        timeout=60,
    )
    before = {
        path: _status(remote, path)
        for path in (
            "projects/research.yaml",
            "credentials/openai-prod.yaml",
            "clusters/local.yaml",
        )
    }
    assert all(before.values())
    subprocess.run(
        ["git", "update-ref", "-d", "refs/heads/reconciler/status"], cwd=remote.path, check=True
    )
    remote.writer.commit_and_push({"notes.yaml": "# a change of nothing\n"}, "any push")
    rebuilt = wait_for(
        "every status file back",
        lambda: all(_status(remote, path) for path in before) and True,
    )
    assert rebuilt
    for path, document in before.items():
        again = _status(remote, path)
        assert again is not None and again["phase"] == document["phase"], path
    assert _status(remote, "workflows/smoke.yaml") is not None
    assert _status(remote, "source.yaml") is not None


def test_a_secret_created_after_start_is_seen_at_once(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path
) -> None:
    credential = (
        "apiVersion: reconciler/v1\nkind: Credential\nmetadata: {name: hf}\n"
        "spec: {provider: huggingface, secret: hf-token}\n"
    )
    remote.writer.commit_and_push({"hf.yaml": credential}, "a credential without its secret")
    start_daemon(poll="1h", resync="1h")
    stalled = wait_for(
        "stalled for its secret",
        lambda: (s := _status(remote, "credentials/hf.yaml")) and s["phase"] == "Stalled" and s,
    )
    assert condition(stalled, "Ready")["reason"] == "SecretNotFound"
    (tmp_path / "secrets" / "hf-token").write_text("hf_not_a_real_token_0123456789\n")
    ready = wait_for(
        "ready without a resync",
        lambda: (s := _status(remote, "credentials/hf.yaml")) and s["phase"] == "Ready" and s,
        timeout=30,
    )
    assert ready["phase"] == "Ready"


def test_a_second_daemon_on_the_same_state_dir_is_refused_naming_the_first(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    first = start_daemon()
    wait_for("first daemon ready", lambda: first.records("ready"))
    second = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--config", str(first.config)],
        env=daemon_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert f"another reconciler daemon (pid {first.pid})" in second.stderr
    assert first.alive()


def test_a_repo_that_does_not_exist_is_an_error_at_start(tmp_path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "run",
            "--repo",
            str(tmp_path / "no-such-repo"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        env=daemon_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot read the state repo" in done.stderr
    assert "no-such-repo" in done.stderr


def test_a_bad_revision_logs_each_problem(remote: GitRemote, start_daemon: StartDaemon) -> None:
    daemon = start_daemon()
    wait_for("ready", lambda: daemon.records("ready"))
    broken = (
        "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: Bad_Name}\n"
        "spec: {descriptoin: typo}\n"
    )
    remote.writer.commit_and_push({"broken.yaml": broken}, "two problems")
    lines = wait_for(
        "problems logged",
        lambda: (
            (found := [r for r in daemon.logs() if r.get("msg", "").startswith("invalid spec:")])
            and len(found) >= 2
            and found
        ),
    )
    text = "\n".join(r["msg"] for r in lines)
    assert "broken.yaml:3:" in text and "Bad_Name" in text
    assert "descriptoin" in text


def test_log_lines_start_with_time_level_and_message(
    remote: GitRemote, start_daemon: StartDaemon
) -> None:
    daemon = start_daemon()
    wait_for("ready", lambda: daemon.records("ready"))
    first_line = daemon.log_text().splitlines()[0]
    assert first_line.startswith('{"ts": "'), first_line
    keys = list(daemon.logs()[0])
    assert keys[:3] == ["ts", "level", "msg"]
    succeeded = wait_for("an execution line", lambda: daemon.records("execution succeeded"))
    assert succeeded[0]["duration_s"] is not None and succeeded[0]["object"]
    assert not [r for r in daemon.logs() if "rust notify timeout" in r.get("msg", "")]
