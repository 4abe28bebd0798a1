"""A validated spec document together with where it came from.

Rules report problems through :meth:`SpecObject.problem`, which positions the diagnostic
at the key or value the rule names, so every rule speaks in paths, never in lines.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler.core.diagnostics import Diagnostic, Severity
from reconciler.load.documents import RawDocument


@dataclasses.dataclass(frozen=True, eq=False)
class SpecObject:
    """One object of the repo: its kind and name, raw document and typed model."""

    kind: str
    name: str
    doc: RawDocument
    model: Any

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def path(self) -> str:
        return self.doc.path

    @property
    def spec(self) -> dict[str, Any]:
        value = self.doc.value.get("spec")
        return value if isinstance(value, dict) else {}

    def problem(
        self,
        path: Sequence[str | int],
        message: str,
        *,
        severity: Severity = "error",
        key: bool = False,
    ) -> Diagnostic:
        line, col = self.doc.locate(path, key=key)
        return Diagnostic(
            path=self.doc.path,
            line=line,
            col=col,
            severity=severity,
            message=message,
            kind=self.kind,
            name=self.name,
        )


def document_problem(
    doc: RawDocument,
    path: Sequence[str | int],
    message: str,
    *,
    kind: str | None = None,
    name: str | None = None,
    key: bool = False,
    severity: Severity = "error",
) -> Diagnostic:
    """A diagnostic for a document that did not become a SpecObject."""
    line, col = doc.locate(path, key=key)
    return Diagnostic(
        path=doc.path, line=line, col=col, severity=severity, message=message, kind=kind, name=name
    )


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
