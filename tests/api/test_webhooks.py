"""Git webhooks over real HTTP: each provider's signature, forgeries, replays, sizes,
and the rate limit; a valid delivery only makes the daemon fetch."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

from tests.api.conftest import SECRET_VALUES, WEBHOOK_SECRET, RunningDaemon, StartApi, wait_until

HOOK = "/api/v1/webhooks/git"


def _github(
    body: bytes, *, secret: str = WEBHOOK_SECRET, delivery: str | None = None
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }


def _gitea(body: bytes, *, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Gitea-Signature": digest, "X-Gitea-Delivery": str(uuid.uuid4())}


def _gitlab(*, token: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Gitlab-Token": token, "X-Gitlab-Event-UUID": str(uuid.uuid4())}


async def _post(api: RunningDaemon, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    reply = await api.client.post(HOOK, role=None, data=body, headers=headers)
    return reply.status, reply.json()


async def test_a_signed_push_makes_the_daemon_fetch(start_api: StartApi) -> None:
    api = await start_api()
    head = api.remote.writer.commit_and_push(
        {
            "more.yaml": "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: extra}\n"
            "spec: {description: more}\n"
        }
    )
    # The payload lies about the ref and the commit: it is never trusted for content.
    body = json.dumps({"ref": "refs/heads/evil", "after": "0" * 40}).encode()
    status, answer = await _post(api, body, _github(body))
    assert status == 202 and answer["provider"] == "github"

    async def fetched() -> bool:
        reply = await api.client.get("/api/v1/status")
        return reply.json()["source"]["last_seen_revision"] == head

    await wait_until("the webhook to make the daemon fetch", fetched)


async def test_each_provider_and_forgeries(start_api: StartApi) -> None:
    api = await start_api()
    body = b'{"ref": "refs/heads/main"}'
    assert (await _post(api, body, _gitea(body)))[0] == 202
    assert (await _post(api, body, _gitlab()))[0] == 202
    assert (await _post(api, body, _github(body, secret="wrong")))[0] == 401
    assert (await _post(api, body, _gitea(body, secret="wrong")))[0] == 401
    assert (await _post(api, body, _gitlab(token="wrong")))[0] == 401
    tampered = _github(body)
    assert (await _post(api, body + b" ", tampered))[0] == 401
    unsigned = await _post(api, body, {"X-GitHub-Delivery": "x"})
    assert unsigned[0] == 401 and "X-Hub-Signature-256" in unsigned[1]["detail"]
    no_delivery = _github(body)
    del no_delivery["X-GitHub-Delivery"]
    assert (await _post(api, body, no_delivery))[0] == 400
    for reply in api.client.replies:
        for secret in SECRET_VALUES:
            assert secret not in reply.text


async def test_a_replayed_delivery_is_refused(start_api: StartApi) -> None:
    api = await start_api()
    body = b'{"ref": "refs/heads/main"}'
    headers = _github(body, delivery="delivery-1")
    assert (await _post(api, body, headers))[0] == 202
    status, answer = await _post(api, body, headers)
    assert status == 409 and "delivery-1" in answer["detail"]


async def test_oversized_bodies_are_refused(start_api: StartApi) -> None:
    api = await start_api()
    big = b"x" * (256 * 1024 + 1)
    status, answer = await _post(api, big, _github(big))
    assert status == 413 and answer["status"] == 413
    huge = b'{"params": {}}' + b" " * (1024 * 1024 + 10)
    reply = await api.client.post(
        "/api/v1/workflows/train/executions",
        role="operator",
        data=huge,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 413


async def test_webhooks_off_without_a_secret(start_api: StartApi) -> None:
    api = await start_api(webhook_secret=False)
    body = b"{}"
    status, answer = await _post(api, body, _github(body))
    assert status == 403 and "api.webhook_secret" in answer["detail"]


async def test_deliveries_beyond_the_rate_are_refused(start_api: StartApi) -> None:
    api = await start_api()
    body = b"{}"
    started = time.monotonic()
    replies = await asyncio.gather(*(_post(api, body, _github(body)) for _ in range(45)))
    elapsed = time.monotonic() - started
    statuses = [status for status, _ in replies]
    # A burst of 30, refilled at one per second while the requests were in flight.
    assert statuses.count(202) <= 30 + int(elapsed) + 1
    assert statuses.count(429) >= 1 and set(statuses) <= {202, 429}
    limited = next(answer for status, answer in replies if status == 429)
    assert "too many" in limited["detail"]
