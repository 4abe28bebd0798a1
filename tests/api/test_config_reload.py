"""A config reload reaches the running API at once: over real HTTP against a real daemon.

The daemon reloads its file as SIGHUP asks (``request_reload`` is the signal's handler);
a token removed from the file is refused by the very next request, a new write mode and
``api.metrics_public`` are in force, and a reload that changes a key only a restart can
apply is refused whole: the old tokens keep working and the refused key is named.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.conftest import TOKENS, RunningDaemon, StartApi
from tests.daemon.conftest import workflow


@pytest.fixture(autouse=True)
def _keep_logging() -> Any:
    """An applied reload configures logging again (a handler on stdout); put back the
    test run's own handlers afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _rewrite(api: RunningDaemon, change: Any) -> None:
    path = api.daemon._config_file
    assert path is not None
    data = yaml.safe_load(Path(path).read_text())
    change(data)
    Path(path).write_text(yaml.safe_dump(data))


def _drop_token(name: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["api"]["tokens"] = [t for t in data["api"]["tokens"] if t["name"] != name]

    return change


async def test_a_removed_token_is_refused_right_after_the_reload(start_api: StartApi) -> None:
    api = await start_api()
    assert (await api.client.get("/api/v1/status", role="operator")).status == 200
    _rewrite(api, _drop_token("operator-bot"))
    api.daemon.request_reload()
    # No wait: the reload is applied when the signal is handled, before the next request.
    revoked = await api.client.get("/api/v1/status", role="operator")
    assert revoked.status == 401, revoked.text
    assert "matches no configured api.tokens" in revoked.json()["detail"]
    sync = await api.client.post("/api/v1/sync", role="operator")
    assert sync.status == 401
    assert (await api.client.get("/api/v1/status", role="viewer")).status == 200


async def test_a_token_added_by_a_reload_is_accepted(start_api: StartApi) -> None:
    api = await start_api()
    new_token = "tok-new-ops-88c1d0"
    assert (await api.client.get("/api/v1/status", token=new_token)).status == 401

    def add(data: dict[str, Any]) -> None:
        digest = hashlib.sha256(new_token.encode()).hexdigest()
        data["api"]["tokens"].append({"name": "new-ops", "role": "operator", "sha256": digest})

    _rewrite(api, add)
    api.daemon.request_reload()
    assert (await api.client.get("/api/v1/status", token=new_token)).status == 200
    assert (await api.client.post("/api/v1/sync", token=new_token)).status == 202


async def test_write_mode_follows_the_reloaded_config(start_api: StartApi) -> None:
    api = await start_api(write_mode="off")
    body = workflow("nightly").encode()
    refused = await api.client.put("/api/v1/objects/Workflow/nightly", role="editor", data=body)
    assert refused.status == 403 and "write_mode: off" in refused.json()["detail"]

    _rewrite(api, lambda data: data["api"].update(write_mode="branch"))
    api.daemon.request_reload()
    main = api.remote.tip()
    reply = await api.client.put("/api/v1/objects/Workflow/nightly", role="editor", data=body)
    assert reply.status == 202, reply.text
    assert reply.json()["branch"].startswith("reconciler/api/")
    assert api.remote.tip() == main

    _rewrite(api, lambda data: data["api"].update(write_mode="commit"))
    api.daemon.request_reload()
    reply = await api.client.put("/api/v1/objects/Workflow/nightly", role="editor", data=body)
    assert reply.status == 202, reply.text
    assert reply.json()["branch"] == "main" and api.remote.tip() == reply.json()["commit"]

    _rewrite(api, lambda data: data["api"].update(write_mode="off"))
    api.daemon.request_reload()
    again = await api.client.delete("/api/v1/objects/Workflow/nightly", role="editor")
    assert again.status == 403


async def test_metrics_public_is_read_at_each_scrape(start_api: StartApi) -> None:
    api = await start_api()
    assert (await api.client.get("/metrics", role=None)).status == 401
    assert (await api.client.get("/metrics", role="viewer")).status == 200
    _rewrite(api, lambda data: data["api"].update(metrics_public=True))
    api.daemon.request_reload()
    scraped = await api.client.get("/metrics", role=None)
    assert scraped.status == 200 and "reconciler_queue_depth" in scraped.text
    # Only /metrics: every other route still needs a token.
    assert (await api.client.get("/api/v1/status", role=None)).status == 401


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("api.listen", lambda data: data["api"].update(listen="127.0.0.1:1")),
        ("state_dir", lambda data: data.update(state_dir=data["state_dir"] + "-moved")),
        (
            "clusters.max_concurrent_steps",
            lambda data: data.update(clusters={"max_concurrent_steps": 2}),
        ),
    ],
)
async def test_a_key_that_needs_a_restart_refuses_the_whole_reload(
    start_api: StartApi, caplog: pytest.LogCaptureFixture, key: str, change: Any
) -> None:
    api = await start_api()
    before = api.daemon.config

    def both(data: dict[str, Any]) -> None:
        change(data)
        _drop_token("operator-bot")(data)  # a live change in the same reload

    _rewrite(api, both)
    with caplog.at_level(logging.ERROR, logger="reconciler.daemon"):
        api.daemon.request_reload()
    (refused,) = [r for r in caplog.records if "reload refused" in r.getMessage()]
    assert getattr(refused, "restart_needed") == [key]  # noqa: B009
    assert key in getattr(refused, "error")  # noqa: B009
    assert api.daemon.config is before
    # The old config is kept whole: the token the file dropped still works.
    assert (await api.client.get("/api/v1/status", token=TOKENS["operator"])).status == 200
