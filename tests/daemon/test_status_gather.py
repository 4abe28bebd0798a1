"""A status commit waits briefly for the chains submitted just before it.

A chain that ends within the wait makes one status commit with its outcome, not one
saying it runs and another a moment later; a chain still running when the wait is over
has its running state published then, before it ends.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import STATUS_BRANCH, read_status
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until

STATUS_FILE = "status/workflows/gathered.yaml"


def workflow(round_: int, node: str) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: gathered}}
spec:
  trigger: on_change
  user_params: {{round: {round_}}}
  workflows:
    provision:
      nodes:
        - {node}
"""


def history(remote: GitRemote, since: str, revision: str) -> list[tuple[str, str]]:
    """(phase, observed revision) of the workflow in each status commit after ``since``
    that changed its file, oldest first; Ready at another revision than ``revision`` left
    out: that is the previous round's, whose outcome was on the branch when the test read
    the tip, and whose last fields can follow it."""
    commits = subprocess.run(
        [
            "git",
            "--git-dir",
            str(remote.path),
            "rev-list",
            "--reverse",
            f"{since}..{STATUS_BRANCH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found: list[tuple[str, str]] = []
    for commit in commits:
        shown = subprocess.run(
            ["git", "--git-dir", str(remote.path), "show", f"{commit}:{STATUS_FILE}"],
            capture_output=True,
            check=False,
        )
        if shown.returncode != 0:
            continue
        status = yaml.safe_load(shown.stdout)
        seen = (status["phase"], status.get("observed_revision"))
        if seen[0] == "Ready" and seen[1] != revision:
            continue
        if not found or found[-1] != seen:
            found.append(seen)
    return found


def _status_tip(remote: GitRemote) -> str:
    tip = remote.tip(STATUS_BRANCH)
    assert tip is not None
    return tip


def _succeeded_at(remote: GitRemote, since: str, revision: str) -> bool:
    return ("Ready", revision) in history(remote, since, revision)


async def _started(
    tmp_path: Path, remote: GitRemote, gather_s: float, **config: object
) -> RunningDaemon:
    """A daemon whose cycle status waits ``gather_s``, once round 0 has succeeded."""
    clock = ManualClock.at("2025-01-01T00:00:00Z")
    running = await start_daemon(tmp_path, remote.path, clock, **config)
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    reconciler.status.pacing.gather_s = gather_s
    first = remote.tip()

    def round_0_succeeded() -> bool:
        status = read_status(remote.path, STATUS_FILE)
        return (
            status is not None
            and status["phase"] == "Ready"
            and (status.get("observed_revision") == first)
        )

    await wait_until("round 0 succeeded", round_0_succeeded)
    return running


async def test_a_chain_that_ends_within_the_wait_makes_one_status_commit(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    # A wait far longer than the test's: even a loaded machine ends a noop chain within
    # it, and the commit goes when the chain ends, not when the wait is over.
    running = await _started(tmp_path, remote, gather_s=600.0)
    try:
        before = _status_tip(remote)
        pushed = remote.writer.commit_and_push(
            {"wf.yaml": workflow(1, "{id: only, type: noop}")}, "round 1"
        )
        await wait_until("round 1 succeeded", lambda: _succeeded_at(remote, before, pushed))
        assert history(remote, before, pushed) == [("Ready", pushed)]
    finally:
        await running.stop()


@pytest.fixture
async def gate() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A neighbour on loopback whose answer waits until the test opens the gate."""
    opened = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await opened.wait()
        return web.Response(text="through")

    app = web.Application()
    app.router.add_get("/held", held)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/held", opened
    finally:
        opened.set()
        await runner.cleanup()


async def test_a_chain_still_running_after_the_wait_is_published_as_running(
    make_git_remote: MakeGitRemote, tmp_path: Path, gate: tuple[str, asyncio.Event]
) -> None:
    url, opened = gate
    node = f"{{id: call, type: http_request, user_inputs: {{method: GET, url: '{url}'}}}}"
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    running = await _started(tmp_path, remote, gather_s=0.2)
    try:
        before = _status_tip(remote)
        pushed = remote.writer.commit_and_push({"wf.yaml": workflow(1, node)}, "held call")
        await wait_until(
            "the held run published as running",
            lambda: any(phase == "Reconciling" for phase, _ in history(remote, before, pushed)),
        )
        assert not _succeeded_at(remote, before, pushed)
        opened.set()
        await wait_until("the run succeeded", lambda: _succeeded_at(remote, before, pushed))
        assert history(remote, before, pushed)[0][0] == "Reconciling"
    finally:
        await running.stop()


async def test_a_commit_gathering_for_a_chain_goes_when_the_chain_ends(
    make_git_remote: MakeGitRemote, tmp_path: Path, gate: tuple[str, asyncio.Event]
) -> None:
    """The commit waits for the chain it gathers for, not for the whole wait: held by the
    gate well inside a 600 s gather, the chain ends when the gate opens and its one
    commit follows at once."""
    url, opened = gate
    node = f"{{id: call, type: http_request, user_inputs: {{method: GET, url: '{url}'}}}}"
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    running = await _started(tmp_path, remote, gather_s=600.0, resync_interval="1h")
    store = running.daemon.store
    assert store is not None
    try:
        before = _status_tip(remote)
        pushed = remote.writer.commit_and_push({"wf.yaml": workflow(1, node)}, "held call")
        await wait_until(
            "the held run started",
            lambda: any(
                r.status == "running"
                for r in store.list_executions(kind="Workflow", name="gathered")
            ),
        )
        assert history(remote, before, pushed) == []  # gathering: nothing committed for it yet
        opened.set()
        # well inside the gather: a commit that waited it out would come after 600 s
        await wait_until(
            "the run succeeded", lambda: _succeeded_at(remote, before, pushed), timeout=30
        )
        assert history(remote, before, pushed) == [("Ready", pushed)]
    finally:
        await running.stop()


async def test_a_stream_of_submitted_chains_does_not_hold_a_commit_past_the_gather(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """Chains submitted one after another (a start's backlog, thousands of them) each
    open a gather; a commit waits at most ``gather_s`` from its first object's move,
    not until the stream stops."""
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    running = await _started(tmp_path, remote, gather_s=2.0, resync_interval="1h")
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    stop = asyncio.Event()

    async def submissions() -> None:  # as the executor submits a backlog's chains
        count = 0
        while not stop.is_set():
            count += 1
            reconciler.status.chain_submitted(f"backlog-run-{count}")
            await asyncio.sleep(0.01)

    stream = asyncio.create_task(submissions())
    try:
        before = _status_tip(remote)
        pushed = remote.writer.commit_and_push(
            {"wf.yaml": workflow(1, "{id: only, type: noop}")}, "round 1"
        )
        # the stream goes on all along: a gather renewed by each submission never ends
        await wait_until(
            "round 1 succeeded", lambda: _succeeded_at(remote, before, pushed), timeout=30
        )
    finally:
        stop.set()
        await stream
        await running.stop()


async def test_a_push_is_not_held_by_the_pace_of_backlog_commits(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """Backlog-only commits are paced (one per ``backlog_interval_s``); what a push moves
    wakes the publisher out of that pace and goes in its own commit at once (here a
    Workflow suspended by the push: a status move with no chain to end)."""
    files = {
        "wf.yaml": workflow(0, "{id: only, type: noop}"),
        "other.yaml": workflow(0, "{id: only, type: noop}").replace("gathered", "other"),
    }
    remote = make_git_remote(files=files)
    running = await _started(tmp_path, remote, gather_s=0.05, resync_interval="1h")
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    reconciler.status.pacing.backlog_interval_s = 3600.0
    try:
        await reconciler.status.between_commits()
        reconciler.status.mark("Workflow/other", backlog=True)  # paced for an hour
        before = _status_tip(remote)
        suspended = workflow(0, "{id: only, type: noop}").replace(
            "trigger: on_change", "trigger: on_change\n  suspend: true"
        )
        pushed = remote.writer.commit_and_push({"wf.yaml": suspended}, "suspend it")
        await wait_until(
            "the suspension committed",
            lambda: ("Pending", pushed) in history(remote, before, pushed),
            timeout=30,
        )
    finally:
        await running.stop()


async def test_a_publisher_with_nothing_to_publish_waits_instead_of_spinning(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """Woken with nothing moved (every sync of the source wakes it), the publisher finds
    nothing to commit and waits for the next mark; it used to wait a delay of a few
    microseconds again and again, a core at 100% for as long as the daemon was idle."""
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    running = await _started(tmp_path, remote, gather_s=0.05, resync_interval="1h")
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    try:
        await wait_until("the publisher idle", reconciler.status.idle, timeout=30)
        reconciler.status.mark_source()
        assert not reconciler.status.idle()
        await wait_until("the publisher idle again", reconciler.status.idle, timeout=30)
    finally:
        await running.stop()


async def test_a_status_the_store_has_and_git_not_is_committed_after_a_restart(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """Reads see a status as soon as it moves; a daemon that dies before the next status
    commit (here: its commits never reach the remote) commits it after the restart."""
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    running = await _started(tmp_path, remote, gather_s=0.05, resync_interval="1h")
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    reconciler.status._publisher = None  # as if killed before each push: nothing reaches Git
    before = _status_tip(remote)
    pushed = remote.writer.commit_and_push(
        {"wf.yaml": workflow(1, "{id: only, type: noop}")}, "round 1"
    )
    try:
        await wait_until(
            "round 1 Ready in the store",
            lambda: (
                running.status("Workflow/gathered").get("observed_revision") == pushed
                and running.status("Workflow/gathered").get("phase") == "Ready"
            ),
        )
    finally:
        await running.stop()
    assert not _succeeded_at(remote, before, pushed)

    clock = ManualClock.at("2025-01-01T00:00:00Z")
    restarted = await start_daemon(tmp_path, remote.path, clock, resync_interval="1h")
    try:
        await wait_until(
            "round 1 in Git after the restart",
            lambda: _succeeded_at(remote, before, pushed),
            timeout=30,
        )
    finally:
        await restarted.stop()


async def test_reads_see_a_status_at_once_and_git_with_the_next_commit(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    """What the API reads (the store) is current as soon as the object's status moves;
    only the Git commit waits for its window, and it still carries the move."""
    remote = make_git_remote(files={"wf.yaml": workflow(0, "{id: only, type: noop}")})
    # No resync in the test's time: its commit goes whatever the window.
    running = await _started(tmp_path, remote, gather_s=0.2, resync_interval="1h")
    store, reconciler = running.daemon.store, running.daemon.reconciler
    assert store is not None and reconciler is not None
    reconciler.status.pacing.window_s = 3600.0  # no status commit until the daemon stops...
    await reconciler.status.between_commits()  # ...once one in flight is pushed
    try:
        before = _status_tip(remote)
        pushed = remote.writer.commit_and_push(
            {"wf.yaml": workflow(1, "{id: only, type: noop}")}, "round 1"
        )

        def read() -> dict[str, object] | None:
            record = store.get_object("Workflow", "gathered")
            status = record.status.get("status") if record is not None else None
            ready = isinstance(status, dict) and status.get("phase") == "Ready"
            return status if ready and status.get("observed_revision") == pushed else None

        status = await wait_until("the store to say Ready at the push", read)
        assert status["last_executions"][0]["status"] == "succeeded"  # type: ignore[index]
        assert history(remote, before, pushed) == []  # Git has not had it yet
    finally:
        await running.stop()
    assert history(remote, before, pushed)[-1] == ("Ready", pushed)
