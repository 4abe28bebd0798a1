"""The envelope every document shares: ``apiVersion``, ``kind``, ``metadata``, ``spec``.

Each kind's module subclasses :class:`Document`, narrowing ``kind`` to its own literal and
``spec`` to its own model, so code that handles any document reads the name and labels the
same way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.common import ObjectName, SpecModel

API_VERSION = "reconciler/v1"

PRUNE_ANNOTATION = "reconciler/prune"
"""``reconciler/prune: disabled`` keeps an object on its cluster when it leaves Git."""


class Metadata(SpecModel):
    """Identity of a document: ``kind/name`` is unique in a repo."""

    name: ObjectName
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def prune_disabled(self) -> bool:
        return self.annotations.get(PRUNE_ANNOTATION) == "disabled"


class Document(SpecModel):
    """Fields common to every kind; subclasses narrow ``kind`` and ``spec``."""

    apiVersion: Literal["reconciler/v1"]
    kind: str
    metadata: Metadata
    spec: SpecModel

    @field_validator("apiVersion", mode="before")
    @classmethod
    def _known_api_version(cls, value: object) -> object:
        if value != API_VERSION:
            raise PydanticCustomError(
                "api_version", f"apiVersion must be {API_VERSION!r}, got {value!r}"
            )
        return value

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def ref(self) -> str:
        """``kind/name``, the key that is unique in a repo."""
        return f"{self.kind}/{self.metadata.name}"
