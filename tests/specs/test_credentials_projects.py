"""Credentials name secrets; Projects grant access by role."""

from __future__ import annotations

import pytest

from reconciler.specs import parse_document
from reconciler.specs.project import ProjectDocument
from tests.specs.spec_examples import DELETE, changed, errors_of, example

CREDENTIAL = example("Credential", "openai-prod")
PROJECT = example("Project", "research")


def test_credential_needs_provider_and_secret() -> None:
    assert errors_of(changed(CREDENTIAL, "spec.secret", DELETE)) == [
        ("spec.secret", "Field required")
    ]


@pytest.mark.parametrize("secret", ["sk-live abc", "../etc/passwd", "-x", ""])
def test_credential_secret_is_a_name(secret: str) -> None:
    assert errors_of(changed(CREDENTIAL, "spec.secret", secret)) == [
        (
            "spec.secret",
            f"secret {secret!r} is not a secret name: use letters, digits, '-', '_' or '.', "
            "1-253 chars, starting and ending with a letter or digit (the value itself "
            "never goes in Git)",
        )
    ]


def test_project_access_shorthands_and_lists() -> None:
    parsed = parse_document(PROJECT)
    assert isinstance(parsed, ProjectDocument)
    by_role = {p.role: p.actions for p in parsed.spec.permissions}
    assert by_role["admin"] == {"view", "execute", "edit", "deploy", "delete"}
    assert by_role["data-scientist"] == {"execute", "edit"}
    assert by_role["viewer"] == {"view"}


@pytest.mark.parametrize("access", ["edit", ["execute", "own"], 3])
def test_project_access_that_is_neither_is_rejected(access: object) -> None:
    assert errors_of(changed(PROJECT, "spec.permissions.1.access", access)) == [
        (
            "spec.permissions.1.access",
            f"access {access!r} is not 'full', 'view' or a list of actions "
            "(view, execute, edit, deploy, delete)",
        )
    ]


def test_project_access_list_is_not_empty_and_has_no_repeats() -> None:
    assert errors_of(changed(PROJECT, "spec.permissions.1.access", [])) == [
        (
            "spec.permissions.1.access",
            "access lists no action: name at least one of view, execute, edit, deploy, delete",
        )
    ]
    assert errors_of(changed(PROJECT, "spec.permissions.1.access", ["edit", "edit"])) == [
        ("spec.permissions.1.access", "access lists edit more than once")
    ]


def test_project_roles_are_listed_once() -> None:
    document = changed(PROJECT, "spec.permissions.2.role", "admin")
    assert errors_of(document) == [
        ("spec.permissions", "permissions name role admin more than once")
    ]
