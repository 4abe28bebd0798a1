"""The hugging_face source against a loopback hub, driven by the real huggingface_hub client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.drivers.models import errors, huggingface
from tests.models import model_files as mf
from tests.models.servers import Hub, HubRepo, serve

COMMIT = "3f1c2b7a9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f70"
CONFIG = b'{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 99}'
WEIGHTS = mf.safetensors({"embed": ("BF16", [99, 64])})


@pytest.fixture
def hub() -> Iterator[tuple[Hub, str]]:
    files = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "README.md": b"# tiny\n"}
    app = Hub(
        {
            "acme/tiny": HubRepo(files=files, commit=COMMIT, parameters={"BF16": 99 * 64}),
            "acme/gated": HubRepo(files={"config.json": CONFIG}, commit=COMMIT, gated=True),
        },
        token="hf_valid_token",
    )
    with serve(app) as base:
        yield app, base


def test_describe_resolves_the_branch_and_reads_metadata(
    hub: tuple[Hub, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, base = hub
    monkeypatch.setenv("HF_ENDPOINT", base)  # honoured when called, not only at import
    found = huggingface.describe_repo(
        repo_id="acme/tiny", revision="main", token=None, cache_dir=tmp_path
    )
    assert found.commit_sha == COMMIT
    assert found.license == "apache-2.0"
    assert found.pipeline_tag == "text-generation"
    assert (found.parameters, found.dtype, found.gated) == (99 * 64, "bfloat16", False)
    by_path = {f.path: f for f in found.files}
    assert by_path["model.safetensors"].sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert by_path["model.safetensors"].size == len(WEIGHTS)
    assert found.config == {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "vocab_size": 99,
    }
    assert "GET /api/models/acme/tiny/revision/main" in app.requests
    # only config.json came down: the weights stay on the hub until asked for
    assert not any("model.safetensors" in r for r in app.requests)


def test_download_fetches_the_files_of_the_commit(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    root = huggingface.download(
        repo_id="acme/tiny",
        commit_sha=COMMIT,
        paths=["config.json", "model.safetensors"],
        token=None,
        cache_dir=tmp_path,
        endpoint=base,
    )
    assert root == huggingface.snapshot_folder(
        repo_id="acme/tiny", commit_sha=COMMIT, cache_dir=tmp_path
    )
    assert (root / "model.safetensors").read_bytes() == WEIGHTS


def test_gated_repo_without_token_is_our_gated_error(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    with pytest.raises(errors.GatedRepoError, match="acme/gated"):
        huggingface.describe_repo(
            repo_id="acme/gated", revision="main", token=None, cache_dir=tmp_path, endpoint=base
        )


def test_gated_repo_with_the_token_is_described(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    found = huggingface.describe_repo(
        repo_id="acme/gated",
        revision="main",
        token="hf_valid_token",
        cache_dir=tmp_path,
        endpoint=base,
    )
    assert found.gated is True
    assert found.config["hidden_size"] == 64


def test_unknown_repo_and_revision_are_not_found(hub: tuple[Hub, str], tmp_path: Path) -> None:
    _, base = hub
    with pytest.raises(errors.SourceNotFoundError, match="RepoNotFound"):
        huggingface.describe_repo(
            repo_id="acme/missing", revision="main", token=None, cache_dir=tmp_path, endpoint=base
        )
    with pytest.raises(errors.SourceNotFoundError, match="revision does not exist"):
        huggingface.describe_repo(
            repo_id="acme/tiny", revision="nope", token=None, cache_dir=tmp_path, endpoint=base
        )


def test_an_unreachable_hub_is_worth_a_retry(tmp_path: Path) -> None:
    with serve(Hub({})) as base:
        pass  # the port is closed again
    with pytest.raises(errors.SourceUnavailableError):
        huggingface.describe_repo(
            repo_id="acme/tiny", revision="main", token=None, cache_dir=tmp_path, endpoint=base
        )
