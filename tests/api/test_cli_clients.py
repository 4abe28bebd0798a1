"""``reconciler run`` serves the API (config ``api:`` or ``--listen``), and ``reconciler
status`` / ``reconciler trigger`` talk to it: real subprocesses over loopback HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.api.conftest import API_SEED, SECRET_VALUES, TOKENS, write_api_config
from tests.conftest import MakeGitRemote
from tests.daemon.harness import DaemonProcess, daemon_env, wait_for
from tests.forkserver import run_reconciler


def _port(daemon: DaemonProcess) -> int | None:
    for record in daemon.logs():
        if record.get("msg") == "API listening":
            return int(record["port"])
    assert daemon.alive(), daemon.log_text()
    return None


def _cli(*args: str, url: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**daemon_env(), "RECONCILER_URL": url}
    env.pop("RECONCILER_TOKEN", None)
    if token is not None:
        env["RECONCILER_TOKEN"] = token
    return run_reconciler(list(args), env=env, timeout=60)


def start_api_daemon(tmp_path: Path, remote: Path) -> tuple[DaemonProcess, str]:
    """A ``reconciler run`` process serving the API on ``remote``, and the API's URL."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "webhook-hmac").write_text("whsec-3f9a1c77e2\n")
    (secrets / "openai-api-key").write_text("sk-test-value-never-printed\n")
    state = tmp_path / "state"
    config = write_api_config(
        tmp_path / "reconciler.yaml", remote=remote, state_dir=state, secrets_dir=secrets
    )
    daemon = DaemonProcess(config, state, tmp_path / "daemon.log", daemon_env()).start()
    return daemon, f"http://127.0.0.1:{wait_for('the API to listen', lambda: _port(daemon))}"


def test_status_and_trigger_against_a_configured_daemon(
    tmp_path: Path, make_git_remote: MakeGitRemote
) -> None:
    remote = make_git_remote(files=API_SEED)
    daemon, url = start_api_daemon(tmp_path, remote.path)
    try:

        def train_ready() -> bool:
            done = _cli("status", "Workflow/train", url=url, token=TOKENS["viewer"])
            return done.returncode == 0 and "Workflow/train: Ready" in done.stdout

        wait_for("Workflow/train Ready", train_ready, timeout=30)
        overview = _cli("status", url=url, token=TOKENS["viewer"])
        assert overview.returncode == 0, overview.stderr
        assert "branch main" in overview.stdout and "Project/research" in overview.stdout

        refused = _cli("trigger", "train", url=url, token=TOKENS["viewer"])
        assert refused.returncode == 1 and "403" in refused.stderr

        ran = _cli("trigger", "train", "-p", "epochs=5", "--wait", url=url,
                   token=TOKENS["operator"])  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        execution_id, outcome = ran.stdout.split()
        assert outcome == "succeeded"

        detail = _cli("status", "Workflow/train", url=url, token=TOKENS["viewer"])
        assert f"last execution {execution_id} execute succeeded (trigger api)" in detail.stdout
        assert "prepare" in detail.stdout and "train" in detail.stdout

        missing = _cli("status", "Workflow/absent", url=url, token=TOKENS["viewer"])
        assert missing.returncode == 1 and "404" in missing.stderr
        unknown_param = _cli("trigger", "train", "-p", "nope=1", url=url, token=TOKENS["admin"])
        assert unknown_param.returncode == 1 and "params.nope" in unknown_param.stderr
        everything = overview.stdout + detail.stdout + refused.stderr + daemon.log_text()
        for secret in SECRET_VALUES:
            assert secret not in everything
    finally:
        daemon.stop()


def test_listen_flag_starts_a_read_only_api(tmp_path: Path, make_git_remote: MakeGitRemote) -> None:
    remote = make_git_remote(files=API_SEED)
    state = tmp_path / "state"
    flags = ("--repo", str(remote.path), "--state-dir", str(state), "--listen", "127.0.0.1:0")
    env = daemon_env()
    env.pop("RECONCILER_CONFIG", None)
    daemon = DaemonProcess(tmp_path / "unused.yaml", state, tmp_path / "daemon.log", env)
    daemon.flags = flags
    daemon.start()
    try:
        url = f"http://127.0.0.1:{wait_for('the API to listen', lambda: _port(daemon))}"
        wait_for("a status answer", lambda: _cli("status", url=url).returncode == 0)
        refused = _cli("trigger", "train", url=url)
        assert refused.returncode == 1 and "read-only" in refused.stderr
    finally:
        daemon.stop()


def test_unreachable_daemon_is_a_clear_error() -> None:
    done = _cli("status", url="http://127.0.0.1:9")
    assert done.returncode == 1 and "cannot reach the daemon at http://127.0.0.1:9" in done.stderr
    bad = _cli("trigger", "x", "-p", "novalue", url="http://127.0.0.1:9")
    assert bad.returncode == 1 and "KEY=VALUE" in bad.stderr
