"""Objects waiting on another are parked, not polled: one condition, one log line, no chain.

200 Deployments use a Model that cannot become Ready (its disk path does not exist). Each
is parked with Ready=False, reason WaitingForModel and a message naming the Model, says
so in one log line, and runs nothing: no execution, no retry, no line per retry, however
many resyncs pass. Another Deployment waits on a Model that is fixed by a push: it is
woken by that Model's status change and deploys (a tiny real server on the local
cluster), while the 200 keep waiting untouched.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from tests.clusters.local.conftest import SERVER, get_json
from tests.conftest import MakeGitRemote
from tests.daemon.backlog import deployment, model
from tests.daemon.conftest import SEED
from tests.daemon.inprocess import ManualClock, RunningDaemon, start_daemon, wait_until

WAITING = 200

TEMPLATE = """\
apiVersion: reconciler/v1
kind: DeploymentTemplate
metadata: {{name: tiny-server}}
spec:
  modality: embedding
  runtime:
    command: ["{python}", "{script}", "{{port}}"]
    health_path: /health
"""


def _files(tmp_path: Path, *, later_uri: str) -> dict[str, str]:
    script = tmp_path / "tiny_server.py"
    script.write_text(SERVER)
    waiting = "---\n".join(
        deployment(f"wait-{i}", model="broken", template="tiny-server") for i in range(WAITING)
    )
    return {
        **SEED,
        "template.yaml": TEMPLATE.format(python=sys.executable, script=script),
        "models.yaml": model("broken") + "---\n" + model("later", uri=later_uri),
        "waiting.yaml": waiting,
        "one.yaml": deployment("one", model="later", template="tiny-server"),
    }


def _waits(running: RunningDaemon, key: str, model: str) -> bool:
    status = running.status(key)
    return status.get("reason") == "WaitingForModel" and f"Model/{model}" in str(
        status.get("message")
    )


def _deployment_runs(running: RunningDaemon) -> list[str]:
    assert running.daemon.store is not None
    return [r.name for r in running.daemon.store.list_executions(kind="Deployment", limit=-1)]


def _lines_about_waiters(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if "Deployment/wait-" in r.getMessage())


async def _resync(running: RunningDaemon) -> None:
    """One resync of every object, waited for by the work it did (no sleep)."""
    reconciler = running.daemon.reconciler
    assert reconciler is not None
    before = reconciler.decisions
    running.daemon.trigger("test", resync=True)
    await wait_until(
        "a resync's reconciles",
        lambda: reconciler.decisions >= before + WAITING and reconciler.queue.idle(),
    )


async def test_waiting_objects_are_parked_and_woken_not_polled(
    make_git_remote: MakeGitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    later = tmp_path / "later-model"
    remote = make_git_remote(files=_files(tmp_path, later_uri=str(later)))
    running = await start_daemon(tmp_path, remote.path, ManualClock.at("2025-01-01T00:00:00Z"))
    try:
        keys = [f"Deployment/wait-{i}" for i in range(WAITING)]
        # Parked at first on a Model "not Ready yet", then told again once it is Stalled
        # (a waiter is woken by its target's status change and parked with the news).
        await wait_until(
            "every Deployment parked on Model/broken, Stalled",
            lambda: all(
                _waits(running, key, "broken")
                and "Model/broken: it is Stalled" in str(running.status(key).get("message"))
                for key in keys
            ),
        )
        await wait_until(
            "Deployment/one parked", lambda: _waits(running, "Deployment/one", "later")
        )
        status = running.status("Deployment/wait-7")
        assert status["phase"] == "Pending"
        assert "Model/broken: it is Stalled" in status["message"]
        assert "DiskSourceUnreadable" in status["message"]
        assert _deployment_runs(running) == []  # nothing submitted, nothing retried
        said = _lines_about_waiters(caplog)
        assert 0 < said <= WAITING  # one line each, at most

        await _resync(running)
        await _resync(running)
        assert _deployment_runs(running) == []
        assert _lines_about_waiters(caplog) == said  # no line per retry: there is no retry

        # Model/later is fixed by a push that points it at a folder that exists:
        # Deployment/one is woken by its status change.
        fixed = tmp_path / "fixed-model"
        fixed.mkdir()
        (fixed / "weights.bin").write_bytes(b"\0" * 64)
        remote.writer.commit_and_push(
            {"models.yaml": _files(tmp_path, later_uri=str(fixed))["models.yaml"]}
        )
        await wait_until(
            "Deployment/one Ready",
            lambda: running.status("Deployment/one").get("phase") == "Ready",
            timeout=120,
        )
        url = running.status("Deployment/one")["endpoint_url"]
        health = await get_json(url.removesuffix("/v1") + "/health")
        assert health is not None and "pid" in health
        assert _deployment_runs(running) == ["one"]
        assert all(_waits(running, key, "broken") for key in keys)
        assert _lines_about_waiters(caplog) == said

        remote.writer.commit_and_push({"one.yaml": None}, "remove Deployment/one")
        await wait_until(
            "Deployment/one gone", lambda: running.status("Deployment/one") == {}, timeout=60
        )
    finally:
        await running.stop()
