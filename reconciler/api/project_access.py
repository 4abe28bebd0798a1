"""Project access: may this caller do this to objects of that Project.

One decision, :func:`authorize`, for every API write and action; the routes and the Git
writer only say which object and which action. The rules (docs/api.md, Projects):

- An object belongs to a Project through ``spec.project`` (Deployments and Workflows);
  a Project document belongs to itself. Every other object (Models, Clusters,
  Credentials, DeploymentTemplates), and one that names no project, follows the token
  role alone, as before.
- The token role stays the ceiling: a route still needs ``operator`` for an action and
  ``editor`` for a write. Inside a Project whose ``spec.permissions`` lists roles, the
  caller must also hold (through ``api.project_roles``, to its user or one of its
  groups) a role whose ``access`` grants the action. A Project with no permissions, or
  one the repo does not hold (``projects.create_missing``), does not narrow anything.
- A token of role ``admin`` may do everything in every Project (the way to fix a Project
  that locked everyone out).

The actions: ``execute`` starts, cancels and deprovisions runs of the Project's
Workflows (and cancels any run of its objects); ``deploy`` creates a Deployment in it;
``edit`` changes an object of it, or creates a Workflow in it; ``delete`` removes an
object from it (moving an object out is a delete there and a create in the other
Project); a Project's own document needs all of them (``full``). ``view`` grants no
change: reads are not narrowed per Project (the status branch is not either). A refusal
is a 403 that names the Project, the action, the roles the caller holds there and the
roles that would grant it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pydantic

from reconciler.api.auth import Caller
from reconciler.api.problems import Forbidden
from reconciler.core.diff import ObjectState
from reconciler.specs.project import ACTIONS, Action, Permission

FULL: Literal["full"] = "full"
Need = Action | Literal["full"]
"""An action, or ``full``: every action (what a Project's own document needs)."""
PROJECT_FIELD_KINDS = frozenset({"Deployment", "Workflow"})
"""Kinds that belong to the Project their ``spec.project`` names."""

ProjectSpecs = Callable[[str], Mapping[str, Any] | None]
"""A Project's ``spec`` by name, as the revision in question holds it (None: absent)."""


@dataclasses.dataclass(frozen=True)
class ProjectRules:
    """A Project's permissions as the revision in question holds them; ``present`` False
    when the repo has no such Project."""

    name: str
    permissions: tuple[Permission, ...] = ()
    present: bool = True

    @property
    def narrows(self) -> bool:
        """Whether objects of this Project need a Project role at all."""
        return self.present and bool(self.permissions)


def rules_of(name: str, spec: Mapping[str, Any] | None) -> ProjectRules:
    """The rules of Project ``name`` from its ``spec`` (None: no such Project)."""
    if spec is None:
        return ProjectRules(name, present=False)
    entries = spec.get("permissions") or []
    permissions: list[Permission] = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            permissions.append(Permission.model_validate(entry))
        except pydantic.ValidationError:
            continue  # a revision that holds it did not validate; never applied
    return ProjectRules(name, tuple(permissions))


def project_of(kind: str, name: str, document: Mapping[str, Any] | None) -> str | None:
    """The Project an object of ``kind`` with ``document`` belongs to, if any."""
    if document is None:
        return None
    if kind == "Project":
        return name
    if kind not in PROJECT_FIELD_KINDS:
        return None
    spec = document.get("spec")
    project = spec.get("project") if isinstance(spec, Mapping) else None
    return project if isinstance(project, str) and project else None


def _words(permission: Permission) -> str:
    access = permission.access
    return access if isinstance(access, str) else ", ".join(access)


def authorize(caller: Caller, need: Need, rules: ProjectRules) -> None:
    """Return if ``caller`` may ``need`` in the Project of ``rules``; else Forbidden
    naming the Project, the action, the roles held there and those that grant it."""
    if caller.role == "admin" or not rules.narrows:
        return
    wanted = frozenset(ACTIONS) if need == FULL else frozenset({need})
    held = caller.roles_in(rules.name)
    granted: set[str] = set()
    for permission in rules.permissions:
        if permission.role in held:
            granted |= permission.actions
    if wanted <= granted:
        return
    granting = [p for p in rules.permissions if wanted <= p.actions]
    holds = [p for p in rules.permissions if p.role in held]
    what = "change Project" if need == FULL else f"{need} objects of project"
    if holds:
        has = "; ".join(f"{p.role} ({_words(p)})" for p in holds)
        holding = f"its role there grants less: {has}"
    else:
        holding = "it holds no role there"
    undefined = sorted(held - {p.role for p in rules.permissions})
    if undefined:
        holding += (
            f" (it is granted {', '.join(undefined)}, which the Project's spec.permissions "
            "do not name)"
        )
    if granting:
        needs = " or ".join(f"{p.role} ({_words(p)})" for p in granting)
        lacking = (
            f"it needs role {needs} there, which the daemon config grants under "
            f"api.project_roles.{rules.name}"
        )
    else:
        lacking = (
            f"no role of the Project grants {need} (its permissions: "
            + "; ".join(f"{p.role} ({_words(p)})" for p in rules.permissions)
            + "); add one to spec.permissions, or ask an admin"
        )
    raise Forbidden(
        f"token {caller.name!r} may not {what} {rules.name!r}: {holding}; {lacking}",
        extra={
            "project": rules.name,
            "action": need,
            "roles_held": sorted(held),
            "roles_granting": [p.role for p in granting],
        },
    )


def write_needs(
    kind: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[str, Need]]:
    """What a write of object ``kind/name`` from document ``before`` (None: new) to
    ``after`` (None: removed) needs, per Project."""
    if kind == "Project":
        # Creating a Project is the token role's business; once it exists, changing or
        # removing it (its permissions) needs every action there.
        return [(name, FULL)] if before is not None else []
    old, new = project_of(kind, name, before), project_of(kind, name, after)
    create: Action = "deploy" if kind == "Deployment" else "edit"
    if before is not None and after is not None and old == new:
        return [(old, "edit")] if old is not None else []
    needs: list[tuple[str, Need]] = []
    if old is not None:
        needs.append((old, "delete"))
    if new is not None:
        needs.append((new, create))
    return needs


def authorize_write(
    caller: Caller,
    *,
    kind: str,
    name: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    projects: ProjectSpecs,
) -> None:
    """Forbidden unless ``caller`` may write object ``kind/name`` from ``before`` to
    ``after``; ``projects`` reads the Projects of the revision the write is built on."""
    for project, need in write_needs(kind, name, before, after):
        authorize(caller, need, rules_of(project, projects(project)))


def authorize_object(
    caller: Caller, need: Need, key: str, *, desired: Mapping[str, ObjectState]
) -> None:
    """Forbidden unless ``caller`` may ``need`` on object ``key`` (``kind/name``) as
    ``desired`` (the last valid revision the daemon loaded) holds it: what an action
    (a run, a cancel) acts on. An object ``desired`` lacks belongs to no Project."""
    kind, _, name = key.partition("/")
    state = desired.get(key)
    project = project_of(kind, name, state.document if state is not None else None)
    if project is None:
        return
    found = desired.get(f"Project/{project}")
    authorize(caller, need, rules_of(project, found.spec if found is not None else None))


def specs_by_project(objects: Sequence[Any]) -> ProjectSpecs:
    """A :data:`ProjectSpecs` over loaded spec objects (anything with kind, name, spec)."""
    found = {o.name: o.spec for o in objects if o.kind == "Project"}
    return found.get
