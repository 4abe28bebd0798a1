"""A hugging_face Model deployed on the local cluster: downloaded, scanned, then served.

The Model goes through the real add_model and scan_model against the loopback hub double
(metadata only: Ready with no files on disk), the daemon's own EndpointFacts read its
status and record, and deploy_model on a local driver starts the tiny server with the
downloaded folder as its model path. A hub repo holding a hostile pickle ends Stalled
``ScanFailed`` with no process started and nothing unpickled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.diff import ObjectState
from reconciler.daemon.endpoint_facts import DaemonEndpointFacts
from reconciler.daemon.object_status import stall_reason
from reconciler.drivers import secrets
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.models import huggingface, records
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps import models
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps
from tests.clusters.local.conftest import get_json
from tests.models import model_files as mf
from tests.models.servers import Hub, HubRepo, serve

MakeDriver = Callable[[], LocalClusterDriver]
COMMIT = "5e1f" + "0" * 36
CONFIG = b'{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1}'
WEIGHTS = mf.safetensors({"embed": ("BF16", [16, 8]), "norm": ("F32", [8])})
DEPLOYMENT: dict[str, Any] = {
    "deployment": "tiny",
    "model": "smol",
    "cluster": "here",
    "template": "tiny-server",
    "endpoint_name": "tiny endpoint",
    "deploy_config": {"concurrent_requests": 2, "avg_sequence_length": 8, "avg_context_length": 8},
    "ready_timeout_s": 30,
}


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


class Facts:
    """The daemon's EndpointFacts for the Model (status + record); the rest as the tests say."""

    def __init__(self, *, script: Path, cache: Path, model_spec: Mapping[str, Any]) -> None:
        self.script = script
        self.status: dict[str, Any] = {}
        state = ObjectState(
            kind="Model", name="smol", document={"spec": dict(model_spec)}, spec_hash="h"
        )
        self.daemon = DaemonEndpointFacts(
            desired=lambda: {"Model/smol": state},
            status_of=lambda key: self.status if key == "Model/smol" else None,
            model_cache=cache,
        )

    def model(self, name: str) -> ModelFacts | None:
        return self.daemon.model(name)

    def template(self, name: str) -> Mapping[str, Any] | None:
        if name != "tiny-server":
            return None
        return {
            "modality": "llm",
            "runtime": {
                "command": [sys.executable, str(self.script), "{port}"],
                "env": {"GREETING": "{model_path}"},
                "health_path": "/health",
            },
        }

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return {"driver": "local"} if name == "here" else None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        return None


def _ctx(step: str, inputs: dict[str, Any], services: models.ModelServices) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step,
        step_type=step,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/tiny" if step == "deploy_model" else "Model/smol",
        revision="r1",
        cluster="here",
        log=StepLog(prefix=step),
        services=StepServices(
            readiness_poll_interval_s=0.05, extra={models.MODEL_SERVICE: services}
        ),
    )


@pytest.fixture
def hub() -> Iterator[tuple[Hub, str]]:
    clean = {"config.json": CONFIG, "model.safetensors": WEIGHTS}
    app = Hub(
        {
            "acme/tiny": HubRepo(files=clean, commit=COMMIT, parameters={"BF16": 128, "F32": 8}),
            "acme/gated": HubRepo(files=clean, commit=COMMIT, gated=True),
        },
        token="hf_good",
    )
    with serve(app) as base:
        yield app, base


async def _ready_model(
    facts: Facts, services: models.ModelServices, spec: Mapping[str, Any]
) -> None:
    """Run the Model's chain as the daemon does and mark it Ready with its status."""
    inputs = {**spec, "model": "smol"}
    added = await models.add_model(_ctx("add_model", inputs, services))
    assert isinstance(added, outcomes.Done), added
    scanned = await models.scan_model(_ctx("scan_model", inputs, services))
    assert isinstance(scanned, outcomes.Done), scanned
    assert scanned.outputs["status"]["scan"]["result"] == "skipped"
    facts.status = {"phase": "Ready", **added.outputs["status"], **scanned.outputs["status"]}


def _resolves(app: Hub) -> list[str]:
    return [r for r in app.requests if r.startswith("GET ") and r.endswith("model.safetensors")]


async def test_a_hub_model_is_downloaded_scanned_and_served_from_the_cache(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path, hub: tuple[Hub, str]
) -> None:
    app, base = hub
    services = models.ModelServices(cache_dir=tmp_path / "cache", hf_endpoint=base)
    spec = {"source": {"provider_type": "hugging_face", "uri": "acme/tiny"}}
    facts = Facts(script=server_script, cache=services.cache_dir, model_spec=spec)
    await _ready_model(facts, services, spec)
    ready = facts.model("smol")
    assert ready is not None and ready.path is None  # Ready, yet nothing on disk
    assert _resolves(app) == []

    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=facts)
    first_ctx = _ctx("deploy_model", dict(DEPLOYMENT), services)
    done = await steps["deploy_model"](first_ctx)
    assert isinstance(done, outcomes.Done), done

    root = huggingface.snapshot_folder(
        repo_id="acme/tiny", commit_sha=COMMIT, cache_dir=services.cache_dir / "hf"
    )
    assert (root / "model.safetensors").read_bytes() == WEIGHTS
    assert (root / "config.json").read_bytes() == CONFIG
    record = records.read_record(cache_dir=services.cache_dir, model="smol")
    assert record is not None
    assert (record["root"], record["revision"]) == (str(root), COMMIT)
    assert record["scan"] == {"result": "clean", "findings": []}
    url = done.outputs["endpoint_url"]
    assert (await get_json(f"{url}/whoami"))["greeting"] == str(root)
    log = first_ctx.log.text()
    assert "downloading 2 file(s)" in log and "into the model cache" in log
    assert "scanned 2 file(s), 0 more known to the scan cache: clean" in log
    followed = facts.model("smol")
    assert followed is not None and followed.path == str(root)  # the files are known now

    # A second deployment reuses the download; the scan comes from the cache.
    requests_before = len(app.requests)
    again_ctx = _ctx("deploy_model", dict(DEPLOYMENT), services)
    again = await steps["deploy_model"](again_ctx)
    assert isinstance(again, outcomes.Done), again
    assert len(app.requests) == requests_before
    assert len(_resolves(app)) == 1
    assert f"reusing the download at {root}" in again_ctx.log.text()
    assert "scanned 0 file(s), 2 more known to the scan cache: clean" in again_ctx.log.text()
    assert (await get_json(f"{again.outputs['endpoint_url']}/whoami"))["greeting"] == str(root)

    # A resync of the Model keeps the download it knows of, and scan_model scans it.
    await _ready_model_keeps_download(facts, services, spec, root)


async def _ready_model_keeps_download(
    facts: Facts, services: models.ModelServices, spec: Mapping[str, Any], root: Path
) -> None:
    inputs = {**spec, "model": "smol"}
    added = await models.add_model(_ctx("add_model", inputs, services))
    assert isinstance(added, outcomes.Done), added
    record = records.read_record(cache_dir=services.cache_dir, model="smol")
    assert record is not None and record["root"] == str(root)
    scanned = await models.scan_model(_ctx("scan_model", inputs, services))
    assert isinstance(scanned, outcomes.Done), scanned
    assert scanned.outputs["status"]["scan"] == {"result": "clean", "findings": []}


async def test_a_hostile_hub_model_stalls_scan_failed_and_nothing_runs(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path, hub: tuple[Hub, str]
) -> None:
    app, base = hub
    marker = tmp_path / "pwned"
    app.repos["acme/evil"] = HubRepo(
        files={
            "config.json": CONFIG,
            "model.safetensors": WEIGHTS,
            "pytorch_model.bin": mf.torch_legacy(mf.getattr_eval(marker)),
        },
        commit=COMMIT,
    )
    services = models.ModelServices(cache_dir=tmp_path / "cache", hf_endpoint=base)
    spec = {"source": {"provider_type": "hugging_face", "uri": "acme/evil"}}
    facts = Facts(script=server_script, cache=services.cache_dir, model_spec=spec)
    await _ready_model(facts, services, spec)

    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=facts)
    outcome = await steps["deploy_model"](_ctx("deploy_model", dict(DEPLOYMENT), services))
    assert isinstance(outcome, outcomes.Stalled), outcome
    assert stall_reason(outcome.reason) == "ScanFailed"
    assert "pytorch_model.bin: critical: pickle imports builtins.getattr" in outcome.reason
    findings = outcome.outputs["status"]["scan"]["findings"]
    assert {f["path"] for f in findings} == {"pytorch_model.bin"}
    assert not (await driver.observe_endpoint("tiny")).exists
    assert not marker.exists()
    record = records.read_record(cache_dir=services.cache_dir, model="smol")
    assert record is not None and record["scan"]["result"] == "findings"


async def test_a_gated_hub_model_uses_the_credential_and_a_skip_still_hashes(
    make_driver: MakeDriver, server_script: Path, tmp_path: Path, hub: tuple[Hub, str]
) -> None:
    app, base = hub
    app.repos["acme/gated"].files["extra.bin"] = mf.os_system_protocol0(tmp_path / "pwned")
    resolver = secrets.SecretResolver(None, environ={"RECONCILER_SECRET_HF_TOKEN": "hf_good"})
    services = models.ModelServices(
        cache_dir=tmp_path / "cache",
        hf_endpoint=base,
        credentials=models.SecretStoreCredentials(
            resolver=resolver, secret_names={"hf-token": "hf-token"}.get
        ),
    )
    spec = {
        "source": {"provider_type": "hugging_face", "uri": "acme/gated", "credential": "hf-token"},
        "security_scan": "skip",
    }
    facts = Facts(script=server_script, cache=services.cache_dir, model_spec=spec)
    inputs = {**spec, "model": "smol"}
    added = await models.add_model(_ctx("add_model", inputs, services))
    assert isinstance(added, outcomes.Done), added
    facts.status = {"phase": "Ready", **added.outputs["status"]}

    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=facts)
    deploy_ctx = _ctx("deploy_model", dict(DEPLOYMENT), services)
    done = await steps["deploy_model"](deploy_ctx)
    assert isinstance(done, outcomes.Done), done
    record = records.read_record(cache_dir=services.cache_dir, model="smol")
    assert record is not None and record["scan"]["result"] == "skipped"
    assert (Path(record["root"]) / "extra.bin").is_file()
    assert (services.cache_dir / "hashes.sqlite").is_file()  # skip still hashes
    assert "hf_good" not in deploy_ctx.log.text()
    assert not (tmp_path / "pwned").exists()
