"""Diagnostics: the one record every check emits, and how it is printed.

A diagnostic names the file, line and column of the offending key or value, its severity
and the object it concerns, so a person can act on it without reading a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal

Severity = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in the specs, positioned at the node it concerns.

    ``path`` is relative to the root that was validated; ``line`` and ``col`` are 1-based.
    """

    path: str
    line: int
    col: int
    severity: Severity
    message: str
    kind: str | None = None
    name: str | None = None

    @property
    def object_ref(self) -> str | None:
        if self.kind and self.name:
            return f"{self.kind}/{self.name}"
        return self.kind or None

    def format(self) -> str:
        text = f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message}"
        ref = self.object_ref
        return f"{text} ({ref})" if ref else text

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "kind": self.kind,
            "name": self.name,
        }


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable order for output: by file, then position, then message."""
    return sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.col, d.severity, d.message))
