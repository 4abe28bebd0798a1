"""What ``reconciler status`` and ``trigger`` say when a person types something close:
a kind in any case, a misspelled name, ``HOST:PORT`` without a scheme, no token. Real
``reconciler run`` and CLI subprocesses over loopback HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.cli.api_client import base_url
from tests.api.conftest import API_SEED, TOKENS, write_api_config
from tests.conftest import MakeGitRemote
from tests.daemon.harness import DaemonProcess, daemon_env, wait_for
from tests.forkserver import run_reconciler


def _cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = daemon_env()
    env.pop("RECONCILER_URL", None)
    env.pop("RECONCILER_TOKEN", None)
    if token is not None:
        env["RECONCILER_TOKEN"] = token
    return run_reconciler(list(args), env=env, timeout=60)


def _port(daemon: DaemonProcess) -> int | None:
    for record in daemon.logs():
        if record.get("msg") == "API listening":
            return int(record["port"])
    assert daemon.alive(), daemon.log_text()
    return None


def test_close_names_get_a_did_you_mean_and_a_401_names_the_variable(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(files=API_SEED)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "webhook-hmac").write_text("whsec-3f9a1c77e2\n")
    (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")
    state = tmp_path / "state"
    config = write_api_config(
        tmp_path / "reconciler.yaml", remote=remote.path, state_dir=state, secrets_dir=secrets
    )
    daemon = DaemonProcess(config, state, tmp_path / "daemon.log", daemon_env()).start()
    try:
        port = wait_for("the API to listen", lambda: _port(daemon))
        bare = f"127.0.0.1:{port}"  # no scheme: what people type
        viewer = TOKENS["viewer"]

        waited = _cli("status", "workflow/train", "--wait", "--timeout", "30", "--url", bare,
                      token=viewer)  # fmt: skip
        assert waited.returncode == 0, waited.stderr
        assert waited.stdout.startswith("Workflow/train: Ready")

        head = remote.tip()
        assert head is not None
        at_head = _cli("status", "Workflow/train", "--wait", "--revision", head, "--timeout",
                       "30", "--url", bare, token=viewer)  # fmt: skip
        assert at_head.returncode == 0, at_head.stderr
        elsewhere = _cli("status", "Workflow/train", "--wait", "--revision", "0123456789ab",
                         "--timeout", "1", "--url", bare, token=viewer)  # fmt: skip
        assert elsewhere.returncode == 1
        assert f"is Ready at {head[:12]}, not 0123456789ab" in elsewhere.stderr

        plural = _cli("status", "Workflows/train", "--url", bare, token=viewer)
        assert plural.returncode == 0 and plural.stdout.startswith("Workflow/train: Ready")

        typo = _cli("status", "Workflow/trian", "--url", bare, token=viewer)
        assert typo.returncode == 1
        assert "404" in typo.stderr and "(did you mean Workflow/train?)" in typo.stderr

        bad_kind = _cli("status", "Workflw/train", "--url", bare, token=viewer)
        assert bad_kind.returncode == 1
        assert "unknown kind 'Workflw' (did you mean 'Workflow'?)" in bad_kind.stderr

        none_such = _cli("status", "Model/anything", "--url", bare, token=viewer)
        assert none_such.returncode == 1 and "the daemon knows no Model at all" in none_such.stderr

        trigger_typo = _cli("trigger", "trian", "--url", bare, token=TOKENS["operator"])
        assert trigger_typo.returncode == 1
        assert "(did you mean Workflow/train?)" in trigger_typo.stderr

        anonymous = _cli("status", "--url", bare)
        assert anonymous.returncode == 1 and "401" in anonymous.stderr
        assert "$RECONCILER_TOKEN" in anonymous.stderr
        wrong = _cli("status", "--url", bare, token="not-a-known-token")
        assert wrong.returncode == 1 and "$RECONCILER_TOKEN" in wrong.stderr
        assert "not-a-known-token" not in wrong.stderr + wrong.stdout
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("127.0.0.1:18080", "http://127.0.0.1:18080"),
        ("localhost:8080/", "http://localhost:8080"),
        ("https://reconciler.example:8443", "https://reconciler.example:8443"),
        ("[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_an_address_without_a_scheme_is_http(given: str, url: str) -> None:
    assert base_url(given) == url


def test_a_url_of_another_scheme_says_what_to_give() -> None:
    done = _cli("status", "--url", "ftp://127.0.0.1:21")
    assert done.returncode == 1
    assert "give http://HOST:PORT (or HOST:PORT)" in done.stderr
    assert "unknown url type" not in done.stderr
