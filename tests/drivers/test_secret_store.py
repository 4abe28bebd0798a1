"""SecretResolver.store: values given through the API land in the secrets dir, 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from reconciler.drivers.secrets import InvalidSecretName, SecretNotStored, SecretResolver


def _resolver(folder: Path | None) -> SecretResolver:
    return SecretResolver(folder, credentials_directory="", environ={})


def test_a_stored_secret_resolves_and_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    resolver = _resolver(folder)
    path = resolver.store("cluster-a-kubeconfig", "apiVersion: v1\n")
    assert path == folder / "cluster-a-kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert resolver.resolve("cluster-a-kubeconfig") == "apiVersion: v1"
    assert "apiVersion: v1\n" in resolver.known_values()
    assert [p.name for p in folder.iterdir()] == ["cluster-a-kubeconfig"]


def test_another_value_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    resolver = _resolver(tmp_path)
    resolver.store("token", "v-one-7f3")
    resolver.store("token", "v-one-7f3")  # the same value again is fine...
    resolver.store("token", "v-one-7f3\n")  # ...as read back, a final newline aside
    with pytest.raises(SecretNotStored, match="already exists") as caught:
        resolver.store("token", "v-two-9c1")
    assert "v-one-7f3" not in str(caught.value) and "v-two-9c1" not in str(caught.value)
    assert resolver.resolve("token") == "v-one-7f3"
    resolver.store("token", "v-two-9c1", replace=True)
    assert resolver.resolve("token") == "v-two-9c1"


def test_no_secrets_dir_and_bad_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretNotStored, match="no secrets_dir"):
        _resolver(None).store("token", "value")
    with pytest.raises(InvalidSecretName):
        _resolver(tmp_path).store("../escape", "value")
    assert not (tmp_path.parent / "escape").exists()


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SecretNotStored, match="cannot be written"):
        _resolver(blocker).store("token", "value")
