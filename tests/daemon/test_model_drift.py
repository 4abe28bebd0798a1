"""A disk Model's files are hashed again on each resync: a change on disk shows in status.

Through a real daemon with a short resync: the Model is Ready listing each file with its
sha256; a file rewritten on disk (same spec, no push) appears with its new hash after the
next resync.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import read_status, wait_for


def _safetensors(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)


def _hash_of(status: dict, path: str) -> str | None:
    return next((f["sha256"] for f in status.get("files") or [] if f["path"] == path), None)


def test_a_file_changed_on_disk_shows_after_the_next_resync(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    _safetensors(folder / "model.safetensors")
    config = folder / "config.json"
    config.write_text('{"model_type": "bert", "hidden_size": 8}')
    model = (
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: local-files}\n"
        f"spec: {{modality: embedding, source: {{provider_type: disk, uri: {folder}}}}}\n"
    )
    remote.writer.commit_and_push({"models.yaml": model}, "a disk model")
    start_daemon(resync="2s")

    def status() -> dict | None:
        return read_status(remote.path, "status/models/local-files.yaml")

    first = wait_for(
        "model ready", lambda: (s := status()) and s["phase"] == "Ready" and s, timeout=60
    )
    assert _hash_of(first, "config.json") == hashlib.sha256(config.read_bytes()).hexdigest()

    config.write_text('{"model_type": "bert", "hidden_size": 16}')
    changed = hashlib.sha256(config.read_bytes()).hexdigest()
    # The hash shows once the chain's hashing step ends, while the chain still runs
    # (Reconciling); then the Model is Ready again with it.
    wait_for(
        "the new hash in status, the Model Ready",
        lambda: (
            (s := status())
            and _hash_of(s, "config.json") == changed
            and s["phase"] == "Ready"
            and s
        ),
        timeout=60,
    )
