"""A source that goes away is polled with backoff, and once it is back, at the interval."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.daemon import object_status
from reconciler.daemon.service import SOURCE_BACKOFF_CAP_S, poll_delay
from tests.conftest import MakeGitRemote
from tests.daemon.inprocess import ManualClock, start_daemon, wait_until

WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata: {name: quiet}
spec:
  trigger: manual
  workflows:
    provision:
      nodes:
        - {id: only, type: noop}
"""


@pytest.mark.parametrize(
    ("interval", "failures", "delay"),
    [
        (30.0, 0, 30.0),
        (30.0, 1, 60.0),
        (30.0, 2, 120.0),
        (30.0, 3, 240.0),
        (30.0, 4, SOURCE_BACKOFF_CAP_S),
        (30.0, 50, SOURCE_BACKOFF_CAP_S),
        (0.2, 3, 1.6),
        (0.2, 9, 3.2),  # at most 16 intervals
        (3600.0, 2, 3600.0),  # never below the interval
    ],
)
def test_the_poll_interval_doubles_per_failed_fetch_up_to_a_cap(
    interval: float, failures: int, delay: float
) -> None:
    assert poll_delay(interval, failures) == pytest.approx(delay)


def test_an_unreachable_source_is_a_stalled_condition() -> None:
    verdict = object_status.source_verdict(
        stalled=False, source_error="remote gone", last_seen="c", planned="a", last_applied="a"
    )
    assert (verdict.phase, verdict.reason, verdict.stalled) == (
        "Stalled",
        "SourceUnavailable",
        True,
    )
    assert "backoff" in verdict.message


async def test_failed_fetches_are_counted_until_the_source_is_back(
    make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files={"wf.yaml": WORKFLOW})
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    hidden = remote.path.with_name("away.git")
    try:
        assert reconciler.source_failures == 0
        shutil.move(remote.path, hidden)
        await wait_until("two failed fetches", lambda: reconciler.source_failures >= 2)
        report = reconciler.last_report
        assert report is not None and report.source_error
        shutil.move(hidden, remote.path)
        await wait_until("the source back", lambda: reconciler.source_failures == 0)
        await wait_until(
            "a cycle without a source error",
            lambda: reconciler.last_report is not None
            and reconciler.last_report.source_error is None,
        )
    finally:
        if hidden.exists():
            shutil.move(hidden, remote.path)
        await running.stop()
