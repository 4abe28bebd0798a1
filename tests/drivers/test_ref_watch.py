"""watch_refs: a push into a repository on a local path wakes the daemon, once per burst."""

from __future__ import annotations

import asyncio
import contextlib
import os
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


def _write_ref(git_dir: Path, ref: str, sha: str) -> None:
    """Move ``ref`` the way git does (write ``<ref>.lock``, rename it over the ref)."""
    target = git_dir / ref
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = target.with_name(target.name + ".lock")
    lock.write_text(sha + "\n")
    os.replace(lock, target)


async def _until_batch_with(watch: Watch, ref: str, poke: Callable[[], object]) -> int:
    """Poke until a batch naming ``ref`` arrives; the index of that batch."""
    async with asyncio.timeout(WAIT_S):
        while True:
            for index, batch in enumerate(watch.batches):
                if ref in batch:
                    return index
            watch.arrived.clear()
            await asyncio.to_thread(poke)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.arrived.wait(), 0.5)


async def test_a_burst_of_ref_updates_is_reported_once(remote: GitRemote) -> None:
    """Five moves of main within one burst give one batch. The burst is written by this
    process (no subprocess per move), and it is bracketed by marker branches whose own
    batches say where it starts and ends, so no quiet period is guessed."""
    watch = Watch(remote.path, debounce_ms=3000, quiet_ms=200)
    commits = [remote.writer.commit(f"burst {n}") for n in range(5)]
    git(remote.writer.path, "push", "--quiet", "origin", "HEAD:refs/unwatched/burst")
    tip = commits[-1]
    # The watcher may not be watching yet: poke a marker branch until it is seen.
    before = await _until_batch_with(
        watch,
        "refs/heads/marker-before",
        lambda: _write_ref(remote.path, "refs/heads/marker-before", tip),
    )

    def burst() -> None:
        for sha in commits:
            _write_ref(remote.path, "refs/heads/main", sha)

    await asyncio.to_thread(burst)
    async with asyncio.timeout(WAIT_S):
        while not any("refs/heads/main" in b for b in watch.batches[before + 1 :]):
            watch.arrived.clear()
            await watch.arrived.wait()
    after = await _until_batch_with(
        watch,
        "refs/heads/marker-after",
        lambda: _write_ref(remote.path, "refs/heads/marker-after", tip),
    )
    await watch.close()

    between = watch.batches[before + 1 : after]
    # a late report of an extra marker-before poke may come too; main is in exactly one
    assert all(b <= {"refs/heads/main", "refs/heads/marker-before"} for b in between)
    assert sum("refs/heads/main" in b for b in between) == 1, watch.batches
    assert "refs/heads/main" not in watch.batches[after]


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
