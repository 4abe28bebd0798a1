"""watch_refs: a push into a repository on a local path wakes the daemon, once per burst."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.drivers.ref_watch import RefWatchError, find_git_dirs, watch_refs

if TYPE_CHECKING:
    from conftest import GitRemote, MakeGitRemote


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


WAIT_S = 10.0


class Watch:
    """A running watch_refs task collecting what it yields."""

    def __init__(self, repo: Path, **options: object) -> None:
        self.stop = asyncio.Event()
        self.batches: list[frozenset[str]] = []
        self.arrived = asyncio.Event()
        self._iterator: AsyncIterator[frozenset[str]] = watch_refs(
            repo,
            stop_event=self.stop,
            **options,  # type: ignore[arg-type]
        )
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for batch in self._iterator:
            self.batches.append(batch)
            self.arrived.set()

    async def until_first(self, poke: Callable[[], object]) -> None:
        """Poke until the watcher reports (it may not be watching yet at the first poke)."""
        async with asyncio.timeout(WAIT_S):
            while not self.arrived.is_set():
                await asyncio.to_thread(poke)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), 0.5)

    async def settle(self, quiet_s: float = 0.6) -> None:
        """Wait until no report has come for ``quiet_s``, then forget the last arrival."""
        async with asyncio.timeout(WAIT_S):
            while True:
                self.arrived.clear()
                try:
                    await asyncio.wait_for(self.arrived.wait(), quiet_s)
                except TimeoutError:
                    return

    async def close(self) -> None:
        self.stop.set()
        async with asyncio.timeout(WAIT_S):
            await self.task


@pytest.fixture
async def remote(make_git_remote: MakeGitRemote) -> GitRemote:
    return make_git_remote(files={"a.yaml": "kind: Model\n"})


async def test_a_push_into_a_local_bare_repo_is_noticed(remote: GitRemote) -> None:
    watch = Watch(remote.path, debounce_ms=300, quiet_ms=50)
    counter = iter(range(1000))

    await watch.until_first(
        lambda: remote.writer.commit_and_push({"a.yaml": f"n: {next(counter)}\n"})
    )
    await watch.close()

    assert all(batch <= {"refs/heads/main", "packed-refs", "HEAD"} for batch in watch.batches)
    assert "refs/heads/main" in set().union(*watch.batches)


async def test_a_burst_of_ref_updates_is_reported_once(remote: GitRemote) -> None:
    watch = Watch(remote.path, debounce_ms=3000, quiet_ms=200)
    await watch.until_first(lambda: remote.writer.commit_and_push({"a.yaml": "warm-up\n"}))
    await watch.settle()
    seen = len(watch.batches)
    commits = [remote.writer.commit(f"burst {n}") for n in range(5)]
    git(remote.writer.path, "push", "--quiet", "origin", "HEAD:refs/unwatched/burst")

    def burst() -> None:
        for sha in commits:
            git(remote.path, "update-ref", "refs/heads/main", sha)

    await asyncio.to_thread(burst)
    async with asyncio.timeout(WAIT_S):
        await watch.arrived.wait()
    await watch.settle()
    await watch.close()

    assert len(watch.batches) - seen == 1


async def test_branch_filter_ignores_other_branches(remote: GitRemote) -> None:
    status = remote.clone("status-writer", branch="reconciler/status")
    watch = Watch(remote.path, branches=["main"], debounce_ms=300, quiet_ms=50)
    counter = iter(range(1000))

    def push_both() -> None:
        n = next(counter)
        status.commit_and_push({"s.yaml": f"{n}\n"})
        remote.writer.commit_and_push({"a.yaml": f"{n}\n"})

    await watch.until_first(push_both)
    await watch.close()

    assert set().union(*watch.batches) <= {"refs/heads/main", "packed-refs"}


async def test_the_stop_event_ends_the_iteration(remote: GitRemote) -> None:
    watch = Watch(remote.path)
    await asyncio.sleep(0)

    await watch.close()

    assert watch.task.done() and watch.batches == []


def test_git_dirs_of_a_checkout_a_bare_repo_and_a_non_repo(
    remote: GitRemote, tmp_path: Path
) -> None:
    assert find_git_dirs(remote.writer.path) == [(remote.writer.path / ".git").resolve()]
    assert find_git_dirs(remote.path) == [remote.path.resolve()]
    with pytest.raises(RefWatchError, match="not a git repository"):
        find_git_dirs(tmp_path)
