"""The daemon config: defaults, the file, the flags, and errors a person can act on."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from reconciler.daemon.config import (
    Config,
    ConfigError,
    config_from_flags,
    config_path,
    load_config,
    role_allows,
)

DIGEST = hashlib.sha256(b"ci-token").hexdigest()
EXAMPLE = Path(__file__).resolve().parents[2] / "systemd" / "reconciler.yaml"


def write(tmp_path: Path, text: str, name: str = "reconciler.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problem_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_defaults_serve_a_single_machine() -> None:
    config = Config()
    assert config.repo.url == "/srv/state-repo"
    assert config.repo.branch == "main"
    assert config.repo.paths == ["."]
    assert config.repo.poll_interval == "60s"
    assert config.repo.poll_interval_seconds == 60.0
    assert config.resync_interval_seconds == 300.0
    assert config.status.branch == "reconciler/status"
    assert config.status.path is None
    assert config.status.directory == "status"
    assert config.state_dir == Path("/var/lib/reconciler")
    assert config.secrets_dir == Path("/etc/reconciler/secrets")
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8080)
    assert config.api.write_mode == "commit"
    assert config.api.webhook_secret is None
    assert config.api.tokens == []
    assert config.clusters.max_concurrent_steps == 8
    assert config.projects.create_missing is False
    assert config.executor.step_retry_cap_seconds == 300.0
    assert config.logging.level == "info"


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_the_design_example_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        repo:
          url: /srv/state-repo
          branch: main
          paths: ["."]
          poll_interval: 60s
        resync_interval: 5m
        status:
          branch: reconciler/status
        state_dir: /var/lib/reconciler
        secrets_dir: /etc/reconciler/secrets
        api:
          listen: 0.0.0.0:8080
          write_mode: "off"
          webhook_secret: webhook-hmac
          tokens:
            - {{name: ci-bot, role: operator, sha256: "{DIGEST.upper()}"}}
        clusters:
          max_concurrent_steps: 4
        """,
    )
    config = load_config(path)
    assert config.api.webhook_secret == "webhook-hmac"
    assert config.api.tokens[0].role == "operator"
    assert config.api.tokens[0].sha256 == DIGEST  # normalised to lower case
    assert config.clusters.max_concurrent_steps == 4


def test_the_shipped_example_config_loads_with_the_unit_paths() -> None:
    config = load_config(EXAMPLE)
    assert config.state_dir == Path("/var/lib/reconciler")
    assert config.secrets_dir == Path("/etc/reconciler/secrets")


def test_off_is_a_word_not_a_boolean(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "api:\n  write_mode: off\n"))
    assert config.api.write_mode == "off"


def test_an_unknown_field_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "repo:\n  branch: main\n  pol_interval: 30s\n")
    message = problem_of(path)
    assert message.startswith(f"{path}:3:3: repo.pol_interval: unknown field 'pol_interval'")
    assert "poll_interval" in message  # the known fields are listed


def test_a_bad_duration_names_the_field_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "repo:\n  url: /srv/r\n  poll_interval: 60 seconds\n")
    message = problem_of(path)
    assert message.startswith(f"{path}:3:18: repo.poll_interval: invalid duration '60 seconds'")


@pytest.mark.parametrize("value", ["60", "0s"])
def test_a_duration_must_be_text_with_a_unit_and_positive(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"resync_interval: {value}\n")
    assert "resync_interval:" in problem_of(path)


def test_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "repo:\n  branch: main\n  branch: dev\n")
    assert problem_of(path) == f"{path}:3:3: duplicate key 'branch'"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        clusters:
          max_concurrent_steps: 0
        api:
          write_mode: sometimes
          tokens:
            - {name: ci, role: boss, sha256: "abc"}
        """,
    )
    message = problem_of(path)
    assert f"{path}:2:25: clusters.max_concurrent_steps:" in message
    assert f"{path}:4:15: api.write_mode:" in message
    assert "(got 'sometimes')" in message
    assert f"{path}:6:24: api.tokens[0].role:" in message
    assert "api.tokens[0].sha256: expected the SHA-256 hex digest" in message


def test_a_token_in_place_of_its_digest_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, 'api:\n  tokens:\n    - {name: a, role: admin, sha256: "hunter2"}\n')
    message = problem_of(path)
    assert "hunter2" not in message
    assert "never the token itself" in message


def test_listening_beyond_loopback_needs_tokens(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  listen: 0.0.0.0:8080\n")
    message = problem_of(path)
    assert message.startswith(f"{path}:2:11: api.listen: '0.0.0.0:8080' is not a loopback")
    with_token = write(
        tmp_path,
        f"api:\n  listen: 0.0.0.0:8080\n  tokens: [{{name: a, role: viewer, sha256: {DIGEST}}}]\n",
        "with-token.yaml",
    )
    assert load_config(with_token).api.host == "0.0.0.0"


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:9000", "[::1]:9000", "localhost:9000", "127.0.0.2:0"]
)
def test_loopback_addresses_need_no_tokens(listen: str) -> None:
    assert config_from_flags(repo="/srv/r", listen=listen).api.port in (9000, 0)


@pytest.mark.parametrize("listen", ["8080", "::1:8080", "host:http", "127.0.0.1:70000"])
def test_malformed_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"^command line: --listen: "):
        config_from_flags(repo="/srv/r", listen=listen)


def test_duplicate_token_names_and_digests_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        api:
          tokens:
            - {{name: a, role: viewer, sha256: {DIGEST}}}
            - {{name: a, role: admin, sha256: {DIGEST}}}
        """,
    )
    message = problem_of(path)
    assert "api.tokens[1].name: token name 'a' is already used by api.tokens[0]" in message
    assert "api.tokens[1].sha256: the same digest" in message


def test_status_on_the_watched_branch_needs_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, "status:\n  branch: main\n")
    assert "status.path: status.branch is the watched branch 'main'" in problem_of(path)
    ok = write(tmp_path, "status:\n  branch: main\n  path: status/\n", "ok.yaml")
    assert load_config(ok).status.directory == "status"


@pytest.mark.parametrize("branch", ["", "-x", "a..b", "has space", "ends/", "x.lock"])
def test_unusable_branch_names_are_refused(branch: str) -> None:
    with pytest.raises(ConfigError, match="--branch"):
        config_from_flags(repo="/srv/r", branch=branch)


@pytest.mark.parametrize("paths", ['["/abs"]', '["../up"]', "[]"])
def test_spec_roots_stay_inside_the_repo(tmp_path: Path, paths: str) -> None:
    assert "repo.paths" in problem_of(write(tmp_path, f"repo:\n  paths: {paths}\n"))


def test_webhook_secret_is_a_safe_secret_name(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  webhook_secret: ../etc/shadow\n")
    assert "api.webhook_secret: invalid secret name" in problem_of(path)


def test_a_removed_retry_base_is_an_unknown_field(tmp_path: Path) -> None:
    path = write(tmp_path, "executor:\n  step_retry_base: 10m\n")
    assert "executor.step_retry_base" in problem_of(path)


def test_relative_paths_are_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "repo:\n  url: state-repo\nstate_dir: state\nsecrets_dir: null\n")
    config = load_config(path)
    assert config.repo.url == str(tmp_path.resolve() / "state-repo")
    assert config.state_dir == tmp_path.resolve() / "state"
    assert config.secrets_dir is None


@pytest.mark.parametrize(
    "url", ["https://git.example.com/org/state.git", "git@github.com:org/state.git"]
)
def test_remote_urls_are_kept_as_written(url: str) -> None:
    assert config_from_flags(repo=url).repo.url == url


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problem_of(missing).startswith(f"{missing}: cannot read the config file")


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "expected a mapping of fields" in problem_of(write(tmp_path, "- repo\n"))


def test_flags_give_a_config_less_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = config_from_flags(repo="repo", branch="prod", state_dir="state", listen="127.0.0.1:0")
    assert config.repo.url == str(tmp_path.resolve() / "repo")
    assert config.repo.branch == "prod"
    assert config.state_dir == tmp_path.resolve() / "state"
    assert config.api.port == 0
    assert config.resync_interval == "5m"


def test_config_path_prefers_the_flag_then_the_environment() -> None:
    environ = {"RECONCILER_CONFIG": "/etc/from-env.yaml"}
    assert config_path("/etc/flag.yaml", environ=environ) == Path("/etc/flag.yaml")
    assert config_path(None, environ=environ) == Path("/etc/from-env.yaml")
    assert config_path(None, environ={}) is None


def test_roles_are_ordered() -> None:
    assert role_allows("admin", "editor")
    assert role_allows("operator", "operator")
    assert not role_allows("viewer", "operator")
