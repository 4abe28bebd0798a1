"""Webhook notifications through the outbox, against a real receiver on loopback.

The receiver answers 500 to the first POST of each key, and can hold requests until the
test releases them, so "a slow receiver never delays the run" is shown by a run that
ends while its start notification is still held, not by timing.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reconciler.core.chains import Chain, StepNode
from reconciler.drivers import notify
from reconciler.engine.executor import Executor
from reconciler.engine.notify_outbox import (
    NotificationOutbox,
    event_for_status,
    execution_summary,
    idempotency_key,
)
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps.registry import default_registry

DEADLINE_S = 20.0


class Receiver:
    """A webhook receiver: records every POST, fails the first try of each key."""

    def __init__(self, *, fail_first: bool = True) -> None:
        self.fail_first = fail_first
        self.attempts: collections.Counter[str] = collections.Counter()
        self.accepted: list[tuple[str, dict[str, Any], dict[str, str], bytes]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.held = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get(notify.IDEMPOTENCY_HEADER, "")
        body = await request.read()
        self.attempts[key] += 1
        if not self.hold.is_set():
            self.held.set()
            await self.hold.wait()
        if self.fail_first and self.attempts[key] == 1:
            return web.Response(status=500, text="try again")
        if any(seen == key for seen, *_ in self.accepted):
            return web.Response(status=200, text="duplicate")  # counted by the test
        self.accepted.append((key, json.loads(body), dict(request.headers), body))
        return web.Response(status=204)


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield recv, f"http://127.0.0.1:{port}/hook"
    recv.hold.set()
    await runner.cleanup()


def outbox(db: Path, sender: notify.WebhookSender, **kwargs: Any) -> NotificationOutbox:
    return NotificationOutbox(db, sender=sender, base_delay_s=0.01, cap_delay_s=0.05, **kwargs)


def chain(name: str, *steps: StepNode) -> Chain:
    return Chain(
        kind="Workflow", name=name, action="execute", revision="r1", spec_hash="h", steps=steps
    )


async def test_each_event_arrives_once_despite_a_500_and_the_run_is_not_delayed(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    store = Store(tmp_path)
    sender = notify.WebhookSender()
    box = outbox(store.path, sender)
    notifications = {"webhook": url, "events": ["start", "complete", "fail"]}

    def finished(record: ExecutionRecord) -> None:
        event = event_for_status(record.status)
        assert event is not None
        summary = execution_summary(record, store.get_steps(record.id), trigger="manual")
        box.notify(
            workflow=record.name, notifications=notifications, event=event, execution=summary
        )

    executor = Executor(store=store, registry=default_registry(), on_finished=finished)
    await executor.start()
    box.start()
    recv.hold.clear()  # the receiver holds every request until released
    execution_id = executor.submit(chain("nightly", StepNode(id="a", type="noop")))
    started = store.get_execution(execution_id)
    box.notify(
        workflow="nightly",
        notifications=notifications,
        event="start",
        execution=execution_summary(started, store.get_steps(execution_id), trigger="manual"),
    )
    await wait_for(recv.held.is_set, "the start notification to reach the receiver")
    record = await asyncio.wait_for(executor.wait(execution_id), DEADLINE_S)
    assert record.status == "succeeded"
    assert recv.accepted == []  # the run ended while its start notification was held
    recv.hold.set()
    await wait_for(lambda: len(recv.accepted) == 2, "both events delivered")
    await wait_for(lambda: not box.entries(status="pending"), "the outbox to drain")

    events = [payload["event"] for _, payload, _, _ in recv.accepted]
    assert events == ["start", "complete"]
    start_key = idempotency_key(workflow="nightly", execution_id=execution_id, event="start")
    done_key = idempotency_key(workflow="nightly", execution_id=execution_id, event="complete")
    assert [key for key, *_ in recv.accepted] == [start_key, done_key]
    assert recv.attempts[start_key] == 2 and recv.attempts[done_key] == 2  # 500, then 204
    done = recv.accepted[1][1]
    assert done["workflow"] == "nightly"
    assert done["execution"]["id"] == execution_id
    assert done["execution"]["status"] == "succeeded"
    assert done["execution"]["trigger"] == "manual"
    assert done["execution"]["steps"][0]["id"] == "a"
    assert done["execution"]["steps"][0]["attempts"] == 1
    assert set(done["execution"]) == {
        "id",
        "status",
        "trigger",
        "started_at",
        "finished_at",
        "error",
        "steps",
    }
    assert all(e.attempts == 2 and e.status == "delivered" for e in box.entries())
    await executor.shutdown()
    await box.close()
    await sender.close()
    store.close()


async def test_failed_run_sends_fail_and_unwanted_events_are_not_sent(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    recv.fail_first = False
    store = Store(tmp_path)
    sender = notify.WebhookSender()
    box = outbox(store.path, sender)
    notifications = {"webhook": url, "events": ["fail"]}
    summary = {"id": "e1", "status": "succeeded"}
    assert (
        box.notify(workflow="w", notifications=notifications, event="complete", execution=summary)
        == []
    )
    assert box.notify(workflow="w", notifications=None, event="fail", execution=summary) == []
    executor = Executor(store=store, registry=default_registry())
    await executor.start()
    box.start()
    execution_id = executor.submit(
        chain("w", StepNode(id="boom", type="fail", inputs={"message": "no luck"}))
    )
    record = await executor.wait(execution_id)
    assert record.status == "failed"
    event = event_for_status(record.status)
    assert event == "fail"
    box.notify(
        workflow="w",
        notifications=notifications,
        event=event,
        execution=execution_summary(record, store.get_steps(record.id), trigger="schedule"),
    )
    await wait_for(lambda: len(recv.accepted) == 1, "the fail event")
    payload = recv.accepted[0][1]
    assert payload["event"] == "fail"
    assert "no luck" in payload["execution"]["error"]
    assert payload["execution"]["steps"][0]["error"].startswith("no luck")
    await executor.shutdown()
    await box.close()
    await sender.close()
    store.close()


class FixedSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def resolve(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(f"secret {name} is in none of the configured places")
        return self.values[name]


async def test_signature_is_the_hmac_of_the_body_with_the_secret(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    recv.fail_first = False
    sender = notify.WebhookSender()
    box = outbox(tmp_path / "state.db", sender, secrets=FixedSecrets({"hook-key": "s3cret"}))
    box.start()
    box.enqueue(workflow="w", event="start", execution={"id": "e1"}, url=url, secret="hook-key")
    box.enqueue(workflow="w", event="complete", execution={"id": "e1"}, url=url)
    await wait_for(lambda: len(recv.accepted) == 2, "two deliveries")
    _, _, headers, body = recv.accepted[0]
    assert headers[notify.SIGNATURE_HEADER] == notify.signature(body, "s3cret")
    assert notify.signature_matches(body, "s3cret", headers[notify.SIGNATURE_HEADER])
    assert not notify.signature_matches(body, "other", headers[notify.SIGNATURE_HEADER])
    assert not notify.signature_matches(body + b" ", "s3cret", headers[notify.SIGNATURE_HEADER])
    assert notify.SIGNATURE_HEADER not in recv.accepted[1][2]  # no secret: unsigned
    await box.close()
    await sender.close()


async def test_missing_secret_is_retried_and_never_leaks_a_value(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    sender = notify.WebhookSender()
    box = outbox(tmp_path / "state.db", sender, secrets=FixedSecrets({}), max_attempts=3)
    box.start()
    box.enqueue(workflow="w", event="start", execution={"id": "e1"}, url=url, secret="gone")
    await wait_for(lambda: bool(box.entries(status="failed")), "the row to give up")
    entry = box.entries()[0]
    assert entry.attempts == 3
    assert entry.last_error is not None and "secret 'gone'" in entry.last_error
    assert recv.attempts == {}  # nothing unsigned was sent instead
    await box.close()
    await sender.close()


async def test_a_4xx_is_not_retried(tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        hits.append(request.headers[notify.IDEMPOTENCY_HEADER])
        return web.Response(status=404)

    hits: list[str] = []
    app = web.Application()
    app.router.add_post("/hook", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sender = notify.WebhookSender()
    box = outbox(tmp_path / "state.db", sender)
    box.start()
    box.enqueue(workflow="w", event="start", execution={"id": "e1"}, url=url)
    await wait_for(lambda: bool(box.entries(status="failed")), "the row to fail")
    assert len(hits) == 1
    assert "answered 404" in (box.entries()[0].last_error or "")
    await box.close()
    await sender.close()
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_outbox_survives_a_restart_and_never_sends_twice(tmp_path: Path) -> None:
    """Undelivered rows (receiver down) go out after reopening; delivered ones never again."""
    db = tmp_path / "state.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    sender = notify.WebhookSender()
    first = outbox(db, sender)
    first.start()
    first.enqueue(workflow="w", event="start", execution={"id": "e1"}, url=url)
    first.enqueue(workflow="w", event="complete", execution={"id": "e1"}, url=url)
    await wait_for(
        lambda: any(e.attempts >= 2 for e in first.entries()), "retries against a closed port"
    )
    await first.close()  # the daemon stops with both events undelivered
    reopened = outbox(db, sender)
    assert [e.status for e in reopened.entries()] == ["pending", "pending"]
    await reopened.close()

    recv = Receiver(fail_first=False)
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    second = outbox(db, sender)
    second.start()
    await wait_for(lambda: len(recv.accepted) == 2, "both events after the restart")
    await wait_for(lambda: not second.entries(status="pending"), "rows marked delivered")
    # A replay of an already delivered event (the daemon re-emitting it) adds nothing.
    second.enqueue(workflow="w", event="start", execution={"id": "e1"}, url=url)
    await second.close()

    third = outbox(db, sender)
    third.start()
    third.enqueue(workflow="w", event="fail", execution={"id": "e2"}, url=url)
    await wait_for(lambda: len(recv.accepted) == 3, "the new event")
    await third.close()
    assert [payload["event"] for _, payload, _, _ in recv.accepted] == [
        "start",
        "complete",
        "fail",
    ]
    assert sum(recv.attempts.values()) == 3  # nothing delivered was sent a second time
    await sender.close()
    await runner.cleanup()
