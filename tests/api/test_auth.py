"""Bearer tokens and roles over real HTTP: 401 without or with a wrong token, 403 for a
role too low, read-only without tokens, and no token echoed anywhere."""

from __future__ import annotations

from tests.api.conftest import SECRET_VALUES, TOKENS, ApiClient, StartApi, wait_until

READS = [
    "/api/v1/status",
    "/api/v1/objects",
    "/api/v1/objects/Project/research",
    "/api/v1/executions",
    "/api/v1/steps",
    "/api/v1/plan",
    "/metrics",
]
OPERATOR_POSTS = [
    "/api/v1/sync",
    "/api/v1/workflows/train/executions",
    "/api/v1/executions/nope/cancel",
]


async def test_roles_401_and_403(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    for path in READS:
        assert (await client.get(path, role=None)).status == 401, path
        assert (await client.get(path, token="not-a-token")).status == 401, path
        assert (await client.get(path, role="viewer")).status == 200, path
    for path in OPERATOR_POSTS:
        no_token = await client.post(path, role=None)
        assert no_token.status == 401 and "Bearer" in no_token.headers["WWW-Authenticate"]
        viewer = await client.post(path, role="viewer")
        assert viewer.status == 403 and "'viewer'" in viewer.json()["detail"], path
        assert (await client.post(path, role="operator")).status not in (401, 403), path
        assert (await client.post(path, role="admin")).status not in (401, 403), path
    basic = await client.get("/api/v1/status", role=None, headers={"Authorization": "Basic eDp5"})
    assert basic.status == 401
    for reply in client.replies:
        for secret in SECRET_VALUES:
            assert secret not in reply.text and secret not in str(reply.headers)


async def test_without_tokens_the_api_is_read_only(start_api: StartApi) -> None:
    api = await start_api(tokens=False)
    client = api.client
    assert (await client.get("/api/v1/status", role=None)).status == 200
    refused = await client.post("/api/v1/sync", role=None)
    assert refused.status == 403 and "read-only" in refused.json()["detail"]
    any_token = await client.get("/api/v1/status", token=TOKENS["admin"])
    assert any_token.status == 401


async def test_health_endpoints_need_no_token(start_api: StartApi) -> None:
    api = await start_api()
    assert (await api.client.get("/healthz", role=None)).status == 200
    assert (await api.client.get("/readyz", role=None)).status == 200
    assert (await api.client.get("/api/v1/openapi.json", role=None)).status == 200


async def test_secret_values_never_reach_a_response(start_api: StartApi) -> None:
    api = await start_api()
    client = api.client
    # The webhook secret and the credential's key are resolved by the daemon; nothing
    # the API serves may carry either.
    await wait_until(
        "Credential/openai-prod recorded",
        lambda: _recorded(client, "/api/v1/objects/Credential/openai-prod"),
    )
    paths = [*READS, "/api/v1/objects/Credential/openai-prod", "/api/v1/openapi.json"]
    for path in paths:
        await client.get(path, role="admin")
    assert len(client.replies) >= len(paths)
    for reply in client.replies:
        for secret in SECRET_VALUES:
            assert secret not in reply.text, (secret, reply.text[:200])


async def _recorded(client: ApiClient, path: str) -> bool:
    reply = await client.get(path)
    return reply.status == 200 and reply.json()["status"] is not None
