"""watch_dir: the secrets folder's changes, and a folder that does not exist yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.drivers.dir_watch import watch_dir

DEADLINE_S = 30.0


async def _next(watch: object) -> set[str] | None:
    """The next batch of names, or None when the generator ended."""
    try:
        return await asyncio.wait_for(watch.__anext__(), timeout=DEADLINE_S)  # type: ignore[attr-defined]
    except StopAsyncIteration:
        return None


async def test_a_file_written_in_the_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    stop = asyncio.Event()
    watch = watch_dir(folder, stop_event=stop)
    batch = asyncio.ensure_future(_next(watch))
    names: set[str] = set()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        # The watch starts inside the generator: write until it has seen a change.
        while not batch.done() and loop.time() < deadline:
            (folder / "api-token").write_text("value")
            await asyncio.wait({batch}, timeout=0.2)
        names = batch.result() or set()
    finally:
        stop.set()
        await watch.aclose()
    assert names == {"api-token"}


async def test_a_missing_folder_ends_the_watch_when_it_appears(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "reconciler" / "secrets"
    stop = asyncio.Event()
    watch = watch_dir(target, stop_event=stop)
    ended = asyncio.ensure_future(_next(watch))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        noise = tmp_path / "state"
        noise.mkdir()
        step = 0
        while not ended.done() and loop.time() < deadline:
            step += 1
            # Writes beside the missing folder (a state store) never end or feed it...
            (noise / f"store-{step}.db").write_text("x")
            if step == 5:
                (tmp_path / "etc").mkdir()  # ...a folder on the way does not end it...
            if step == 10:
                target.mkdir(parents=True)  # ...the folder itself does.
            await asyncio.wait({ended}, timeout=0.2)
        assert ended.done(), "the watch did not end when the folder appeared"
        assert ended.result() is None
        assert step >= 10
    finally:
        stop.set()
        await watch.aclose()


async def test_stopping_ends_a_watch_of_a_missing_folder(tmp_path: Path) -> None:
    stop = asyncio.Event()
    watch = watch_dir(tmp_path / "absent", stop_event=stop)
    ended = asyncio.ensure_future(_next(watch))
    await asyncio.wait({ended}, timeout=0.3)
    assert not ended.done()
    stop.set()
    assert await asyncio.wait_for(ended, timeout=DEADLINE_S) is None
