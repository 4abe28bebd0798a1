"""Project: a group of Deployments and Workflows, and what each of its roles may do.

``access`` is a shorthand (``full``, ``view``) or an explicit list of actions. Who holds
a role is the daemon config's business (``api.project_roles``); what each action allows
through the API, and who is refused, is decided by :mod:`reconciler.api.project_access`
(docs/api.md, Projects): ``execute`` runs and cancels, ``deploy`` creates Deployments,
``edit`` changes objects, ``delete`` removes them, ``view`` changes nothing, ``full`` is
all of them and the Project's own document.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.common import NonEmptyStr, SpecModel
from reconciler.specs.envelope import Document

Action = Literal["view", "execute", "edit", "deploy", "delete"]
ACTIONS: tuple[Action, ...] = ("view", "execute", "edit", "deploy", "delete")
Access = Literal["full", "view"] | list[Action]


class Permission(SpecModel):
    role: NonEmptyStr
    access: Access = Field(
        description="full, view, or a list of actions: execute (run and cancel Workflows), "
        "deploy (create Deployments), edit (change objects), delete (remove them), view"
    )

    @field_validator("access", mode="wrap")
    @classmethod
    def _one_message(cls, value: object, handler: ValidatorFunctionWrapHandler) -> Access:
        choices = ", ".join(ACTIONS)
        try:
            access: Access = handler(value)
        except ValueError:
            raise PydanticCustomError(
                "access",
                f"access {value!r} is not 'full', 'view' or a list of actions ({choices})",
            ) from None
        if isinstance(access, list):
            if not access:
                raise PydanticCustomError(
                    "access", f"access lists no action: name at least one of {choices}"
                )
            repeated = sorted({a for a in access if access.count(a) > 1})
            if repeated:
                raise PydanticCustomError(
                    "access", f"access lists {', '.join(repeated)} more than once"
                )
        return access

    @property
    def actions(self) -> frozenset[Action]:
        """The actions ``access`` grants."""
        if self.access == "full":
            return frozenset(ACTIONS)
        if self.access == "view":
            return frozenset({"view"})
        return frozenset(self.access)


class ProjectSpec(SpecModel):
    description: str = ""
    permissions: list[Permission] = Field(default_factory=list)

    @field_validator("permissions")
    @classmethod
    def _one_entry_per_role(cls, permissions: list[Permission]) -> list[Permission]:
        roles = [p.role for p in permissions]
        repeated = sorted({r for r in roles if roles.count(r) > 1})
        if repeated:
            raise PydanticCustomError(
                "permissions", f"permissions name role {', '.join(repeated)} more than once"
            )
        return permissions


class ProjectDocument(Document):
    """A Project document."""

    kind: Literal["Project"]
    spec: ProjectSpec
