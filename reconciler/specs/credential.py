"""Credential: a provider's secret, named (never held) so that specs can refer to it.

The value lives in the daemon host's secret store under ``secret``; see docs/operations.md, Secrets.
A cloud provider's credential may name the ``base_url`` it is used at (a private
endpoint, a proxy); the cloud steps and the gateway send requests there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.specs.common import HttpUrl, NonEmptyStr, SecretName, SpecModel
from reconciler.specs.envelope import Document


class CredentialSpec(SpecModel):
    provider: NonEmptyStr = Field(description="e.g. openai, hugging_face")
    secret: SecretName
    base_url: HttpUrl | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # absent stays absent: no spec hash moves
        description="a cloud provider's OpenAI-compatible base URL for this credential (a "
        "private endpoint or a proxy); default: the provider's public one. https, or http "
        "on a loopback address",
    )


class CredentialDocument(Document):
    """A Credential document."""

    kind: Literal["Credential"]
    spec: CredentialSpec
