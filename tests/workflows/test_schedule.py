"""Schedule decisions with a controlled clock: ticks, downtime, failures, suspend, zones."""

from __future__ import annotations

import datetime

import pytest

from reconciler.core.schedule import (
    ScheduleConfig,
    ScheduleDecision,
    ScheduleError,
    decide,
    latest_tick,
    next_tick,
)

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """A scheduler driven by hand: each pass asks decide() and remembers what it said."""

    def __init__(self, config: ScheduleConfig, start: str) -> None:
        self.config = config
        self.now = at(start)
        self.last_tick: datetime.datetime | None = None
        self.last_outcome: str | None = None
        self.changed = False
        self.runs: list[datetime.datetime] = []
        self.decisions: list[ScheduleDecision] = []

    def tick(self, now: str, *, outcome: str = "succeeded") -> ScheduleDecision:
        self.now = at(now)
        decision = decide(
            self.config,
            last_tick=self.last_tick,
            last_outcome=self.last_outcome,  # type: ignore[arg-type]
            spec_changed_since=self.changed,
            now=self.now,
        )
        self.decisions.append(decision)
        self.last_tick = decision.handled_tick
        if decision.run_tick is not None:
            self.runs.append(decision.run_tick)
            self.last_outcome = outcome
            self.changed = False
        return decision


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 0 * * 1", "2024-03-06 12:00", "2024-03-11 00:00"),  # the example: Mondays
        ("@daily", "2024-03-06 12:00", "2024-03-07 00:00"),
        ("@midnight", "2024-03-06 00:00", "2024-03-07 00:00"),  # strictly after
        ("@hourly", "2024-03-06 12:30", "2024-03-06 13:00"),
        ("@weekly", "2024-03-06 12:00", "2024-03-10 00:00"),
        ("@monthly", "2024-03-06 12:00", "2024-04-01 00:00"),
        ("@yearly", "2024-03-06 12:00", "2025-01-01 00:00"),
        ("*/15 * * * *", "2024-03-06 12:01", "2024-03-06 12:15"),
        ("30 6 1,15 * *", "2024-03-02 00:00", "2024-03-15 06:30"),
    ],
)
def test_next_tick_in_utc(cron: str, after: str, expected: str) -> None:
    assert next_tick(ScheduleConfig(cron=cron), after=at(after)) == at(expected)


def test_timezone_moves_the_tick_and_follows_daylight_saving() -> None:
    paris = ScheduleConfig(cron="0 9 * * *", timezone="Europe/Paris")
    assert next_tick(paris, after=at("2024-03-06 00:00")) == at("2024-03-06 08:00")  # UTC+1
    assert next_tick(paris, after=at("2024-04-06 00:00")) == at("2024-04-06 07:00")  # UTC+2
    daily_ny = ScheduleConfig(cron="@daily", timezone="America/New_York")
    assert next_tick(daily_ny, after=at("2024-01-10 12:00")) == at("2024-01-11 05:00")
    assert latest_tick(daily_ny, at_or_before=at("2024-01-11 05:00")) == at("2024-01-11 05:00")


def test_results_are_in_utc_and_naive_times_are_refused() -> None:
    config = ScheduleConfig(cron="@hourly", timezone="Asia/Tokyo")
    found = next_tick(config, after=at("2024-01-01 00:10"))
    assert found.utcoffset() == datetime.timedelta(0)
    with pytest.raises(ValueError, match="aware datetime"):
        next_tick(config, after=datetime.datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("every day", None, "not a cron expression"),
        ("61 * * * *", None, "minute '61' is not valid"),
        ("@daily", "Mars/Olympus", "not an IANA time zone"),
    ],
)
def test_bad_schedules_are_refused(cron: str, timezone: str | None, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        ScheduleConfig(cron=cron, timezone=timezone)


def test_from_spec_reads_the_workflow_fields() -> None:
    spec = {
        "suspend": True,
        "config": {"schedule": {"cron": "@daily", "catch_up": True, "skip_on_failure": True}},
    }
    assert ScheduleConfig.from_spec(spec) == ScheduleConfig(
        cron="@daily", catch_up=True, skip_on_failure=True, suspend=True
    )
    assert ScheduleConfig.from_spec({"config": {}}) is None
    assert ScheduleConfig.from_spec({}) is None


def test_first_sight_runs_nothing_and_reports_the_next_run() -> None:
    clock = Clock(ScheduleConfig(cron="@daily"), "2024-03-06 12:00")
    decision = clock.tick("2024-03-06 12:00")
    assert not decision.should_run
    assert decision.next_run_at == at("2024-03-07 00:00")


def test_each_tick_runs_once_while_the_daemon_is_up() -> None:
    clock = Clock(ScheduleConfig(cron="@hourly"), "2024-03-06 10:30")
    clock.tick("2024-03-06 10:30")
    assert not clock.tick("2024-03-06 10:59:59").should_run
    first = clock.tick("2024-03-06 11:00:05")
    assert first.run_tick == at("2024-03-06 11:00")
    assert first.next_run_at == at("2024-03-06 12:00")
    assert not clock.tick("2024-03-06 11:00:10").should_run  # same tick: not again
    clock.tick("2024-03-06 12:00:00")  # exactly on the tick
    assert clock.runs == [at("2024-03-06 11:00"), at("2024-03-06 12:00")]


@pytest.mark.parametrize(
    ("catch_up", "runs_after_restart"),
    [(True, ["2024-03-09 00:00"]), (False, [])],
)
def test_downtime_runs_one_catch_up_or_none(catch_up: bool, runs_after_restart: list[str]) -> None:
    clock = Clock(ScheduleConfig(cron="@daily", catch_up=catch_up), "2024-03-05 12:00")
    clock.tick("2024-03-05 12:00")
    clock.tick("2024-03-06 00:00:30")  # up: the tick of the 6th runs
    assert clock.runs == [at("2024-03-06 00:00")]
    # down from the 6th to the 9th at noon: ticks of the 7th, 8th and 9th were missed
    restart = clock.tick("2024-03-09 12:00")
    assert clock.runs[1:] == [at(t) for t in runs_after_restart]
    assert "3 ticks missed" in restart.reason or "catching up 3 ticks" in restart.reason
    assert not clock.tick("2024-03-09 12:01").should_run  # catch-up is one run, not three
    clock.tick("2024-03-10 00:00:01")  # back to normal
    assert clock.runs[-1] == at("2024-03-10 00:00")


def test_tick_due_just_after_a_restart_runs_even_without_catch_up() -> None:
    clock = Clock(ScheduleConfig(cron="@daily", catch_up=False), "2024-03-05 12:00")
    clock.tick("2024-03-05 12:00")
    decision = clock.tick("2024-03-08 00:01")  # down 2 days, back 1 minute after a tick
    assert decision.run_tick == at("2024-03-08 00:00")
    assert "missed before it not run" in decision.reason


def test_skip_on_failure_skips_until_the_spec_changes() -> None:
    clock = Clock(ScheduleConfig(cron="@hourly", skip_on_failure=True), "2024-03-06 10:30")
    clock.tick("2024-03-06 10:30")
    clock.tick("2024-03-06 11:00", outcome="failed")
    assert clock.runs == [at("2024-03-06 11:00")]
    skipped = clock.tick("2024-03-06 12:00")
    assert not skipped.should_run and "skip_on_failure" in skipped.reason
    assert skipped.next_run_at == at("2024-03-06 13:00")
    clock.changed = True  # a push changes the spec
    clock.tick("2024-03-06 13:00", outcome="succeeded")
    clock.tick("2024-03-06 14:00")
    assert clock.runs == [
        at(t) for t in ("2024-03-06 11:00", "2024-03-06 13:00", "2024-03-06 14:00")
    ]


def test_failures_do_not_skip_without_skip_on_failure() -> None:
    clock = Clock(ScheduleConfig(cron="@hourly"), "2024-03-06 10:30")
    clock.tick("2024-03-06 10:30")
    clock.tick("2024-03-06 11:00", outcome="failed")
    clock.tick("2024-03-06 12:00", outcome="failed")
    assert len(clock.runs) == 2


def test_suspend_runs_nothing_and_suspended_ticks_are_not_caught_up() -> None:
    config = ScheduleConfig(cron="@hourly", catch_up=True)
    clock = Clock(config, "2024-03-06 10:30")
    clock.tick("2024-03-06 10:30")
    clock.config = ScheduleConfig(cron="@hourly", catch_up=True, suspend=True)
    for hour in ("11", "12", "13"):
        decision = clock.tick(f"2024-03-06 {hour}:00")
        assert not decision.should_run and decision.next_run_at is None
    clock.config = config  # resumed at 13:30: nothing owed for 11, 12, 13
    assert not clock.tick("2024-03-06 13:30").should_run
    clock.tick("2024-03-06 14:00")
    assert clock.runs == [at("2024-03-06 14:00")]
