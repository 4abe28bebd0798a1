"""``reconciler explain KIND/NAME`` and ``GET /api/v1/objects/{kind}/{name}/explain``.

A Deployment waits on a Model whose disk path does not exist. Asked why, the daemon says:
the Deployment waits (WaitingForModel) and what to do about it; the Model it waits for is
Stalled (DiskSourceUnreadable) and what to do about that; and, for the Model, its last
execution's step with the tail of its log. A real daemon process, the real CLI, loopback
HTTP; a misspelled name gets a did-you-mean.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.api.conftest import API_SEED, TOKENS
from tests.api.test_cli_clients import _cli, start_api_daemon
from tests.conftest import MakeGitRemote
from tests.daemon.backlog import deployment, model
from tests.daemon.harness import wait_for

FILES = {
    **API_SEED,
    "waits.yaml": model("lost") + "---\n" + deployment("serve-lost", model="lost"),
}


def test_explain_says_what_an_object_waits_for_and_what_to_do(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(files=FILES)
    daemon, url = start_api_daemon(tmp_path, remote.path)
    try:
        viewer = TOKENS["viewer"]

        def explained() -> dict[str, object] | None:
            done = _cli(
                "explain", "deployment/serve-lost", "--format", "json", url=url, token=viewer
            )
            if done.returncode != 0:
                return None
            answer: dict[str, object] = json.loads(done.stdout)
            waits = answer.get("waits_for") or []
            # Until the local Cluster is Ready the Deployment waits for it too, and explain
            # lists both (seen once in ten loaded runs): ask once the Model alone is left.
            objects = [(w.get("object"), w.get("phase")) for w in waits]
            return answer if objects == [("Model/lost", "Stalled")] else None

        answer = wait_for("the Deployment parked on a Stalled Model", explained, timeout=60)
        assert answer["reason"] == "WaitingForModel"
        assert "Model/lost" in str(answer["message"])
        assert "reconciler status Model/NAME" in str(answer["what_to_do"])
        [model] = answer["waits_for"]  # type: ignore[misc]
        assert model["object"] == "Model/lost" and model["phase"] == "Stalled"
        assert model["reason"] == "DiskSourceUnreadable"
        assert "spec.source.uri" in model["what_to_do"]
        assert answer["last_execution"] is None  # it never ran: it waits

        text = _cli("explain", "Model/lost", url=url, token=viewer)
        assert text.returncode == 0, text.stderr
        assert text.stdout.startswith("Model/lost: Stalled (DiskSourceUnreadable)")
        assert "what to do: Put the files at spec.source.uri" in text.stdout
        assert "add_model (add_model): stalled, 1 attempt(s)" in text.stdout
        assert "does not exist on this host" in text.stdout

        unknown = _cli("explain", "Deployment/serve-lots", url=url, token=viewer)
        assert unknown.returncode == 1
        assert "did you mean Deployment/serve-lost?" in unknown.stderr
    finally:
        daemon.stop()
