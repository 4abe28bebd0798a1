"""A daemon started on a repo whose head fails validation decides nothing until a revision
validates: an object applied before the restart is not taken for removed.

Nothing is desired *yet* is not the same as nothing is desired. Anything that queues an
object before the first load (a resumed chain's end, an API sync of one object) must
leave it as it is, and the first revision that validates queues every object.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeGitRemote
from tests.daemon.conftest import SEED
from tests.daemon.inprocess import ManualClock, start_daemon, wait_until

KEY = "Credential/openai-prod"
CLOCK = "2025-01-01T00:00:00Z"


async def test_an_object_queued_before_any_revision_validates_is_left_as_it_is(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SEED)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "openai-api-key").write_text("sk-test-value-never-printed\n")
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    try:
        await wait_until(
            "the Credential Ready", lambda: running.status(KEY).get("phase") == "Ready"
        )
    finally:
        await running.stop()

    remote.writer.commit_and_push({"broken.yaml": "kind: [unclosed\n"}, "a broken push")
    running = await start_daemon(tmp_path, remote.path, ManualClock.at(CLOCK))
    try:
        reconciler = running.daemon.reconciler
        assert reconciler is not None
        assert reconciler.last_report is not None and not reconciler.last_report.valid
        reconciler.request(KEY)
        await wait_until("the request taken", reconciler.queue.idle)
        assert running.status(KEY).get("phase") == "Ready"
        assert running.daemon.store is not None
        runs = running.daemon.store.list_executions(kind="Credential", name="openai-prod")
        assert len(runs) == 1 and runs[0].action != "delete"  # the one run before the restart

        remote.writer.commit_and_push({"broken.yaml": None}, "the fix")
        await wait_until(
            "the fixed revision loaded",
            lambda: reconciler.last_report is not None and reconciler.last_report.valid,
        )
        await wait_until("the backlog worked through", reconciler.queue.idle)
        # the first valid load re-checks what can drift (the secret): Ready again after
        await wait_until(
            "the Credential Ready", lambda: running.status(KEY).get("phase") == "Ready"
        )
        runs = running.daemon.store.list_executions(kind="Credential", name="openai-prod")
        assert "delete" not in [r.action for r in runs]
    finally:
        await running.stop()
