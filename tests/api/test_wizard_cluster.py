"""The add-cluster wizard: a multipart form whose kubeconfig goes to the secret store
(0600) and never to Git, a response or the daemon's log; the Cluster committed names the
secret. Oversized bodies and kubeconfigs are refused (413), wrong roles too."""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Any

import aiohttp
import pytest
import yaml

from reconciler.api.compat.wizard_drafts import DEFAULT_TTL_S, WIZARD_DRAFTS
from reconciler.api.state import VIEW
from tests.api.conftest import TOKENS, Reply, RunningDaemon, StartApi, wait_until
from tests.api.test_wizard_helpers import author, wait_status

MARKER = "kube-token-5c2f9e81d0a7"
KUBECONFIG = f"""\
apiVersion: v1
kind: Config
clusters:
  - name: xeon-dev
    cluster: {{server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}
users:
  - name: admin
    user: {{token: {MARKER}}}
contexts:
  - name: xeon-dev
    context: {{cluster: xeon-dev, user: admin}}
current-context: xeon-dev
"""
FORM = {
    "step_number": "1",
    "name": "Xeon Dev",
    "icon": "icons/providers/openai.png",
    "ingress_url": "https://20.244.107.114:10001",
    "workflow_total_steps": "3",
    "trigger_workflow": "true",
}


async def _post_form(
    api: RunningDaemon,
    fields: dict[str, str],
    *,
    kubeconfig: bytes | None = KUBECONFIG.encode(),
    role: str | None = "editor",
) -> Reply:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    if kubeconfig is not None:
        form.add_field(
            "configuration_file", kubeconfig, filename="kubeconfig.yaml",
            content_type="application/yaml",
        )  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    client = api.client
    async with client.session.post(
        client.base + "/clusters/clusters", data=form, headers=headers
    ) as response:
        reply = Reply(response.status, dict(response.headers), await response.text())
    client.replies.append(reply)
    client.answers.check(
        "POST",
        "/clusters/clusters",
        status=reply.status,
        content_type=reply.headers.get("Content-Type", ""),
        text=reply.text,
    )
    return reply


def _everything_in_git(api: RunningDaemon) -> str:
    """Every object of the remote, every branch's history with patches."""
    log = subprocess.run(
        ["git", "log", "-p", "--all", "--format=%H %an %s"],
        cwd=api.remote.path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=api.remote.path, capture_output=True, check=True,
    ).stdout.decode("utf-8", "replace")  # fmt: skip
    return log + objects


async def test_add_cluster_puts_the_kubeconfig_in_the_secret_store_only(
    start_api: StartApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = await start_api()
    reply = await _post_form(api, FORM)
    assert reply.status == 200, reply.text
    answer: dict[str, Any] = reply.json()
    assert answer["workflow_type"] == "add-cluster" and answer["total_steps"] == 3
    assert answer["workflow_steps"]["configuration_file"] == {"secret": "xeon-dev-kubeconfig"}
    secret = api.state_dir.parent / "secrets" / "xeon-dev-kubeconfig"
    assert secret.read_text() == KUBECONFIG
    assert secret.stat().st_mode & 0o777 == 0o600

    commit = answer["workflow_steps"]["workflow_execution_status"]["commit"]
    assert author(api, commit) == "editor-bot <editor-bot@reconciler.api>"
    cluster = yaml.safe_load(api.remote.read("clusters/xeon-dev.yaml"))
    assert cluster["spec"] == {
        "display_name": "Xeon Dev",
        "driver": "kubernetes",
        "ingress_url": "https://20.244.107.114:10001",
        "icon": "icons/providers/openai.png",
        "kubeconfig": {"secret": "xeon-dev-kubeconfig"},
    }
    # Nothing answers at the kubeconfig's server: the Cluster fails, and the wizard says why.
    failed = await wait_status(api, answer["workflow_id"], "failed")
    assert failed["workflow_steps"]["workflow_execution_status"]["phase"] == "Stalled"
    assert "Cluster/xeon-dev is unreachable" in failed["reason"]

    # The same name again: the Cluster exists (409), nothing more is committed.
    tip = api.remote.tip()
    again = await _post_form(api, FORM)
    assert again.status == 409 and again.json()["detail"].startswith("name:")
    assert api.remote.tip() == tip

    assert MARKER not in _everything_in_git(api)
    # Nor in the state dir: the store's drafts and the daemon's own clones of the repo.
    held = [
        p for p in api.state_dir.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()
    ]
    assert held == []
    assert all(MARKER not in r.text for r in api.client.replies)
    logged = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    assert "Xeon Dev" in logged or "xeon-dev" in logged  # the log did record the wizard
    assert MARKER not in logged


async def test_add_cluster_refuses_bad_forms(start_api: StartApi) -> None:
    api = await start_api()
    tip = api.remote.tip()
    huge = await _post_form(api, FORM, kubeconfig=b"#" * (2 * 1024 * 1024))
    assert huge.status == 413, huge.text
    big = await _post_form(api, FORM, kubeconfig=b"# padding\n" * 30_000 + KUBECONFIG.encode())
    assert big.status == 413 and big.json()["detail"].startswith("configuration_file:")
    for role, status in ((None, 401), ("viewer", 403), ("operator", 403)):
        assert (await _post_form(api, FORM, role=role)).status == status
    missing = await _post_form(api, FORM, kubeconfig=None)
    assert missing.status == 422 and missing.json()["detail"].startswith("configuration_file:")
    broken = f"clusters: [{MARKER}\n  : :".encode()
    not_yaml = await _post_form(api, FORM, kubeconfig=broken)
    assert not_yaml.status == 422 and not_yaml.json()["detail"].startswith("configuration_file:")
    assert MARKER not in not_yaml.text
    not_kube = await _post_form(api, FORM, kubeconfig=b"just: a mapping\n")
    assert not_kube.status == 422
    bad_step = await _post_form(api, {**FORM, "step_number": "one"})
    assert bad_step.status == 422 and bad_step.json()["detail"].startswith("step_number:")
    other = await _post_form(api, {**FORM, "provider_id": "openai"})
    assert other.status == 422 and other.json()["detail"].startswith("provider_id:")
    as_json = await api.client.post("/clusters/clusters", role="editor", json={"step_number": 1})
    assert as_json.status == 400
    assert api.remote.tip() == tip
    assert not (api.state_dir.parent / "secrets" / "xeon-dev-kubeconfig").exists()


async def test_add_cluster_in_two_calls_keeps_the_file_out_of_the_draft(
    start_api: StartApi,
) -> None:
    api = await start_api()
    first = await _post_form(api, {**FORM, "trigger_workflow": "false"})
    assert first.status == 200, first.text
    draft = first.json()
    assert draft["status"] == "in_progress" and draft["workflow_steps"]["configuration_file"] == {
        "secret": "xeon-dev-kubeconfig"
    }
    assert api.remote.tip() is not None and "clusters/xeon-dev.yaml" not in api.remote.paths()
    fields = {"workflow_id": draft["workflow_id"], **FORM}
    del fields["workflow_total_steps"]
    second = await _post_form(api, fields)
    assert second.status == 200, second.text
    assert "clusters/xeon-dev.yaml" in api.remote.paths()
    assert MARKER not in _everything_in_git(api)


async def test_an_expired_add_cluster_draft_takes_its_kubeconfig_with_it(
    start_api: StartApi,
) -> None:
    api = await start_api()
    secrets_dir = api.state_dir.parent / "secrets"
    first = await _post_form(api, {**FORM, "trigger_workflow": "false"})
    assert first.status == 200, first.text
    workflow_id = first.json()["workflow_id"]
    stored = secrets_dir / "xeon-dev-kubeconfig"
    assert stored.exists()
    # Another secret whose name starts with this one's is not touched.
    neighbour = secrets_dir / "xeon-dev-kubeconfig-old"
    neighbour.write_text("other")
    drafts = api.server.app[WIZARD_DRAFTS]
    drafts.clock = lambda: time.time() + DEFAULT_TTL_S + 60
    read = (await api.client.get(f"/workflows/{workflow_id}")).json()
    assert read["status"] == "expired"
    assert not stored.exists()
    assert neighbour.read_text() == "other"


async def test_an_expired_draft_leaves_a_kubeconfig_a_cluster_in_git_names(
    start_api: StartApi,
) -> None:
    """Two drafts of one cluster with the same file share its secret; once one is
    triggered, the other expiring must not take the committed Cluster's kubeconfig."""
    api = await start_api()
    idle = await _post_form(api, {**FORM, "trigger_workflow": "false"})
    assert idle.status == 200, idle.text
    triggered = await _post_form(api, FORM)
    assert triggered.status == 200, triggered.text
    view = api.server.app[VIEW]

    async def applied() -> bool:
        return "Cluster/xeon-dev" in view.desired()

    await wait_until("the Cluster applied", applied)
    drafts = api.server.app[WIZARD_DRAFTS]
    drafts.clock = lambda: time.time() + DEFAULT_TTL_S + 60
    read = (await api.client.get(f"/workflows/{idle.json()['workflow_id']}")).json()
    assert read["status"] == "expired"
    assert (api.state_dir.parent / "secrets" / "xeon-dev-kubeconfig").exists()
