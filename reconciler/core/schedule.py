"""When a scheduled Workflow runs next, and whether a due tick starts a run: pure decisions.

The daemon's scheduler task asks :func:`decide` on each pass, with the clock passed in
(tests control it, nothing here sleeps or reads the time). Cron expressions are read by
croniter: five fields, an optional sixth for seconds, and the ``@daily`` family, in UTC
unless a ``timezone`` (an IANA name) is given; every datetime going in or out is aware
and every one coming out is in UTC.

Rules, per ``config.schedule`` and ``spec.suspend``:

- ``suspend``: no run; ticks passing meanwhile are handled (never caught up later).
- A tick at most ``grace`` old is on time and runs. Older due ticks were missed while the
  daemon was down: ``catch_up: true`` runs once for all of them, ``false`` runs none.
- ``skip_on_failure``: a due tick is skipped while the last scheduled run failed and the
  spec has not changed since.
- A schedule first seen starts counting from ``now``: ticks before it are not missed.
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from collections.abc import Mapping
from typing import Any, Literal

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

UTC = datetime.UTC
DEFAULT_GRACE = datetime.timedelta(minutes=2)
_SECOND = datetime.timedelta(seconds=1)
_MISSED_COUNT_CAP = 1000

LastOutcome = Literal["succeeded", "failed", "cancelled", "superseded", "stalled"] | None


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used."""


_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week", "second")
_FIELD_RANGES = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-6 or SUN-SAT", "0-59")
_REFERENCE = datetime.datetime(2000, 1, 1, tzinfo=UTC)
"""Where the check of a cron expression starts looking for its first tick (a leap year)."""


def cron_problem(cron: str) -> str | None:
    """Why croniter, as the daemon uses it, would refuse ``cron``; None when it is usable.

    Names the first field at fault (``minute '99' is out of range 0-59``), and refuses an
    expression that never fires (``0 0 31 2 *``), which the scheduler could not place.
    """
    text = cron.strip()
    if not croniter.is_valid(text):
        fields = text.split()
        for index, field in enumerate(fields[: len(_FIELD_NAMES)]):
            rest = [*fields[:index], "*", *fields[index + 1 :]]
            if field != "*" and croniter.is_valid(" ".join(rest)):
                return (
                    f"cron {cron!r}: {_FIELD_NAMES[index]} {field!r} is not valid "
                    f"(allowed: {_FIELD_RANGES[index]}, with *, ranges, lists and steps)"
                )
        return (
            f"cron {cron!r} is not a cron expression: five fields (minute hour day month "
            "weekday), e.g. '0 0 * * 1', or a macro such as @daily"
        )
    try:
        croniter(text, _REFERENCE).get_next(datetime.datetime)
    except CroniterBadDateError:
        return f"cron {cron!r} never fires: no date matches it"
    return None


def timezone_problem(name: str) -> str | None:
    """Why ``zoneinfo`` (as the daemon uses it) has no zone ``name``; None when it has."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"timezone {name!r} is not an IANA time zone name (e.g. Europe/Paris, UTC)"
    return None


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """One Workflow's schedule, as its spec gives it."""

    cron: str
    timezone: str | None = None
    catch_up: bool = False
    skip_on_failure: bool = False
    suspend: bool = False

    def __post_init__(self) -> None:
        problem = cron_problem(self.cron)
        if problem is not None:
            raise ScheduleError(problem)
        self.zone()  # raises for an unknown time zone

    def zone(self) -> datetime.tzinfo:
        if self.timezone is None:
            return UTC
        problem = timezone_problem(self.timezone)
        if problem is not None:
            raise ScheduleError(problem)
        return zoneinfo.ZoneInfo(self.timezone)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ScheduleConfig | None:
        """The schedule of a Workflow spec (a mapping), or None when it has none."""
        config = spec.get("config") or {}
        schedule = config.get("schedule") if isinstance(config, Mapping) else None
        if not isinstance(schedule, Mapping) or not isinstance(schedule.get("cron"), str):
            return None
        return cls(
            cron=schedule["cron"],
            timezone=schedule.get("timezone"),
            catch_up=bool(schedule.get("catch_up", False)),
            skip_on_failure=bool(schedule.get("skip_on_failure", False)),
            suspend=bool(spec.get("suspend", False)),
        )


def _aware(when: datetime.datetime, name: str) -> datetime.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a time zone), got {when}")
    return when


def next_tick(config: ScheduleConfig, *, after: datetime.datetime) -> datetime.datetime:
    """The first tick strictly after ``after``, in UTC."""
    start = _aware(after, "after").astimezone(config.zone())
    found: datetime.datetime = croniter(config.cron.strip(), start).get_next(datetime.datetime)
    return found.astimezone(UTC)


def latest_tick(config: ScheduleConfig, *, at_or_before: datetime.datetime) -> datetime.datetime:
    """The last tick at or before ``at_or_before``, in UTC (ticks fall on whole seconds)."""
    moment = _aware(at_or_before, "at_or_before").astimezone(config.zone())
    base = moment.replace(microsecond=0) + _SECOND
    found: datetime.datetime = croniter(config.cron.strip(), base).get_prev(datetime.datetime)
    return found.astimezone(UTC)


def _ticks_between(
    config: ScheduleConfig, *, after: datetime.datetime, until: datetime.datetime
) -> int:
    """How many ticks fall in (after, until], counting up to a cap."""
    count = 0
    tick = next_tick(config, after=after)
    while tick <= until and count < _MISSED_COUNT_CAP:
        count += 1
        tick = next_tick(config, after=tick)
    return count


@dataclasses.dataclass(frozen=True)
class ScheduleDecision:
    """What to do now.

    ``run_tick``: start one run for this tick (trigger ``schedule``), or None.
    ``handled_tick``: remember this as the last tick handled (ran or deliberately skipped).
    ``next_run_at``: when the next tick falls (None while suspended), for the status.
    ``reason``: one line saying why, for logs and status.
    """

    run_tick: datetime.datetime | None
    handled_tick: datetime.datetime
    next_run_at: datetime.datetime | None
    reason: str

    @property
    def should_run(self) -> bool:
        return self.run_tick is not None


def decide(
    config: ScheduleConfig,
    *,
    last_tick: datetime.datetime | None,
    last_outcome: LastOutcome,
    spec_changed_since: bool,
    now: datetime.datetime,
    grace: datetime.timedelta = DEFAULT_GRACE,
) -> ScheduleDecision:
    """Which scheduled run to start now, if any, and when the next one falls.

    ``last_tick``: the ``handled_tick`` of the previous decision (None: never scheduled).
    ``last_outcome``: the status of the last scheduled run (None: none yet, or running).
    ``spec_changed_since``: whether the spec changed since that run started.
    """
    now = _aware(now, "now").astimezone(UTC)
    upcoming = next_tick(config, after=now)
    if last_tick is None:
        return ScheduleDecision(None, now, None if config.suspend else upcoming, "schedule set")
    last_tick = _aware(last_tick, "last_tick").astimezone(UTC)
    latest = latest_tick(config, at_or_before=now)
    if latest <= last_tick:
        return ScheduleDecision(
            None, last_tick, None if config.suspend else upcoming, "no tick due"
        )
    if config.suspend:
        return ScheduleDecision(None, latest, None, "suspended: the tick is not run")
    late = now - latest > grace
    older = latest_tick(config, at_or_before=latest - _SECOND)
    missed = _ticks_between(config, after=last_tick, until=latest) - (0 if late else 1)
    if late and not config.catch_up:
        return ScheduleDecision(
            None,
            latest,
            upcoming,
            f"{_count(missed)} missed while the daemon was down; catch_up is false",
        )
    if config.skip_on_failure and last_outcome == "failed" and not spec_changed_since:
        return ScheduleDecision(
            None,
            latest,
            upcoming,
            f"tick {_stamp(latest)} skipped: the last scheduled run failed and the spec "
            "has not changed since (skip_on_failure)",
        )
    if late or (older > last_tick and config.catch_up):
        reason = f"catching up {_count(missed)} missed while the daemon was down"
    elif older > last_tick:
        reason = f"tick {_stamp(latest)} due; {_count(missed)} missed before it not run"
    else:
        reason = f"tick {_stamp(latest)} due"
    return ScheduleDecision(latest, latest, upcoming, reason)


def _count(ticks: int) -> str:
    more = "+" if ticks >= _MISSED_COUNT_CAP else ""
    return f"{ticks}{more} tick{'s' if ticks != 1 else ''}"


def _stamp(when: datetime.datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
