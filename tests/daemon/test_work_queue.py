"""The keyed work queue: one entry per object, never two workers on one object, priorities,
per-object backoff with jitter. Workers and timing are driven by events, not sleeps."""

from __future__ import annotations

import asyncio
import random

import pytest

from reconciler.daemon.work_queue import Priority, WorkQueue, WorkQueueShutDown


def _drain(queue: WorkQueue) -> list[str]:
    taken: list[str] = []
    while (key := queue.get_nowait()) is not None:
        taken.append(key)
        queue.done(key)
    return taken


async def test_repeated_adds_coalesce_into_one_entry() -> None:
    queue = WorkQueue()
    for _ in range(5):
        queue.add("Deployment/a")
    queue.add("Deployment/b")
    assert len(queue) == 2 and queue.added == 2
    assert _drain(queue) == ["Deployment/a", "Deployment/b"]


async def test_a_key_added_while_processed_comes_back_after_done_never_twice_at_once() -> None:
    queue = WorkQueue()
    queue.add("Model/m")
    held = await queue.get()
    queue.add("Model/m")  # a change arrives while a worker holds it
    queue.add("Model/m")
    assert queue.get_nowait() is None  # not handed to a second worker meanwhile
    queue.done(held)
    assert await queue.get() == "Model/m"  # once more, for the change that came in
    queue.done("Model/m")
    assert queue.idle()


async def test_two_workers_never_hold_one_key() -> None:
    queue = WorkQueue()
    inside: set[str] = set()
    overlaps: list[str] = []
    entered = asyncio.Event()
    release = asyncio.Event()

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except WorkQueueShutDown:
                return
            if key in inside:
                overlaps.append(key)
            inside.add(key)
            entered.set()
            await release.wait()
            inside.discard(key)
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(3)]
    queue.add("Workflow/w")
    await asyncio.wait_for(entered.wait(), 5)
    for _ in range(10):
        queue.add("Workflow/w")  # re-added while held: queued again behind it, once
    await asyncio.sleep(0)
    assert len(queue.processing) == 1
    release.set()
    while not queue.idle():
        await asyncio.sleep(0)
    queue.shut_down()
    await asyncio.gather(*workers)
    assert overlaps == []


async def test_changes_and_api_requests_go_before_the_backlog() -> None:
    queue = WorkQueue()
    for index in range(5):
        queue.add(f"Deployment/backlog-{index}", priority=Priority.RESYNC)
    queue.add("Workflow/pushed", priority=Priority.CHANGE)
    queue.add("Project/written", priority=Priority.API)
    queue.add("Deployment/backlog-3", priority=Priority.CHANGE)  # moves up, not twice
    order = _drain(queue)
    assert order[:3] == ["Project/written", "Workflow/pushed", "Deployment/backlog-3"]
    assert sorted(order[3:]) == [f"Deployment/backlog-{i}" for i in (0, 1, 2, 4)]
    assert len(order) == 7


async def test_a_workflows_priority_orders_it_within_a_class() -> None:
    queue = WorkQueue()
    queue.add("Workflow/low", rank=3)
    queue.add("Workflow/medium", rank=2)
    queue.add("Workflow/critical", rank=0)
    queue.add("Workflow/high", rank=1)
    assert _drain(queue) == [
        "Workflow/critical",
        "Workflow/high",
        "Workflow/medium",
        "Workflow/low",
    ]


async def test_failures_back_off_per_key_with_jitter_and_reset_on_success() -> None:
    queue = WorkQueue(base_delay_s=1.0, max_delay_s=8.0, rng=random.Random(7))
    delays = [queue.backoff("Model/a")]
    for _ in range(5):
        queue._failures["Model/a"] = queue.failures("Model/a") + 1
        delays.append(queue.backoff("Model/a"))
    for attempt, delay in enumerate(delays):
        full = min(1.0 * 2**attempt, 8.0)
        assert full / 2 <= delay <= full  # equal jitter: between half and all of it
    assert queue.backoff("Model/other") <= 1.0  # another key keeps its own count
    queue.forget("Model/a")
    assert queue.failures("Model/a") == 0 and queue.backoff("Model/a") <= 1.0


async def test_a_rate_limited_key_comes_back_after_its_delay() -> None:
    queue = WorkQueue(base_delay_s=0.01, max_delay_s=0.02)
    queue.add_rate_limited("Credential/c")
    assert len(queue) == 0 and queue.delayed() == 1
    assert await asyncio.wait_for(queue.get(), 5) == "Credential/c"
    assert queue.failures("Credential/c") == 1


async def test_shut_down_wakes_a_waiting_worker() -> None:
    queue = WorkQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shut_down()
    with pytest.raises(WorkQueueShutDown):
        await asyncio.wait_for(waiting, 5)
