"""A Workflow's run settings change what a real daemon does: the retry policy decides
whether a failing step is tried again, ``config.logs`` what the store keeps of the
steps' logs, ``environments`` with ``environment_strategy`` which cluster each run
targets (by change in Git, by a start through the API, with an environment asked for),
and notifications enabled without channels of their own go to the daemon config's
default channels (email through a real SMTP server on loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.api.daemon_view import DaemonAdapter
from tests.conftest import MakeGitRemote
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until
from tests.workflows.mail_server import SMTP_PASSWORD, running_smtp_server

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
CLOCK = "2025-01-01T00:00:00Z"


def _retried(name: str, config: str) -> str:
    """An on_change workflow whose one step fails once, then succeeds (retries allowing)."""
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  trigger: on_change
  config: {{retries: 2, retry_delay: 10ms, {config}}}
  workflows:
    provision:
      nodes:
        - {{id: flaky, type: fail, user_inputs: {{message: no luck, until_attempt: 2}}}}
"""


async def _finished(running: RunningDaemon, name: str) -> Any:
    return await wait_until(
        f"{name}'s run to end",
        lambda: (r := running.executions(name)) and r[0].finished and r[0],
    )


async def test_retry_policy_and_kept_step_logs(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(
        files={
            "all.yaml": _retried("keeps-all", "logs: {level: info}"),
            "errors.yaml": _retried("keeps-errors", "logs: {level: error}"),
            "none.yaml": _retried("keeps-none", "logs: {enabled: false}"),
            "once.yaml": _retried("no-retry", "retry_enabled: false"),
        }
    )
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    store = running.daemon.store
    assert store is not None
    try:
        logs = {}
        for name in ("keeps-all", "keeps-errors", "keeps-none"):
            record = await _finished(running, name)
            assert record.status == "succeeded"
            (step,) = store.get_steps(record.id)
            assert step.attempts == 2
            logs[name] = [line.split(" ", 1)[1] for line in step.logs.splitlines()]
        assert logs["keeps-all"][0] == "ERROR no luck"
        assert logs["keeps-all"][1].startswith("INFO retrying in")
        assert logs["keeps-all"][2] == "INFO attempt 2 reached until_attempt=2: succeeding"
        assert logs["keeps-errors"] == ["ERROR no luck"]
        assert logs["keeps-none"] == []
        once = await _finished(running, "no-retry")
        assert once.status == "failed" and "gave up after 1 attempt" in (once.error or "")
        (step,) = store.get_steps(once.id)
        assert step.attempts == 1
    finally:
        await running.stop()


CLUSTERS = """\
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu-east, labels: {reconciler/environment: awsVirginia}}
spec: {driver: local}
---
apiVersion: reconciler/v1
kind: Cluster
metadata: {name: gpu-west, labels: {reconciler/environment: dgxCloudCalifornia}}
spec: {driver: local}
"""


def _targeted(name: str, *, trigger: str, strategy: str, environments: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  trigger: {trigger}
  environments: {environments}
  environment_strategy: {strategy}
  user_params: {{cluster: "", environment: ""}}
  workflows:
    provision:
      nodes:
        - {{id: work, type: noop, user_inputs: {{delay: 10ms}}}}
"""


async def test_each_run_targets_a_cluster_of_its_environments(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(
        files={
            "clusters.yaml": CLUSTERS,
            "rotating.yaml": _targeted(
                "rotating",
                trigger="manual",
                strategy="round_robin",
                environments="[awsVirginia, dgxCloudCalifornia]",
            ),
            "changed.yaml": _targeted(
                "changed",
                trigger="on_change",
                strategy="ordered",
                environments="[dgxCloudCalifornia, awsVirginia]",
            ),
            "nowhere.yaml": _targeted(
                "nowhere", trigger="manual", strategy="ordered", environments="[production]"
            ),
        }
    )
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    store = running.daemon.store
    assert store is not None
    view = DaemonAdapter(running.daemon)
    try:
        on_change = await _finished(running, "changed")
        assert on_change.chain.cluster == "gpu-west"
        assert on_change.params["cluster"] == "gpu-west"
        assert on_change.params["environment"] == "dgxCloudCalifornia"

        def recorded(name: str) -> bool:
            state = view.desired().get(f"Workflow/{name}")
            record = store.get_object("Workflow", name)
            return state is not None and record is not None and record.spec_hash == state.spec_hash

        await wait_until("the manual workflows recorded", lambda: recorded("rotating"))
        clusters = []
        for _ in range(3):
            started = view.start_workflow(name="rotating", params={}, requested_by="test")
            record = await wait_until(
                "the run to end",
                lambda: (r := store.get_execution(started)).finished and r,  # noqa: B023
            )
            clusters.append((record.chain.cluster, record.params["environment"]))
        assert clusters == [
            ("gpu-east", "awsVirginia"),
            ("gpu-west", "dgxCloudCalifornia"),
            ("gpu-east", "awsVirginia"),
        ]
        asked = view.start_workflow(
            name="rotating",
            params={"cluster": "my-own"},
            requested_by="test",
            environment="dgxCloudCalifornia",
        )
        record = await wait_until(
            "the asked-for run to end", lambda: (r := store.get_execution(asked)).finished and r
        )
        assert record.chain.cluster == "gpu-west"
        assert record.params == {"cluster": "my-own", "environment": "dgxCloudCalifornia"}

        await wait_until("nowhere recorded", lambda: recorded("nowhere"))
        untargeted = view.start_workflow(name="nowhere", params={}, requested_by="test")
        record = await wait_until(
            "the untargeted run to end",
            lambda: (r := store.get_execution(untargeted)).finished and r,
        )
        assert record.status == "succeeded" and record.chain.cluster is None
        assert record.params == {"cluster": "", "environment": "production"}
    finally:
        await running.stop()


NOTIFIED = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: announced}
spec:
  trigger: on_change
  config:
    notifications: {enabled: true, events: [complete]}
  workflows:
    provision:
      nodes:
        - {id: only, type: noop}
"""


async def test_notifications_enabled_without_channels_go_to_the_daemon_defaults(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "smtp-password").write_text(SMTP_PASSWORD + "\n")
    remote = make_git_remote(files={"w.yaml": NOTIFIED})
    with running_smtp_server() as (mail, port):
        notifications = {
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "sender": "reconciler@example.com",
                "username": "reconciler",
                "password_secret": "smtp-password",
            },
            "defaults": {"email_to": ["ml-ops@example.com"]},
        }
        running = await start_daemon(
            tmp_path, remote.path, ManualClock.at(CLOCK), notifications=notifications
        )
        try:
            record = await _finished(running, "announced")
            await wait_until("the mail", lambda: mail.mails)
            ((recipients, message),) = mail.mails
            assert recipients == ["ml-ops@example.com"]
            assert message["Subject"] == "[reconciler] Workflow announced: complete (succeeded)"
            assert record.id in str(message.get_body(preferencelist=("plain",)))
        finally:
            await running.stop()
