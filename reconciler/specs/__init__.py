"""Spec kinds as pydantic models, one module per kind.

Entry points: :func:`parse_document` (one parsed YAML document -> its kind's model),
:data:`KINDS` (dependency order), :func:`kind_plural`, :data:`DOCUMENT_MODELS`.
"""

from reconciler.specs.registry import (
    DOCUMENT_MODELS,
    KINDS,
    Kind,
    SpecDocument,
    kind_plural,
    parse_document,
)

__all__ = ["DOCUMENT_MODELS", "KINDS", "Kind", "SpecDocument", "kind_plural", "parse_document"]
