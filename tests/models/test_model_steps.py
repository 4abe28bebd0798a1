"""add_model, scan_model and remove_model over real files, a loopback hub and file server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.object_status import stall_reason
from reconciler.drivers import secrets
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepLog, StepServices
from reconciler.steps import models
from reconciler.steps.registry import StepRegistry
from tests.models import model_files as mf
from tests.models.servers import Files, Hub, HubRepo, ServedFile, serve

COMMIT = "c0ffee" + "0" * 34
WEIGHTS = mf.safetensors({"embed": ("BF16", [16, 8]), "norm": ("F32", [8])})


def _ctx(step: str, spec: dict[str, Any], services: models.ModelServices) -> StepContext:
    return StepContext(
        execution_id="e1",
        node_id=step,
        step_type=step,
        inputs={"model": "m1", **spec},
        attempt=1,
        params={},
        object_key="Model/m1",
        revision="r1",
        cluster=None,
        log=StepLog(prefix=step),
        services=StepServices(extra={models.MODEL_SERVICE: services}),
    )


@pytest.fixture
def services(tmp_path: Path) -> models.ModelServices:
    resolver = secrets.SecretResolver(None, environ={"RECONCILER_SECRET_HF_TOKEN": "hf_good"})
    names = {"hf-token": "hf-token", "dangling": "no-such-secret"}
    return models.ModelServices(
        cache_dir=tmp_path / "cache",
        credentials=models.SecretStoreCredentials(resolver=resolver, secret_names=names.get),
    )


def _disk_model(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model.safetensors").write_bytes(WEIGHTS)
    (root / "config.json").write_text('{"hidden_size": 8, "num_hidden_layers": 1}')
    return root


def _status(outcome: outcomes.Outcome) -> dict[str, Any]:
    assert isinstance(outcome, outcomes.Done), outcome
    status: dict[str, Any] = outcome.outputs["status"]
    return status


def test_register_model_steps() -> None:
    registry = StepRegistry()
    models.register_model_steps(registry)
    assert {"add_model", "scan_model", "remove_model"} <= set(registry)


async def test_disk_model_is_listed_sized_and_scanned_clean(
    tmp_path: Path, services: models.ModelServices
) -> None:
    root = _disk_model(tmp_path / "weights")
    spec = {"source": {"provider_type": "disk", "uri": str(root)}}
    status = _status(await models.add_model(_ctx("add_model", spec, services)))
    assert status["files"] == [
        {
            "path": "config.json",
            "size": 42,
            "sha256": hashlib.sha256((root / "config.json").read_bytes()).hexdigest(),
        },
        {
            "path": "model.safetensors",
            "size": len(WEIGHTS),
            "sha256": hashlib.sha256(WEIGHTS).hexdigest(),
        },
    ]
    assert status["size_bytes"] == 42 + len(WEIGHTS)
    assert (status["parameters"], status["dtype"]) == (16 * 8 + 8, "bfloat16")
    assert status["config"] == {"hidden_size": 8, "num_hidden_layers": 1}
    scanned = await models.scan_model(_ctx("scan_model", spec, services))
    assert _status(scanned) == {"scan": {"result": "clean", "findings": []}}

    (root / "model.safetensors").write_bytes(WEIGHTS + b"\x00")  # drift on disk
    again = _status(await models.add_model(_ctx("add_model", spec, services)))
    assert again["files"][1]["sha256"] != status["files"][1]["sha256"]


async def test_a_hostile_file_stalls_the_model_with_scan_failed(
    tmp_path: Path, services: models.ModelServices
) -> None:
    root = _disk_model(tmp_path / "weights")
    (root / "pytorch_model.bin").write_bytes(mf.torch_legacy(mf.getattr_eval(tmp_path / "pwned")))
    spec = {"source": {"provider_type": "disk", "uri": str(root)}}
    _status(await models.add_model(_ctx("add_model", spec, services)))
    outcome = await models.scan_model(_ctx("scan_model", spec, services))
    assert isinstance(outcome, outcomes.Stalled)
    assert stall_reason(outcome.reason) == "ScanFailed"
    assert "pytorch_model.bin: critical: pickle imports builtins.getattr" in outcome.reason
    assert not (tmp_path / "pwned").exists()


async def test_security_scan_skip_hashes_but_says_skipped(
    tmp_path: Path, services: models.ModelServices
) -> None:
    root = _disk_model(tmp_path / "weights")
    (root / "evil.bin").write_bytes(mf.os_system_protocol0(tmp_path / "pwned"))
    spec = {"source": {"provider_type": "disk", "uri": str(root)}, "security_scan": "skip"}
    status = _status(await models.add_model(_ctx("add_model", spec, services)))
    assert status["scan"] == {"result": "skipped", "findings": []}
    assert len(status["files"]) == 3
    scanned = _status(await models.scan_model(_ctx("scan_model", spec, services)))
    assert scanned["scan"]["result"] == "skipped"


async def test_a_missing_disk_path_stalls(services: models.ModelServices) -> None:
    spec = {"source": {"provider_type": "disk", "uri": "/nonexistent/model"}}
    outcome = await models.add_model(_ctx("add_model", spec, services))
    assert isinstance(outcome, outcomes.Stalled)
    assert stall_reason(outcome.reason) == "DiskSourceUnreadable"
    assert "/nonexistent/model does not exist" in outcome.reason


@pytest.fixture
def hub_base() -> Iterator[str]:
    files = {"config.json": b'{"hidden_size": 8}', "model.safetensors": WEIGHTS}
    app = Hub(
        {
            "acme/tiny": HubRepo(files=files, commit=COMMIT, parameters={"BF16": 128, "F32": 8}),
            "acme/gated": HubRepo(files=files, commit=COMMIT, gated=True),
        },
        token="hf_good",
    )
    with serve(app) as base:
        yield base


async def test_hugging_face_metadata_then_download_and_scan(
    hub_base: str, services: models.ModelServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub_base)
    spec: dict[str, Any] = {
        "source": {"provider_type": "hugging_face", "uri": "acme/tiny", "revision": "main"}
    }
    status = _status(await models.add_model(_ctx("add_model", spec, services)))
    assert status["resolved_revision"] == COMMIT
    assert (status["parameters"], status["dtype"], status["license"]) == (
        136,
        "bfloat16",
        "apache-2.0",
    )
    skipped = _status(await models.scan_model(_ctx("scan_model", spec, services)))
    assert skipped["scan"]["result"] == "skipped"

    spec["download"] = True
    status = _status(await models.add_model(_ctx("add_model", spec, services)))
    assert [f["path"] for f in status["files"]] == ["config.json", "model.safetensors"]
    assert all(len(f["sha256"]) == 64 for f in status["files"])
    scanned = _status(await models.scan_model(_ctx("scan_model", spec, services)))
    assert scanned["scan"] == {"result": "clean", "findings": []}


async def test_remove_model_deletes_its_hub_commit_once_no_model_records_it(
    hub_base: str, services: models.ModelServices
) -> None:
    """Two Models of the same commit share the daemon's download: removing the first
    keeps it, removing the second deletes the snapshot and its blobs (huggingface_hub's
    cache manager), and another repo's download is left alone."""
    object.__setattr__(services, "hf_endpoint", hub_base)
    tiny = {"provider_type": "hugging_face", "uri": "acme/tiny", "download": True}
    gated = {"provider_type": "hugging_face", "uri": "acme/gated", "credential": "hf-token"}
    for name, source in (("m1", tiny), ("m2", tiny), ("m3", gated)):
        spec = {"model": name, "source": source, "download": True}
        _status(await models.add_model(_ctx("add_model", spec, services)))
    hub = services.cache_dir / "hf"
    repo = hub / "models--acme--tiny"
    snapshot = repo / "snapshots" / COMMIT
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors"]
    assert len(list((repo / "blobs").iterdir())) == 2

    one = {"model": "m1", "source": tiny}
    assert isinstance(await models.remove_model(_ctx("remove_model", one, services)), outcomes.Done)
    assert snapshot.is_dir(), "m2 records the same commit"

    two = {"model": "m2", "source": tiny}
    removed = _ctx("remove_model", two, services)
    assert isinstance(await models.remove_model(removed), outcomes.Done)
    assert not snapshot.exists()
    assert not (repo / "blobs").exists() or not any((repo / "blobs").iterdir())
    assert f"deleted the download at {snapshot}" in removed.log.text()
    other = hub / "models--acme--gated" / "snapshots" / COMMIT
    assert sorted(p.name for p in other.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize(
    ("credential", "reason"),
    [(None, "GatedRepo"), ("dangling", "SecretNotFound"), ("undefined", "SecretNotFound")],
)
async def test_hugging_face_gated_and_secret_problems_stall(
    hub_base: str, services: models.ModelServices, credential: str | None, reason: str
) -> None:
    source = {"provider_type": "hugging_face", "uri": "acme/gated", "credential": credential}
    ctx = _ctx("add_model", {"source": source}, services)
    object.__setattr__(services, "hf_endpoint", hub_base)
    outcome = await models.add_model(ctx)
    assert isinstance(outcome, outcomes.Stalled), outcome
    assert stall_reason(outcome.reason) == reason
    assert "hf_good" not in outcome.reason


async def test_hugging_face_gated_with_the_credential_resolves(
    hub_base: str, services: models.ModelServices
) -> None:
    object.__setattr__(services, "hf_endpoint", hub_base)
    source = {"provider_type": "hugging_face", "uri": "acme/gated", "credential": "hf-token"}
    status = _status(await models.add_model(_ctx("add_model", {"source": source}, services)))
    assert status["gated"] is True and status["resolved_revision"] == COMMIT


async def test_url_model_wrong_sha_stalls_and_remove_deletes_the_download(
    services: models.ModelServices,
) -> None:
    data = mf.gguf()
    with serve(Files({"tiny.gguf": ServedFile(data)})) as base:
        bad = {"source": {"provider_type": "url", "uri": f"{base}/tiny.gguf", "sha256": "1" * 64}}
        outcome = await models.add_model(_ctx("add_model", bad, services))
        assert isinstance(outcome, outcomes.Stalled)
        assert stall_reason(outcome.reason) == "ChecksumMismatch"
        assert "sha256 mismatch" in outcome.reason
        sha = hashlib.sha256(data).hexdigest()
        good = {"source": {"provider_type": "url", "uri": f"{base}/tiny.gguf", "sha256": sha}}
        status = _status(await models.add_model(_ctx("add_model", good, services)))
    assert status["files"] == [{"path": "tiny.gguf", "size": len(data), "sha256": sha}]
    download = services.cache_dir / "url" / sha
    assert download.is_dir()
    assert isinstance(
        await models.remove_model(_ctx("remove_model", good, services)), outcomes.Done
    )
    assert not download.exists()


async def test_cloud_models_are_checked_against_the_catalogue(
    services: models.ModelServices,
) -> None:
    good = {
        "source": {
            "provider_type": "cloud_model",
            "provider": "openai",
            "uri": "openai/gpt-4o-mini",
        }
    }
    status = _status(await models.add_model(_ctx("add_model", good, services)))
    assert status == {"cloud": {"provider": "openai", "model": "gpt-4o-mini"}}
    bad = {"source": {"provider_type": "cloud_model", "provider": "vertex", "uri": "vertex/gemini"}}
    outcome = await models.add_model(_ctx("add_model", bad, services))
    assert isinstance(outcome, outcomes.Stalled)
    assert stall_reason(outcome.reason) == "InvalidModelUri"
    assert "vertex/<project>/<location>/<model>" in outcome.reason
