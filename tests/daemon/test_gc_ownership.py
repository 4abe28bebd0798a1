"""Only a daemon that owns its process tunes the process-wide garbage collector.

``reconciler run`` freezes what a loaded revision left alive (a full collection over
10,000 specs would stall the push path) and collects everything once per resync after the
first cycle. A daemon
hosted in another program, as in these tests, must leave the host's collector alone:
freezing would keep the host's garbage and each resync would walk the host's whole heap.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.daemon import service
from tests.conftest import MakeGitRemote
from tests.daemon.conftest import SEED
from tests.daemon.inprocess import ManualClock, start_daemon, wait_until


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("owns_process", [True, False])
async def test_the_collector_is_tuned_only_by_a_daemon_that_owns_its_process(
    owns_process: bool, thawed: None, make_git_remote: MakeGitRemote, tmp_path: Path
) -> None:
    remote = make_git_remote(files=SEED)
    running = await start_daemon(
        tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"), owns_process=owns_process
    )
    try:
        cycles: list[bool] = []
        running.daemon.cycle_observers.append(lambda ok, _seconds: cycles.append(ok))
        running.daemon.trigger("test", resync=True)  # a resync: unfreeze, collect, freeze
        await wait_until("a resync cycle", lambda: cycles)
        frozen = gc.get_freeze_count()
    finally:
        await running.stop()

    assert (frozen > 0) is owns_process


async def test_the_first_cycle_freezes_and_a_later_resync_collects(
    thawed: None,
    make_git_remote: MakeGitRemote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At start the heap is what imports and the first load left: freezing it is enough,
    and a full walk of it cost ~0.3 s at every start. A later resync collects in full."""
    calls: list[tuple[bool, bool]] = []
    settle = service._settle_memory

    def recording(*, loaded: bool, full: bool) -> None:
        calls.append((loaded, full))
        settle(loaded=loaded, full=full)

    monkeypatch.setattr(service, "_settle_memory", recording)
    remote = make_git_remote(files=SEED)
    running = await start_daemon(
        tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"), owns_process=True
    )
    try:
        await wait_until("the first cycle", lambda: calls)
        assert calls[0] == (True, False)  # the first load: frozen, not collected
        running.daemon.trigger("test", resync=True)
        # Other cycles (a poll, a status push's wake) may come first; they do not collect.
        await wait_until("a resync that collects in full", lambda: any(f for _, f in calls[1:]))
    finally:
        await running.stop()
