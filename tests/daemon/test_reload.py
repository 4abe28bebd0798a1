"""``systemctl reload`` (SIGHUP) on a real daemon subprocess: what applies, what is refused.

A token removed from the file is refused by the served API as soon as the reload is
logged; a change only a restart can apply (here: adding an ``api:`` section to a daemon
started without one, moving the state directory) refuses the whole reload, names the
key, and the daemon runs on with its old config. The decision table itself is checked
on plain configs at the end.
"""

from __future__ import annotations

import hashlib
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.daemon import reload
from reconciler.daemon.config import Config
from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import NotifySocket, wait_for

TOKEN = "tok-reload-ops-7a3e51"
KEEP = "tok-reload-view-19c0d4"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _write(tmp_path: Path, remote: GitRemote, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "repo": {"url": str(remote.path), "branch": "main", "poll_interval": "500ms"},
        "resync_interval": "1h",
        "state_dir": str(tmp_path / "state"),
        "secrets_dir": str(tmp_path / "secrets"),
        **extra,
    }
    path = tmp_path / "reconciler.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _get(port: int, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sighup_revokes_a_removed_token_at_once(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    tokens = [
        {"name": "ops", "role": "operator", "sha256": _digest(TOKEN)},
        {"name": "view", "role": "viewer", "sha256": _digest(KEEP)},
    ]
    api = {"listen": "127.0.0.1:0", "tokens": tokens}
    config = _write(tmp_path, remote, api=api)
    daemon = start_daemon(config_path=config, notify=notify_socket)
    (listening,) = wait_for("the API up", lambda: daemon.records("API listening"))
    port = int(listening["port"])
    wait_for("ready", lambda: notify_socket.seen("READY=1"))
    assert _get(port, "/api/v1/status", TOKEN) == 200

    _write(tmp_path, remote, api={**api, "tokens": tokens[1:]})
    daemon.signal(signal.SIGHUP)
    (reloaded,) = wait_for("config reloaded", lambda: daemon.records("config reloaded"))
    assert reloaded["changed"] == ["api.tokens"]
    assert _get(port, "/api/v1/status", TOKEN) == 401
    assert _get(port, "/api/v1/status", KEEP) == 200
    assert TOKEN not in daemon.log_text()


def test_sighup_refuses_a_change_that_needs_a_restart_and_names_it(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    config = _write(tmp_path, remote, logging={"level": "info"})
    daemon = start_daemon(config_path=config, notify=notify_socket)
    wait_for("ready", lambda: notify_socket.seen("READY=1"))

    _write(tmp_path, remote, logging={"level": "debug"}, api={"listen": "127.0.0.1:0"})
    daemon.signal(signal.SIGHUP)
    (refused,) = wait_for(
        "reload refused",
        lambda: daemon.records("config reload refused; keeping the running config"),
    )
    assert refused["restart_needed"] == ["api"]
    assert "the API is not running" in refused["error"] and "restart" in refused["error"]
    assert daemon.records("config reloaded") == []
    assert daemon.records("API listening") == []
    # The old level (info) is kept whole: the debug change in the same file is not applied.
    assert not [r for r in daemon.logs() if r.get("level") == "debug"]

    _write(tmp_path, remote, logging={"level": "info"}, state_dir=str(tmp_path / "elsewhere"))
    daemon.signal(signal.SIGHUP)
    second = wait_for(
        "second reload refused",
        lambda: daemon.records("config reload refused; keeping the running config")[1:],
    )
    assert second[0]["restart_needed"] == ["state_dir"]
    assert daemon.alive()


def _config(**raw: Any) -> Config:
    return Config.model_validate({"repo": {"url": "/srv/repo"}, "state_dir": "/var/lib/r", **raw})


@pytest.mark.parametrize(
    ("before", "after", "changed", "restart"),
    [
        ({}, {"resync_interval": "1m"}, ["resync_interval"], []),
        (
            {},
            {"repo": {"url": "/srv/repo", "poll_interval": "5s"}, "logging": {"level": "debug"}},
            ["repo.poll_interval", "logging.level"],
            [],
        ),
        ({}, {"repo": {"url": "/srv/other"}}, ["repo.url"], ["repo.url"]),
        ({}, {"repo": {"url": "/srv/repo", "paths": ["specs"]}}, ["repo.paths"], ["repo.paths"]),
        ({}, {"http": {"deny_private": True}}, ["http.deny_private"], ["http.deny_private"]),
        ({}, {"load": {"max_depth": 10}}, ["load.max_depth"], ["load.max_depth"]),
        ({}, {"secrets_dir": None}, ["secrets_dir"], ["secrets_dir"]),
    ],
)
def test_which_keys_apply_live(
    before: dict[str, Any], after: dict[str, Any], changed: list[str], restart: list[str]
) -> None:
    decision = reload.decide(_config(**before), _config(**after), api_running=False)
    assert list(decision.changed) == changed
    assert list(decision.restart_needed) == restart
    assert decision.refused == bool(restart)


def test_api_keys_apply_live_only_while_the_api_runs() -> None:
    token = {"name": "ci", "role": "operator", "sha256": _digest("x")}
    old = _config(api={"listen": "127.0.0.1:8080"})
    new = _config(
        api={
            "listen": "127.0.0.1:8080",
            "tokens": [token],
            "write_mode": "off",
            "webhook_secret": "hook",
            "metrics_public": True,
        }
    )
    live = reload.decide(old, new, api_running=True)
    assert not live.refused
    assert set(live.changed) == {
        "api.tokens",
        "api.write_mode",
        "api.webhook_secret",
        "api.metrics_public",
    }
    moved = reload.decide(old, _config(api={"listen": "127.0.0.1:9090"}), api_running=True)
    assert moved.restart_needed == ("api.listen",)
    added = reload.decide(_config(), new, api_running=False)
    assert added.restart_needed == ("api",) and "not running" in added.explain()
    removed = reload.decide(old, _config(), api_running=True)
    assert removed.restart_needed == ("api",) and "removed" in removed.explain()


def test_joining_or_leaving_the_shards_needs_a_restart() -> None:
    """Adding ``sharding:`` with every default changes no key, yet changes everything."""
    plain, sharded = _config(), _config(sharding={"namespace": "reconciler"})
    joined = reload.decide(plain, _config(sharding={}), api_running=False)
    assert joined.restart_needed == ("sharding",) and "added or removed" in joined.explain()
    left = reload.decide(sharded, plain, api_running=False)
    assert left.restart_needed == ("sharding",)
    moved = reload.decide(sharded, _config(sharding={"namespace": "other"}), api_running=False)
    assert moved.restart_needed == ("sharding.namespace",)
