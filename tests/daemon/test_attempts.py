"""An object is planned against what was last attempted, and each life of it is its own.

- A Credential that stalled on a changed spec (its secret name points at nothing) is
  planned again when the spec goes back to the last applied one, and is Ready again:
  the attempt that failed was of another spec.
- A Workflow removed from Git and added back identical is a new object: it runs again
  and its status observes the revision that added it back.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeGitRemote
from tests.daemon.conftest import PROJECT, workflow
from tests.daemon.harness import read_status
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until

CREDENTIAL = """\
apiVersion: reconciler/v1
kind: Credential
metadata: {{name: api-key}}
spec: {{provider: openai, secret: {secret}}}
"""


async def _phase_at(
    running: RunningDaemon, remote_path: Path, kind_plural: str, name: str, revision: str
) -> dict[str, object]:
    """The object's published status once it observes ``revision`` and is not moving."""

    def settled() -> dict[str, object] | None:
        status = read_status(remote_path, f"status/{kind_plural}/{name}.yaml")
        if status is None or status.get("observed_revision") != revision:
            return None
        return status if status.get("phase") in ("Ready", "Stalled") else None

    found: dict[str, object] = await wait_until(f"{name} settled at {revision[:8]}", settled)
    return found


async def test_a_stalled_spec_put_back_is_planned_again(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "present-key").write_text("sk-not-printed\n")
    remote = make_git_remote(
        files={"project.yaml": PROJECT, "credential.yaml": CREDENTIAL.format(secret="present-key")}
    )
    first = remote.tip()
    assert first is not None
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        ready = await _phase_at(running, remote.path, "credentials", "api-key", first)
        assert ready["phase"] == "Ready"

        broken = remote.writer.commit_and_push(
            {"credential.yaml": CREDENTIAL.format(secret="absent-key")}, "point at nothing"
        )
        stalled = await _phase_at(running, remote.path, "credentials", "api-key", broken)
        assert stalled["phase"] == "Stalled"
        assert "SecretNotFound" in str(stalled["conditions"])

        back = remote.writer.commit_and_push(
            {"credential.yaml": CREDENTIAL.format(secret="present-key")}, "put it back"
        )
        again = await _phase_at(running, remote.path, "credentials", "api-key", back)
        assert again["phase"] == "Ready", again
        assert running.daemon.store is not None
        runs = running.daemon.store.list_executions(kind="Credential", name="api-key")
        assert [r.status for r in runs] == ["succeeded", "stalled", "succeeded"]
    finally:
        await running.stop()


async def test_an_object_removed_and_added_back_is_a_new_object(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"workflow.yaml": workflow("again", nodes=1)})
    first = remote.tip()
    assert first is not None
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        ran = await _phase_at(running, remote.path, "workflows", "again", first)
        assert ran["phase"] == "Ready"
        assert len(running.executions("again")) == 1

        remote.writer.commit_and_push({"workflow.yaml": None}, "remove it")
        await wait_until(
            "its status gone",
            lambda: read_status(remote.path, "status/workflows/again.yaml") is None,
        )
        back = remote.writer.commit_and_push(
            {"workflow.yaml": workflow("again", nodes=1)}, "add it back, identical"
        )
        reborn = await _phase_at(running, remote.path, "workflows", "again", back)
        assert reborn["phase"] == "Ready"
        runs = running.executions("again")
        assert len(runs) == 2 and runs[0].revision == back  # it ran again, for the new life
        last = reborn["last_executions"]
        assert isinstance(last, list) and [e["id"] for e in last] == [runs[0].id]
    finally:
        await running.stop()
