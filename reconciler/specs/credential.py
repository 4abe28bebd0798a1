"""Credential: a provider's secret, named (never held) so that specs can refer to it.

The value lives in the daemon host's secret store under ``secret``; see docs/operations.md, Secrets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.specs.common import NonEmptyStr, SecretName, SpecModel
from reconciler.specs.envelope import Document


class CredentialSpec(SpecModel):
    provider: NonEmptyStr = Field(description="e.g. openai, hugging_face")
    secret: SecretName


class CredentialDocument(Document):
    """A Credential document."""

    kind: Literal["Credential"]
    spec: CredentialSpec
