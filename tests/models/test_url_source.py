"""The url source against a real HTTP server on loopback: each failure clear, nothing left."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reconciler.drivers.models import errors, url
from tests.models import model_files as mf
from tests.models.servers import Files, ServedFile, serve

PAYLOAD = mf.gguf() + bytes(range(256)) * 64
SHA = hashlib.sha256(PAYLOAD).hexdigest()
SETTINGS = url.DownloadSettings(max_bytes=1 << 20, read_timeout_s=30, resume_attempts=3)


def _leftovers(dest: Path) -> list[Path]:
    return sorted(dest.rglob("*")) if dest.exists() else []


async def test_download_lands_under_its_sha(tmp_path: Path) -> None:
    with serve(Files({"tiny.gguf": ServedFile(PAYLOAD)})) as base:
        root = await url.fetch(
            url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=SETTINGS
        )
    assert root == tmp_path / SHA
    assert (root / "tiny.gguf").read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == [root, root / "tiny.gguf"]


async def test_a_truncated_transfer_is_resumed_with_range(tmp_path: Path) -> None:
    app = Files({"tiny.gguf": ServedFile(PAYLOAD, cut_times=2)})
    with serve(app) as base:
        root = await url.fetch(
            url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=SETTINGS
        )
    assert (root / "tiny.gguf").read_bytes() == PAYLOAD
    assert app.ranges[0] == ""
    assert app.ranges[1].startswith("bytes=") and app.ranges[1] != "bytes=0-"
    assert len(app.ranges) == 3


async def test_a_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    app = Files({"tiny.gguf": ServedFile(PAYLOAD, cut_times=1, ignore_range=True)})
    with serve(app) as base:
        root = await url.fetch(
            url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=SETTINGS
        )
    assert (root / "tiny.gguf").read_bytes() == PAYLOAD


async def test_a_transfer_that_keeps_breaking_fails_and_leaves_nothing(tmp_path: Path) -> None:
    app = Files({"tiny.gguf": ServedFile(PAYLOAD, cut_times=100)})
    with (
        serve(app) as base,
        pytest.raises(errors.TruncatedDownloadError, match="truncated transfer"),
    ):
        await url.fetch(url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=SETTINGS)
    assert _leftovers(tmp_path) == []


async def test_a_wrong_sha256_fails_and_leaves_nothing(tmp_path: Path) -> None:
    wrong = "0" * 64
    with (
        serve(Files({"tiny.gguf": ServedFile(PAYLOAD)})) as base,
        pytest.raises(errors.ChecksumMismatchError) as caught,
    ):
        await url.fetch(url=f"{base}/tiny.gguf", sha256=wrong, dest_dir=tmp_path, settings=SETTINGS)
    assert f"sha256 mismatch for {base}/tiny.gguf: expected {wrong}, got {SHA}" in str(caught.value)
    assert _leftovers(tmp_path) == []


async def test_an_oversized_file_fails_and_leaves_nothing(tmp_path: Path) -> None:
    small = url.DownloadSettings(max_bytes=1000)
    with (
        serve(Files({"tiny.gguf": ServedFile(PAYLOAD)})) as base,
        pytest.raises(errors.DownloadTooLargeError, match="limit 1000"),
    ):
        await url.fetch(url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=small)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("bundle.tar", mf.tar_with_escape(), "'..' component"),
        ("links.tar", mf.tar_with_link_out(), "outside the archive"),
        ("abs.tar", mf.tar_with_escape("/tmp/evil.txt"), "absolute path"),
        ("bundle.zip", mf.zip_with_escape(), "'..' component"),
    ],
)
async def test_an_archive_with_escapes_fails_and_writes_nothing(
    tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    dest = tmp_path / "dest"
    sha = hashlib.sha256(data).hexdigest()
    with (
        serve(Files({name: ServedFile(data)})) as base,
        pytest.raises(errors.UnsafeArchiveError, match=words),
    ):
        await url.fetch(url=f"{base}/{name}", sha256=sha, dest_dir=dest, settings=SETTINGS)
    assert _leftovers(dest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


async def test_a_clean_archive_is_unpacked(tmp_path: Path) -> None:
    data = mf.plain_tar(
        {"model/config.json": b"{}", "model/w.safetensors": mf.safetensors({"w": ("F16", [2])})},
        gz=True,
    )
    sha = hashlib.sha256(data).hexdigest()
    with serve(Files({"model.tar.gz": ServedFile(data)})) as base:
        root = await url.fetch(
            url=f"{base}/model.tar.gz", sha256=sha, dest_dir=tmp_path, settings=SETTINGS
        )
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "model/config.json",
        "model/w.safetensors",
    ]


async def test_no_proxy_lets_loopback_bypass_a_dead_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(Files({})) as dead:
        pass
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with serve(Files({"tiny.gguf": ServedFile(PAYLOAD)})) as base:
        root = await url.fetch(
            url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path, settings=SETTINGS
        )
    assert (root / "tiny.gguf").exists()
    monkeypatch.delenv("NO_PROXY")
    with (
        serve(Files({"tiny.gguf": ServedFile(PAYLOAD)})) as base,
        pytest.raises(errors.SourceUnavailableError),
    ):
        await url.fetch(
            url=f"{base}/tiny.gguf", sha256=SHA, dest_dir=tmp_path / "other", settings=SETTINGS
        )
