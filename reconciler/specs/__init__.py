"""Spec kinds as pydantic models, one module per kind.

Entry points: :func:`parse_document` (one parsed YAML document -> its kind's model),
:data:`KINDS` (dependency order), :func:`kind_plural`, :data:`DOCUMENT_MODELS`.

The names are read from :mod:`reconciler.specs.registry` on first use, not when the
package is imported: importing :mod:`reconciler.specs.kinds` alone must not build every
kind's model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.specs.registry import (
        DOCUMENT_MODELS,
        KINDS,
        Kind,
        SpecDocument,
        kind_plural,
        parse_document,
    )

__all__ = ["DOCUMENT_MODELS", "KINDS", "Kind", "SpecDocument", "kind_plural", "parse_document"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("reconciler.specs.registry"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
