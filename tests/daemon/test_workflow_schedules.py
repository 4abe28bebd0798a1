"""Scheduled Workflows through a real daemon, with a clock the test moves.

Every five minutes (``*/5 * * * *``); the grace for an on-time tick is two minutes, so a
clock moved 30 s past a tick runs it and one moved 3.5 min past it finds it missed.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import GitRemote, MakeGitRemote
from tests.daemon.harness import read_status
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until

START = "2025-01-01T00:01:00Z"


def scheduled(
    name: str = "tick",
    *,
    trigger: str = "manual",
    catch_up: bool = False,
    skip_on_failure: bool = False,
    suspend: bool = False,
    failing: bool = False,
    timezone: str | None = None,
) -> str:
    step = (
        "{id: work, type: fail, user_inputs: {message: broken}}"
        if failing
        else "{id: work, type: noop}"
    )
    zone = f"\n      timezone: {timezone}" if timezone else ""
    return f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: {name}}}
spec:
  trigger: {trigger}
  suspend: {str(suspend).lower()}
  config:
    schedule:
      cron: "*/5 * * * *"
      catch_up: {str(catch_up).lower()}
      skip_on_failure: {str(skip_on_failure).lower()}{zone}
  workflows:
    provision:
      nodes:
        - {step}
"""


def _remote(make_git_remote: MakeGitRemote, **spec: object) -> GitRemote:
    return make_git_remote(files={"workflows.yaml": scheduled(**spec)})  # type: ignore[arg-type]


def _scheduled_runs(running: RunningDaemon, name: str = "tick") -> list[object]:
    return [r for r in running.executions(name) if r.trigger == "schedule"]


async def _settled(running: RunningDaemon, name: str = "tick") -> dict[str, object]:
    """The Workflow's status once its schedule is known."""
    return await wait_until(
        "the schedule in the status",
        lambda: (s := running.status(f"Workflow/{name}")).get("next_run_at") is not None and s,
    )


async def _advance(running: RunningDaemon, clock: ManualClock, when: str) -> None:
    clock.set(when)
    running.poke()


async def test_a_manual_workflow_runs_on_its_schedule_and_says_when_next(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = _remote(make_git_remote)
    clock = ManualClock.at(START)
    running = await start_daemon(tmp_path, remote.path, clock)
    try:
        status = await _settled(running)
        assert status["next_run_at"] == "2025-01-01T00:05:00Z"
        assert _scheduled_runs(running) == []  # manual: no run on the change itself

        await _advance(running, clock, "2025-01-01T00:05:30Z")
        runs = await wait_until(
            "one scheduled run succeeded",
            lambda: (r := _scheduled_runs(running)) and r[0].status == "succeeded" and r,
        )
        assert len(runs) == 1
        status = await wait_until(
            "the next tick in the status",
            lambda: (
                (s := running.status("Workflow/tick"))["next_run_at"] == "2025-01-01T00:10:00Z"
                and s
            ),
        )
        listed = status["last_executions"]
        assert listed[0]["trigger"] == "schedule" and listed[0]["status"] == "succeeded"

        assert running.scheduler().run_due() == []  # the same tick again: nothing more
        assert len(_scheduled_runs(running)) == 1
        published = await wait_until(
            "next_run_at on the status branch",
            lambda: (
                (s := read_status(remote.path, "status/workflows/tick.yaml"))
                and s.get("next_run_at") == "2025-01-01T00:10:00Z"
                and s
            ),
        )
        assert published["next_run_at"] == "2025-01-01T00:10:00Z"
    finally:
        await running.stop()


async def _downtime(
    tmp_path: Path, make_git_remote: MakeGitRemote, *, catch_up: bool
) -> tuple[RunningDaemon, int]:
    """A daemon that saw the schedule, stopped for four ticks, and started again 3.5 min
    after the last of them; the scheduled runs it started after the restart."""
    remote = _remote(make_git_remote, catch_up=catch_up)
    clock = ManualClock.at(START)
    first = await start_daemon(tmp_path, remote.path, clock)
    try:
        await _settled(first)
    finally:
        await first.stop()
    clock.set("2025-01-01T00:23:30Z")  # ticks 00:05, :10, :15, :20 passed while down
    again = await start_daemon(tmp_path, remote.path, clock)
    await wait_until(
        "the missed ticks handled",
        lambda: "missed" in str(again.status("Workflow/tick").get("schedule_note")),
    )
    return again, len(_scheduled_runs(again))


async def test_catch_up_false_runs_none_of_the_ticks_missed_while_down(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    running, runs = await _downtime(tmp_path, make_git_remote, catch_up=False)
    try:
        assert runs == 0
        status = running.status("Workflow/tick")
        assert "4 ticks missed" in status["schedule_note"]
        assert "catch_up is false" in status["schedule_note"]
        assert status["next_run_at"] == "2025-01-01T00:25:00Z"
    finally:
        await running.stop()


async def test_catch_up_true_runs_once_for_all_the_ticks_missed(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    running, _ = await _downtime(tmp_path, make_git_remote, catch_up=True)
    try:
        runs = await wait_until(
            "the catch-up run finished",
            lambda: (r := _scheduled_runs(running)) and r[0].status == "succeeded" and r,
        )
        assert len(runs) == 1
        assert "catching up 4 ticks" in running.status("Workflow/tick")["schedule_note"]
    finally:
        await running.stop()


async def test_skip_on_failure_skips_ticks_until_the_spec_changes(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = _remote(make_git_remote, skip_on_failure=True, failing=True)
    clock = ManualClock.at(START)
    running = await start_daemon(tmp_path, remote.path, clock)
    try:
        await _settled(running)
        await _advance(running, clock, "2025-01-01T00:05:10Z")
        await wait_until(
            "the first scheduled run failed",
            lambda: (r := _scheduled_runs(running)) and r[0].status == "failed",
        )
        await _advance(running, clock, "2025-01-01T00:10:10Z")
        status = await wait_until(
            "the tick skipped",
            lambda: (
                "skip_on_failure" in str((s := running.status("Workflow/tick"))["schedule_note"])
                and s
            ),
        )
        assert "00:10:00Z skipped" in status["schedule_note"]
        assert len(_scheduled_runs(running)) == 1

        fixed = remote.writer.commit_and_push(
            {"workflows.yaml": scheduled(skip_on_failure=True)}, "fix the step"
        )
        await wait_until(
            "the fixed spec loaded",
            lambda: (
                running.daemon.reconciler is not None
                and "broken"
                not in str(running.daemon.reconciler.desired_states()["Workflow/tick"].spec)
            ),
        )

        # The new spec is recorded by a chain of its own; a tick while it runs is skipped
        # (one execution per object at a time), so the clock moves once it has ended.
        # Its chain may not exist yet when the spec is loaded: wait for one of this
        # revision, ended, and nothing else of the workflow queued or running.
        def recorded() -> bool:
            runs = running.executions("tick")
            return any(r.revision == fixed for r in runs) and all(
                r.status not in ("queued", "running") for r in runs
            )

        await wait_until("the fixed spec recorded", recorded)
        await _advance(running, clock, "2025-01-01T00:15:10Z")
        try:
            runs = await wait_until(
                "a run after the change",
                lambda: (r := _scheduled_runs(running)) and r[0].status == "succeeded" and r,
            )
        except AssertionError as exc:
            note = running.status("Workflow/tick").get("schedule_note")
            raise AssertionError(f"{exc}; schedule note: {note!r}") from None
        assert len(runs) == 2
    finally:
        await running.stop()


async def test_suspend_stops_schedules_and_change_triggered_runs(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = _remote(make_git_remote, trigger="on_change", suspend=True)
    clock = ManualClock.at(START)
    running = await start_daemon(tmp_path, remote.path, clock)
    try:
        await wait_until(
            "the suspended schedule handled",
            lambda: running.status("Workflow/tick").get("schedule_note") == "schedule set",
        )
        await _advance(running, clock, "2025-01-01T00:05:10Z")
        status = await wait_until(
            "the tick handled as suspended",
            lambda: (
                "suspended" in str((s := running.status("Workflow/tick"))["schedule_note"]) and s
            ),
        )
        assert status["next_run_at"] is None
        assert status["phase"] == "Pending"  # suspended: one of the spec's five phases
        assert running.executions("tick") == []  # neither the change nor the tick ran it
    finally:
        await running.stop()


async def test_an_unknown_time_zone_is_refused_with_the_revision(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    """Validate reads the time zone as the scheduler does: the revision does not apply,
    and the source's status says where the bad name is."""
    remote = _remote(make_git_remote, timezone="Mars/Olympus_Mons")
    clock = ManualClock.at(START)
    running = await start_daemon(tmp_path, remote.path, clock)
    try:
        source = await wait_until(
            "a stalled source",
            lambda: (
                (s := read_status(remote.path, "status/source.yaml"))
                and s["phase"] == "Stalled"
                and s
            ),
        )
        assert any(
            "workflows.yaml:" in line and "'Mars/Olympus_Mons' is not an IANA time zone" in line
            for line in source["diagnostics"]
        )
        assert running.status("Workflow/tick") == {}
        assert running.executions("tick") == []
    finally:
        await running.stop()
