"""The spec kinds by name, without their models.

A command that only names kinds (``reconciler status deployment/x`` matching a kind
without regard to case) imports this instead of :mod:`reconciler.specs.registry`, which
builds every kind's pydantic model (~0.25 s of CPU at each start).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Kind = Literal[
    "Credential", "Project", "Cluster", "DeploymentTemplate", "Model", "Deployment", "Workflow"
]

KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
"""Every kind, in dependency order: an object only refers to kinds before its own."""
