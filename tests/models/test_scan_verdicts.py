"""The real scanners on hostile and clean files the tests write: each verdict at its path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.drivers.models import hashing, scanners
from tests.models import model_files as mf


def _scan(root: Path, cache: hashing.HashCache | None = None) -> scanners.ScanReport:
    files = hashing.hash_files(root=root, cache=cache)
    return scanners.scan_files(root=root, files=files, cache=cache)


def _by_path(report: scanners.ScanReport) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in report.findings:
        found.setdefault(finding.path, set()).add(finding.severity)
    return found


HOSTILE: dict[str, Callable[[Path], bytes]] = {
    "os_system.bin": mf.os_system_protocol0,
    "getattr_eval.pkl": mf.getattr_eval,
    "methodcaller.ckpt": mf.methodcaller_eval,
    "memo.bin": mf.memo_trick,
    "model.safetensors": mf.getattr_eval,  # a pickle under a safetensors name
    "evil_zip.pt": lambda marker: mf.torch_zip(mf.os_system_protocol0(marker)),
    "evil_legacy.pth": lambda marker: mf.torch_legacy(mf.memo_trick(marker)),
    "weights.dat": lambda marker: mf.torch_legacy(mf.getattr_eval(marker)),
}


@pytest.mark.parametrize("payload", [mf.getattr_eval, mf.methodcaller_eval, mf.memo_trick])
def test_hostile_payloads_are_live(tmp_path: Path, payload: Callable[[Path], bytes]) -> None:
    """Unpickled in a child process, the fixture really runs code (so a pass would matter)."""
    marker = tmp_path / "marker"
    data = payload(marker)
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=data,
        check=True,
        timeout=60,
    )
    assert marker.exists()


def test_every_hostile_file_is_critical_at_its_path_and_nothing_is_unpickled(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    root = tmp_path / "model"
    root.mkdir()
    for name, build in HOSTILE.items():
        (root / name).write_bytes(build(marker))
    (root / "clean.safetensors").write_bytes(mf.safetensors({"w": ("F32", [2, 2])}))

    report = _scan(root)

    verdicts = _by_path(report)
    for name in HOSTILE:
        assert "critical" in verdicts.get(name, set()), (name, report.findings)
    assert "clean.safetensors" not in verdicts
    assert report.result == "findings"
    assert {f.path for f in report.blocking} == set(HOSTILE)
    assert not marker.exists()


def test_the_safetensors_disguise_names_the_pickle(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(mf.getattr_eval(tmp_path / "m"))
    reasons = [f.reason for f in _scan(tmp_path).findings if f.scanner == scanners.OURS]
    assert any("pickle data under a .safetensors name" in reason for reason in reasons)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (mf.safetensors_bad_offsets(), "outside the"),
        (mf.safetensors_header_past_end(), "runs past the end"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "not valid UTF-8 JSON"),
    ],
)
def test_bad_safetensors_headers_are_high(tmp_path: Path, data: bytes, words: str) -> None:
    (tmp_path / "weights.safetensors").write_bytes(data)
    report = _scan(tmp_path)
    assert [(f.path, f.severity) for f in report.findings] == [("weights.safetensors", "high")]
    assert words in report.findings[0].reason


def test_clean_models_pass(tmp_path: Path) -> None:
    root = tmp_path / "model"
    root.mkdir()
    (root / "model.safetensors").write_bytes(
        mf.safetensors({"embed": ("BF16", [8, 4]), "norm": ("F32", [4])})
    )
    (root / "pytorch_model.bin").write_bytes(mf.torch_zip(mf.clean_state_pickle()))
    (root / "legacy.pt").write_bytes(mf.torch_legacy(mf.clean_state_pickle()))
    (root / "tiny.gguf").write_bytes(mf.gguf())
    (root / "config.json").write_text('{"hidden_size": 4, "model_type": "llama"}')
    (root / "README.md").write_text("config: a model card\n")

    report = _scan(root)

    assert report.findings == ()
    assert report.result == "clean"
    assert report.as_status() == {"result": "clean", "findings": []}


def test_archive_members_escaping_are_findings(tmp_path: Path) -> None:
    (tmp_path / "bundle.tar").write_bytes(mf.tar_with_escape())
    (tmp_path / "links.tar").write_bytes(mf.tar_with_link_out())
    (tmp_path / "bundle.zip").write_bytes(mf.zip_with_escape())
    found = {(f.path, f.severity) for f in _scan(tmp_path).findings}
    assert ("bundle.tar:../escaped.txt", "high") in found
    assert ("links.tar:model/weights.bin", "high") in found
    assert ("bundle.zip:../../evil.txt", "high") in found


def test_pickle_inside_a_tar_is_scanned(tmp_path: Path) -> None:
    evil = mf.getattr_eval(tmp_path / "marker")
    (tmp_path / "bundle.tar.gz").write_bytes(mf.plain_tar({"model/w.bin": evil}, gz=True))
    found = {(f.path, f.severity) for f in _scan(tmp_path).findings}
    assert ("bundle.tar.gz:model/w.bin", "critical") in found
    assert not (tmp_path / "marker").exists()


def test_a_gguf_name_on_other_bytes_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"\x00" * 64)
    report = _scan(tmp_path)
    assert [(f.path, f.severity) for f in report.findings] == [("model.gguf", "high")]


def test_verdicts_are_cached_by_hash(tmp_path: Path) -> None:
    root = tmp_path / "model"
    root.mkdir()
    (root / "evil.bin").write_bytes(mf.memo_trick(tmp_path / "marker"))
    (root / "model.safetensors").write_bytes(mf.safetensors({"w": ("F16", [4])}))
    cache = hashing.HashCache(db_path=tmp_path / "cache" / "models.sqlite")
    first = _scan(root, cache)
    again = _scan(root, cache)
    assert (first.scanned_files, first.cached_files) == (2, 0)
    assert (again.scanned_files, again.cached_files) == (0, 2)
    assert again.findings == first.findings
    (root / "evil.bin").rename(root / "renamed.bin")  # same bytes, new path: still found
    moved = _scan(root, cache)
    assert [f.path for f in moved.blocking] == ["renamed.bin"]
    cache.close()
