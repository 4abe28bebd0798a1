"""A schedule validate accepts is one the daemon's scheduler can place.

``cron`` and ``timezone`` are read by croniter and zoneinfo at validate time, as the
scheduler reads them, so ``99 * * * *`` or ``Mars/Olympus`` is refused with the file, line
and object instead of validating and then stalling the Workflow in the daemon.
"""

# ruff: noqa: E501  (expected output lines are kept whole, as validate prints them)

from __future__ import annotations

from pathlib import Path

import pytest
from validate_fixtures import lines_of, validate_folder

from reconciler.core import schedule


def _workflow(name: str, *, cron: str, timezone: str | None = None) -> str:
    zone = f"\n      timezone: {timezone}" if timezone is not None else ""
    return f"""apiVersion: reconciler/v1
kind: Workflow
metadata:
  name: {name}
spec:
  config:
    schedule:
      cron: "{cron}"{zone}
  workflows:
    provision:
      nodes:
        - {{id: wait, type: noop}}
"""


def _validate(tmp_path: Path, *documents: str) -> list[str]:
    (tmp_path / "workflows.yaml").write_text("---\n".join(documents), encoding="utf-8")
    return lines_of(validate_folder(tmp_path))


def test_a_cron_field_out_of_range_is_refused_where_it_is_written(tmp_path: Path) -> None:
    assert _validate(tmp_path, _workflow("minutes", cron="99 * * * *")) == [
        "workflows.yaml:8:13: error: spec.config.schedule.cron: cron '99 * * * *': minute '99' is not valid "
        "(allowed: 0-59, with *, ranges, lists and steps) (Workflow/minutes)"
    ]


def test_an_unknown_time_zone_is_refused_where_it_is_written(tmp_path: Path) -> None:
    assert _validate(tmp_path, _workflow("mars", cron="0 0 * * 1", timezone="Mars/Olympus")) == [
        "workflows.yaml:9:17: error: spec.config.schedule.timezone: timezone 'Mars/Olympus' is not an IANA time zone name "
        "(e.g. Europe/Paris, UTC) (Workflow/mars)"
    ]


def test_every_bad_schedule_of_a_repo_in_one_run(tmp_path: Path) -> None:
    lines = _validate(
        tmp_path,
        _workflow("hours", cron="0 25 * * *"),
        _workflow("never", cron="0 0 31 2 *"),
        _workflow("step", cron="*/0 * * * *", timezone="Europe/Pariss"),
        _workflow("fine", cron="0 9 * * MON-FRI", timezone="Europe/Paris"),
    )
    assert lines == [
        "workflows.yaml:8:13: error: spec.config.schedule.cron: cron '0 25 * * *': hour '25' is not valid "
        "(allowed: 0-23, with *, ranges, lists and steps) (Workflow/hours)",
        "workflows.yaml:21:13: error: spec.config.schedule.cron: cron '0 0 31 2 *' never fires: no date matches it "
        "(Workflow/never)",
        "workflows.yaml:34:13: error: spec.config.schedule.cron: cron '*/0 * * * *': minute '*/0' is not valid "
        "(allowed: 0-59, with *, ranges, lists and steps) (Workflow/step)",
        "workflows.yaml:35:17: error: spec.config.schedule.timezone: timezone 'Europe/Pariss' is not an IANA time zone name "
        "(e.g. Europe/Paris, UTC) (Workflow/step)",
    ]


@pytest.mark.parametrize(
    ("cron", "timezone"),
    [("99 * * * *", None), ("0 0 * * 8", None), ("0 0 31 2 *", None), ("@daily", "Mars/Olympus")],
)
def test_what_validate_refuses_the_scheduler_refuses_too(cron: str, timezone: str | None) -> None:
    spec = {"config": {"schedule": {"cron": cron, "timezone": timezone}}}
    with pytest.raises(schedule.ScheduleError):
        schedule.ScheduleConfig.from_spec(spec)


@pytest.mark.parametrize(
    ("cron", "timezone"),
    [("0 0 * * 1", None), ("*/15 * * * *", "UTC"), ("@hourly", "America/New_York")],
)
def test_what_validate_accepts_the_scheduler_places(cron: str, timezone: str | None) -> None:
    spec = {"config": {"schedule": {"cron": cron, "timezone": timezone}}}
    config = schedule.ScheduleConfig.from_spec(spec)
    assert config is not None
    assert schedule.cron_problem(cron) is None
    assert (timezone is None) or schedule.timezone_problem(timezone) is None
