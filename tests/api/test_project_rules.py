"""The Project access rules as plain values: what each write needs, who is refused and
what the refusal says, and the config keys that grant roles (with their errors)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api import project_access as access
from reconciler.api.auth import TokenBook
from reconciler.api.problems import Forbidden
from reconciler.daemon.config import ConfigError, load_config

SEED_PERMISSIONS = {
    "permissions": [
        {"role": "admin", "access": "full"},
        {"role": "data-scientist", "access": ["execute", "edit"]},
        {"role": "viewer", "access": "view"},
    ]
}


NO_PROJECT = "-"


def _doc(kind: str, project: str | None) -> dict[str, Any] | None:
    """None: no document (created or deleted); NO_PROJECT: a document naming no project."""
    if project is None:
        return None
    spec = {"project": project} if project != NO_PROJECT else {}
    return {"kind": kind, "metadata": {"name": "x"}, "spec": spec}


@pytest.mark.parametrize(
    ("kind", "before", "after", "needs"),
    [
        ("Deployment", None, "p", [("p", "deploy")]),
        ("Workflow", None, "p", [("p", "edit")]),
        ("Deployment", "p", "p", [("p", "edit")]),
        ("Deployment", "p", None, [("p", "delete")]),
        ("Deployment", "p", "q", [("p", "delete"), ("q", "deploy")]),
        ("Workflow", "p", "q", [("p", "delete"), ("q", "edit")]),
        ("Deployment", NO_PROJECT, "q", [("q", "deploy")]),
        ("Deployment", "p", NO_PROJECT, [("p", "delete")]),
        ("Deployment", NO_PROJECT, NO_PROJECT, []),
        ("Model", "p", "q", []),
    ],
)
def test_what_a_write_needs(
    kind: str, before: str | None, after: str | None, needs: list[tuple[str, str]]
) -> None:
    assert access.write_needs(kind, "x", _doc(kind, before), _doc(kind, after)) == needs


def test_a_project_document_needs_every_action_once_it_exists() -> None:
    project = {"kind": "Project", "metadata": {"name": "p"}, "spec": {}}
    assert access.write_needs("Project", "p", project, project) == [("p", "full")]
    assert access.write_needs("Project", "p", project, None) == [("p", "full")]
    assert access.write_needs("Project", "p", None, project) == []


def _caller(role: str, **grants: dict[str, list[str]]) -> Any:
    from reconciler.daemon.config import ApiToken, RoleGrant

    token = ApiToken(name="alice", role=role, sha256="a" * 64, groups=["team"])  # type: ignore[arg-type]
    table = {p: {r: RoleGrant(users=u) for r, u in roles.items()} for p, roles in grants.items()}
    book = TokenBook([token], grants=table)
    return _found(book)


def _found(book: TokenBook) -> Any:
    (entry,) = book._entries
    return entry[1]


def test_refusals_name_the_project_the_roles_held_and_the_roles_that_grant() -> None:
    rules = access.rules_of("research", SEED_PERMISSIONS)
    scientist = _caller("editor", research={"data-scientist": ["alice"]})
    access.authorize(scientist, "edit", rules)
    access.authorize(scientist, "execute", rules)
    with pytest.raises(Forbidden) as refused:
        access.authorize(scientist, "delete", rules)
    assert refused.value.detail == (
        "token 'alice' may not delete objects of project 'research': its role there grants "
        "less: data-scientist (execute, edit); it needs role admin (full) there, which the "
        "daemon config grants under api.project_roles.research"
    )
    viewer = _caller("editor", research={"viewer": ["alice"]})
    with pytest.raises(Forbidden) as refused:
        access.authorize(viewer, "edit", rules)
    assert "viewer (view)" in refused.value.detail
    assert "admin (full) or data-scientist (execute, edit)" in refused.value.detail
    with pytest.raises(Forbidden) as refused:
        access.authorize(scientist, "full", rules)
    assert refused.value.detail.startswith("token 'alice' may not change Project 'research'")


def test_a_granted_role_the_project_does_not_name_is_said() -> None:
    rules = access.rules_of("research", SEED_PERMISSIONS)
    typo = _caller("editor", research={"data-scientst": ["alice"]})
    with pytest.raises(Forbidden) as refused:
        access.authorize(typo, "edit", rules)
    assert "it holds no role there (it is granted data-scientst, which the Project's " in (
        refused.value.detail
    )


def test_what_does_not_narrow() -> None:
    nobody = _caller("editor")
    access.authorize(nobody, "delete", access.rules_of("open", {"permissions": []}))
    access.authorize(nobody, "delete", access.rules_of("implicit", None))
    access.authorize(_caller("admin"), "full", access.rules_of("research", SEED_PERMISSIONS))
    only_view = access.rules_of("ro", {"permissions": [{"role": "viewer", "access": "view"}]})
    with pytest.raises(Forbidden) as refused:
        access.authorize(_caller("editor", ro={"viewer": ["alice"]}), "edit", only_view)
    assert "no role of the Project grants edit" in refused.value.detail


def test_groups_grant_roles() -> None:
    from reconciler.daemon.config import ApiToken, RoleGrant

    token = ApiToken(name="bob", role="editor", sha256="b" * 64, groups=["ml-team"])
    grant = RoleGrant(groups=["ml-team"])
    book = TokenBook([token], grants={"research": {"data-scientist": grant}})
    assert _found(book).roles_in("research") == frozenset({"data-scientist"})
    book.replace([token], grants={})
    assert _found(book).roles_in("research") == frozenset()


def _config(tmp_path: Path, api: dict[str, Any]) -> Path:
    path = tmp_path / "reconciler.yaml"
    path.write_text(yaml.safe_dump({"api": api}))
    return path


def test_grants_must_name_known_users_and_groups(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"t").hexdigest()
    api = {
        "tokens": [{"name": "alice", "role": "editor", "sha256": digest, "groups": ["ml"]}],
        "project_roles": {
            "research": {"admin": {"users": ["bob"]}, "data-scientist": {"groups": ["ml", "ops"]}},
            "billing": {"owner": {}},
        },
    }
    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, api))
    found = {p.field: p.message for p in refused.value.problems}
    assert found == {
        "api.project_roles.research.admin.users[0]": (
            "user 'bob' is no api.tokens entry's name (names: alice)"
        ),
        "api.project_roles.research.data-scientist.groups[1]": (
            "group 'ops' is in no api.tokens entry's groups (groups: ml)"
        ),
        "api.project_roles.billing.owner": (
            "the grant names no users and no groups: add some or remove the role"
        ),
    }
    api["project_roles"] = {"Research": {"admin": {"users": ["alice"]}}}
    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, api))
    assert "'Research' is not a Project name" in str(refused.value)
    api["project_roles"] = {"research": {"admin": {"users": ["alice"]}}}
    config = load_config(_config(tmp_path, api))
    assert config.api.project_roles["research"]["admin"].users == ["alice"]
