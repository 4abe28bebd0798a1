"""A Model whose files fail the security scan blocks every Deployment of it.

Through a real daemon: a disk Model holding a pickle that would run a shell command when
loaded is Stalled with reason ScanFailed, its status lists the finding at its path, and
the Deployment that serves it is Stalled with ScanFailed too: no server process is
started, and nothing ever unpickles the file (the command's marker file never appears).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from tests.conftest import GitRemote
from tests.daemon.conftest import StartDaemon
from tests.daemon.harness import condition, read_status, wait_for


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _model(path: Path) -> str:
    return (
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: evil}\n"
        f"spec: {{modality: embedding, source: {{provider_type: disk, uri: {path}}}}}\n"
    )


DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata: {name: evil-endpoint}
spec:
  model: evil
  cluster: local
  template: text-embeddings
  endpoint_name: evil
  deploy_config: {concurrent_requests: 1, avg_sequence_length: 1, avg_context_length: 16}
  workers: 1
"""


def test_a_model_failing_its_scan_stalls_itself_and_its_deployments(
    remote: GitRemote, start_daemon: StartDaemon, tmp_path: Path
) -> None:
    folder = tmp_path / "models" / "evil"
    folder.mkdir(parents=True)
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    (folder / "config.json").write_text('{"model_type": "bert"}')
    remote.writer.commit_and_push(
        {"models.yaml": _model(folder), "deployments.yaml": DEPLOYMENT}, "an evil model"
    )
    daemon = start_daemon()

    def status(path: str) -> dict | None:
        return read_status(remote.path, f"status/{path}")

    model = wait_for(
        "model stalled",
        lambda: (s := status("models/evil.yaml")) and s["phase"] == "Stalled" and s,
        timeout=60,
    )
    assert condition(model, "Ready")["reason"] == "ScanFailed"
    assert model["scan"]["result"] == "findings"
    worst = [f for f in model["scan"]["findings"] if f["severity"] in ("high", "critical")]
    assert [f["path"] for f in worst] == ["pytorch_model.bin"]

    deployment = wait_for(
        "deployment stalled",
        lambda: (s := status("deployments/evil-endpoint.yaml")) and s["phase"] == "Stalled" and s,
        timeout=60,
    )
    assert condition(deployment, "Ready")["reason"] == "ScanFailed"
    assert "Model/evil" in condition(deployment, "Ready")["message"]
    assert "endpoint_url" not in deployment
    assert (
        not (daemon.state_dir / "local" / "endpoints.json").exists()
        or "evil-endpoint" not in (daemon.state_dir / "local" / "endpoints.json").read_text()
    )
    assert not marker.exists()
