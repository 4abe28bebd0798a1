"""Every native route over real HTTP against a daemon on a real Git remote."""

from __future__ import annotations

from tests.api.conftest import RunningDaemon, StartApi, wait_until


async def _object_phase(api: RunningDaemon, key: str, phase: str) -> bool:
    reply = await api.client.get(f"/api/v1/objects/{key}")
    return reply.status == 200 and reply.json()["phase"] == phase


async def test_health_and_readiness(start_api: StartApi) -> None:
    api = await start_api()
    health = await api.client.get("/healthz", role=None)
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = await api.client.get("/readyz", role=None)
    assert ready.status == 200
    assert ready.json()["loaded"] and ready.json()["store_writable"]


async def test_status_names_the_source_and_counts(start_api: StartApi) -> None:
    api = await start_api()
    reply = await api.client.get("/api/v1/status")
    assert reply.status == 200
    body = reply.json()
    assert body["source"]["branch"] == "main"
    assert body["source"]["last_seen_revision"] == api.remote.tip()
    assert body["objects"]["in_git"] == 6


async def test_objects_filter_and_page(start_api: StartApi) -> None:
    api = await start_api()
    await wait_until(
        "Project/research Ready", lambda: _object_phase(api, "Project/research", "Ready")
    )
    everything = (await api.client.get("/api/v1/objects")).json()
    keys = [f"{i['kind']}/{i['name']}" for i in everything["items"]]
    assert keys == sorted(keys) and "Workflow/train" in keys and everything["total"] == 6

    workflows = (await api.client.get("/api/v1/objects?kind=Workflow")).json()
    assert {i["name"] for i in workflows["items"]} == {"smoke", "train", "slow"}

    labelled = (await api.client.get("/api/v1/objects?label=team=research")).json()
    assert [i["name"] for i in labelled["items"]] == ["train"]
    assert (await api.client.get("/api/v1/objects?label=team=other")).json()["items"] == []

    ready = (await api.client.get("/api/v1/objects?phase=Ready")).json()
    assert "Project/research" in {f"{i['kind']}/{i['name']}" for i in ready["items"]}
    assert all(i["phase"] == "Ready" for i in ready["items"])

    pages: list[str] = []
    token: str | None = None
    while True:
        query = "/api/v1/objects?limit=4" + (f"&continue={token}" if token else "")
        page = (await api.client.get(query)).json()
        pages += [f"{i['kind']}/{i['name']}" for i in page["items"]]
        token = page["continue"]
        if token is None:
            break
    assert pages == keys
    second = (await api.client.get("/api/v1/objects?limit=2&offset=2")).json()
    assert [f"{i['kind']}/{i['name']}" for i in second["items"]] == keys[2:4]

    after = (await api.client.get("/api/v1/objects?continue=Project/research&limit=1")).json()
    assert [f"{i['kind']}/{i['name']}" for i in after["items"]] == ["Workflow/slow"]
    for bad in ("limit=0", "limit=x", "kind=Nope", "label==x", "offset=-1"):
        reply = await api.client.get(f"/api/v1/objects?{bad}")
        assert reply.status == 400, bad
        assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_object_detail_has_spec_status_conditions_executions(start_api: StartApi) -> None:
    api = await start_api()
    await wait_until(
        "Workflow/smoke Ready", lambda: _object_phase(api, "Workflow/smoke", "Ready")
    )
    body = (await api.client.get("/api/v1/objects/Workflow/smoke")).json()
    assert body["spec"]["trigger"] == "on_change"
    assert body["status"]["phase"] == "Ready"
    assert {c["type"] for c in body["conditions"]} >= {"Ready"}
    last = body["last_executions"][0]
    assert last["status"] == "succeeded" and last["trigger"] == "on_change"
    assert [s["id"] for s in last["steps"]] == ["n0", "n1", "n2"]

    missing = await api.client.get("/api/v1/objects/Workflow/nope")
    assert missing.status == 404 and "Workflow/nope" in missing.json()["detail"]


async def test_start_a_manual_workflow_with_params(start_api: StartApi) -> None:
    api = await start_api()
    await wait_until("Workflow/train Ready", lambda: _object_phase(api, "Workflow/train", "Ready"))
    reply = await api.client.post(
        "/api/v1/workflows/train/executions", role="operator", json={"params": {"epochs": 3}}
    )
    assert reply.status == 201, reply.text
    started = reply.json()
    assert started["trigger"] == "api" and started["params"] == {"epochs": 3, "delay": "10ms"}
    assert reply.headers["Location"] == f"/api/v1/executions/{started['id']}"

    async def finished() -> dict[str, object] | None:
        body = (await api.client.get(f"/api/v1/executions/{started['id']}")).json()
        assert body["status"] in ("queued", "running", "succeeded"), body
        return body if body["status"] == "succeeded" else None

    done = await wait_until("the API-started run to succeed", finished, timeout=10)
    assert [s["id"] for s in done["steps"]] == ["prepare", "train"]
    assert all(s["status"] == "succeeded" and "logs" in s for s in done["steps"])

    listed = (await api.client.get("/api/v1/executions?kind=Workflow&name=train")).json()
    assert listed["items"][0]["id"] == started["id"] and listed["items"][0]["trigger"] == "api"
    only_ok = (await api.client.get("/api/v1/executions?status=succeeded")).json()["items"]
    assert only_ok and all(i["status"] == "succeeded" for i in only_ok)

    for path, payload, status in [
        ("/api/v1/workflows/train/executions", {"params": {"nope": 1}}, 422),
        ("/api/v1/workflows/train/executions", {"params": {"epochs": [1]}}, 422),
        ("/api/v1/workflows/train/executions", {"other": 1}, 422),
        ("/api/v1/workflows/absent/executions", {}, 404),
    ]:
        refused = await api.client.post(path, role="operator", json=payload)
        assert refused.status == status, (payload, refused.text)
    assert (
        "params.nope"
        in (
            await api.client.post(
                "/api/v1/workflows/train/executions", role="operator", json={"params": {"nope": 1}}
            )
        ).json()["detail"]
    )


async def test_cancel_a_running_execution(start_api: StartApi) -> None:
    api = await start_api()
    await wait_until("Workflow/slow Ready", lambda: _object_phase(api, "Workflow/slow", "Ready"))
    started = (
        await api.client.post("/api/v1/workflows/slow/executions", role="operator", json={})
    ).json()
    again = await api.client.post("/api/v1/workflows/slow/executions", role="operator", json={})
    assert again.status == 409 and started["id"] in again.json()["detail"]

    async def running() -> bool:
        body = (await api.client.get(f"/api/v1/executions/{started['id']}")).json()
        return body["status"] == "running"

    await wait_until("the slow run to start", running)
    cancel = await api.client.post(f"/api/v1/executions/{started['id']}/cancel", role="operator")
    assert cancel.status == 202

    async def cancelled() -> bool:
        body = (await api.client.get(f"/api/v1/executions/{started['id']}")).json()
        return body["status"] == "cancelled"

    await wait_until("the slow run to be cancelled", cancelled)
    twice = await api.client.post(f"/api/v1/executions/{started['id']}/cancel", role="operator")
    assert twice.status == 409
    unknown = await api.client.post("/api/v1/executions/nope/cancel", role="operator")
    assert unknown.status == 404


async def test_sync_all_or_one(start_api: StartApi) -> None:
    api = await start_api()
    new_head = api.remote.writer.commit_and_push(
        {
            "more.yaml": "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: extra}\n"
            "spec: {description: more}\n"
        }
    )
    reply = await api.client.post("/api/v1/sync", role="operator")
    assert (reply.status, reply.json()) == (202, {"triggered": True, "object": None})

    async def seen() -> bool:
        body = (await api.client.get("/api/v1/status")).json()
        return body["source"]["last_seen_revision"] == new_head

    await wait_until("the sync to fetch the new head", seen)
    one = await api.client.post(
        "/api/v1/sync", role="operator", json={"kind": "Project", "name": "extra"}
    )
    assert one.status == 202 and one.json()["object"] == "Project/extra"
    absent = await api.client.post(
        "/api/v1/sync", role="operator", json={"kind": "Project", "name": "nope"}
    )
    assert absent.status == 404
    half = await api.client.post("/api/v1/sync", role="operator", json={"kind": "Project"})
    assert half.status == 422
    broken = await api.client.post("/api/v1/sync", role="operator", data=b"{not json")
    assert broken.status == 400


async def test_plan_of_a_branch_against_the_applied_state(start_api: StartApi) -> None:
    api = await start_api()
    await wait_until(
        "Project/research Ready", lambda: _object_phase(api, "Project/research", "Ready")
    )
    same = (await api.client.get("/api/v1/plan")).json()
    assert same["revision"] == api.remote.tip()
    assert same["valid"] is True

    feature = api.remote.clone("feature", branch="main")
    feature.branch = "feature"
    feature.commit_and_push(
        {
            "more.yaml": "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: extra}\n"
            "spec: {description: more}\n"
        }
    )
    reply = await api.client.get("/api/v1/plan?ref=feature")
    assert reply.status == 200, reply.text
    items = {i["object"]: i for i in reply.json()["plan"]["items"]}
    assert items["Project/extra"]["action"] == "create"

    feature.commit_and_push({"bad.yaml": "apiVersion: reconciler/v1\nkind: Model\n"})
    invalid = await api.client.get("/api/v1/plan?ref=feature")
    assert invalid.status == 422 and invalid.json()["diagnostics"]
    assert (await api.client.get("/api/v1/plan?ref=no-such-branch")).status == 404
    assert (await api.client.get("/api/v1/plan?ref=-x")).status == 422


async def test_step_catalogue_says_what_is_implemented(start_api: StartApi) -> None:
    api = await start_api()
    items = {i["name"]: i for i in (await api.client.get("/api/v1/steps")).json()["items"]}
    assert items["noop"]["implemented"] is True
    assert "inputs" in items["http_request"]


async def test_unknown_routes_and_methods_are_problems(start_api: StartApi) -> None:
    api = await start_api()
    missing = await api.client.get("/api/v1/nothing")
    assert missing.status == 404 and missing.json()["status"] == 404
    wrong = await api.client.request("DELETE", "/api/v1/status")
    assert wrong.status == 405 and "GET" in wrong.headers.get("Allow", "")
