"""Secret lookup: the order of sources, name safety, and what is remembered for redaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.drivers.secrets import (
    InvalidSecretName,
    SecretNotFound,
    SecretResolver,
    SecretState,
    SecretUnreadable,
    env_var_for,
)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    credentials = tmp_path / "credentials"
    secrets = tmp_path / "secrets"
    credentials.mkdir()
    secrets.mkdir()
    return credentials, secrets


def test_credentials_directory_wins_over_secrets_dir_and_environment(
    dirs: tuple[Path, Path],
) -> None:
    credentials, secrets = dirs
    (credentials / "hf-token").write_text("from-credentials\n")
    (secrets / "hf-token").write_text("from-secrets-dir\n")
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), "RECONCILER_SECRET_HF_TOKEN": "env"}
    assert SecretResolver(secrets, environ=environ).resolve("hf-token") == "from-credentials"


def test_secrets_dir_wins_over_environment(dirs: tuple[Path, Path]) -> None:
    credentials, secrets = dirs
    (secrets / "hf-token").write_text("from-secrets-dir")
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), "RECONCILER_SECRET_HF_TOKEN": "env"}
    assert SecretResolver(secrets, environ=environ).resolve("hf-token") == "from-secrets-dir"


def test_environment_is_the_last_resort_with_upper_case_and_underscores() -> None:
    resolver = SecretResolver(None, environ={"RECONCILER_SECRET_OPENAI_API_KEY": "sk-env"})
    assert resolver.resolve("openai-api-key") == "sk-env"
    assert env_var_for("openai-api-key") == "RECONCILER_SECRET_OPENAI_API_KEY"


def test_explicit_credentials_directory_overrides_the_environment(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    credentials, secrets = dirs
    other = tmp_path / "other"
    other.mkdir()
    (other / "k").write_text("explicit")
    (credentials / "k").write_text("from-env-dir")
    resolver = SecretResolver(
        secrets,
        credentials_directory=str(other),
        environ={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert resolver.resolve("k") == "explicit"


def test_exactly_one_trailing_newline_is_stripped(dirs: tuple[Path, Path]) -> None:
    _, secrets = dirs
    (secrets / "two").write_bytes(b"value\n\n")
    (secrets / "crlf").write_bytes(b"value\r\n")
    (secrets / "none").write_bytes(b"  value ")
    resolver = SecretResolver(secrets, environ={})
    assert resolver.resolve("two") == "value\n"
    assert resolver.resolve("crlf") == "value"
    assert resolver.resolve("none") == "  value "


def test_missing_secret_names_every_place_looked(dirs: tuple[Path, Path]) -> None:
    credentials, secrets = dirs
    resolver = SecretResolver(secrets, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    with pytest.raises(SecretNotFound) as caught:
        resolver.resolve("webhook-hmac")
    text = str(caught.value)
    assert "'webhook-hmac'" in text
    assert str(credentials / "webhook-hmac") in text
    assert str(secrets / "webhook-hmac") in text
    assert "RECONCILER_SECRET_WEBHOOK_HMAC" in text
    assert caught.value.name == "webhook-hmac"


def test_missing_secret_says_when_credentials_directory_is_unset() -> None:
    with pytest.raises(SecretNotFound, match="CREDENTIALS_DIRECTORY is not set"):
        SecretResolver(None, environ={}).resolve("x")


@pytest.mark.parametrize("name", ["", "..", "../escape", "a/b", "/etc/passwd", ".hidden", "a..b"])
def test_names_that_could_leave_the_folders_are_refused(dirs: tuple[Path, Path], name: str) -> None:
    _, secrets = dirs
    (secrets.parent / "escape").write_text("outside")
    resolver = SecretResolver(secrets, environ={})
    with pytest.raises(InvalidSecretName):
        resolver.resolve(name)
    with pytest.raises(InvalidSecretName):
        resolver.exists(name)


def test_a_folder_in_place_of_a_secret_is_unreadable_not_missing(dirs: tuple[Path, Path]) -> None:
    _, secrets = dirs
    (secrets / "kubeconfig").mkdir()
    with pytest.raises(SecretUnreadable, match="kubeconfig"):
        SecretResolver(secrets, environ={}).resolve("kubeconfig")


def test_binary_secret_is_refused_without_showing_it(dirs: tuple[Path, Path]) -> None:
    _, secrets = dirs
    (secrets / "blob").write_bytes(b"\xff\xfesecret")
    with pytest.raises(SecretUnreadable) as caught:
        SecretResolver(secrets, environ={}).resolve("blob")
    assert "xff" not in str(caught.value)
    assert "'blob'" in str(caught.value)


def test_exists_checks_every_source_without_remembering_values(dirs: tuple[Path, Path]) -> None:
    credentials, secrets = dirs
    (credentials / "a").write_text("1")
    (secrets / "b").write_text("2")
    resolver = SecretResolver(
        secrets,
        environ={"CREDENTIALS_DIRECTORY": str(credentials), "RECONCILER_SECRET_C": "3"},
    )
    assert [resolver.exists(n) for n in ("a", "b", "c", "d")] == [True, True, True, False]
    assert resolver.known_values() == frozenset()


def test_known_values_hold_every_resolved_non_empty_value(dirs: tuple[Path, Path]) -> None:
    _, secrets = dirs
    (secrets / "a").write_text("alpha-value\n")
    (secrets / "empty").write_text("")
    resolver = SecretResolver(secrets, environ={"RECONCILER_SECRET_B": "beta-value"})
    assert resolver.resolve("empty") == ""
    resolver.resolve("a")
    resolver.resolve("b")
    assert resolver.known_values() == {"alpha-value", "beta-value"}


def _unreadable(path: Path) -> None:
    path.write_text("value-nobody-may-read")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: nothing to prove here
        pytest.skip("running as a user that can read a file with mode 000")


@pytest.mark.parametrize("kind", ["folder", "binary", "unreadable", "pipe"])
def test_exists_and_resolve_agree_on_a_secret_that_cannot_be_used(
    dirs: tuple[Path, Path], kind: str
) -> None:
    _, secrets = dirs
    target = secrets / "kubeconfig"
    if kind == "folder":
        target.mkdir()
    elif kind == "binary":
        target.write_bytes(b"\xff\xfe\x00binary")
    elif kind == "unreadable":
        _unreadable(target)
    else:
        os.mkfifo(target)  # reading it would block forever: it must be refused unread
    resolver = SecretResolver(secrets, environ={"RECONCILER_SECRET_KUBECONFIG": "from-env"})
    verdict = resolver.lookup("kubeconfig")
    assert verdict.state is SecretState.UNREADABLE
    assert verdict.where == str(target)
    assert "'kubeconfig'" in verdict.problem and "from-env" not in verdict.problem
    assert resolver.exists("kubeconfig") is False
    with pytest.raises(SecretUnreadable) as caught:
        resolver.resolve("kubeconfig")
    assert str(caught.value) == verdict.problem
    assert resolver.known_values() == frozenset()


def test_lookup_reports_where_a_secret_was_found_without_remembering_it(
    dirs: tuple[Path, Path],
) -> None:
    _, secrets = dirs
    (secrets / "a").write_text("alpha-value\n")
    resolver = SecretResolver(secrets, environ={"RECONCILER_SECRET_B": "beta-value"})
    found_file, found_env, missing = (resolver.lookup(n) for n in ("a", "b", "c"))
    assert (found_file.state, found_file.where) == (SecretState.FOUND, str(secrets / "a"))
    assert (found_env.state, found_env.where) == (SecretState.FOUND, "$RECONCILER_SECRET_B")
    assert missing.state is SecretState.NOT_FOUND
    assert "RECONCILER_SECRET_C" in missing.problem
    assert found_file.problem == found_env.problem == ""
    assert resolver.known_values() == frozenset()
    assert resolver.exists("a") and resolver.exists("b") and not resolver.exists("c")
