"""``${{ }}`` substitution in Workflow inputs, shared by validation and execution.

``${{ name }}`` takes a parameter (``spec.user_params`` or one given at execution time);
``${{ node_id.output_key }}`` takes an upstream node's output. Validation uses
:func:`references_in` to find the names; the executor uses :func:`substitute` to fill
them. A value that is exactly one placeholder keeps the type of what it takes (a list, a
number); a placeholder inside a longer string is rendered as text.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(
    r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_-]*))?\s*\}\}"
)
_ANY_OPENING = re.compile(r"\$\{\{")


@dataclasses.dataclass(frozen=True)
class Reference:
    """One placeholder: a parameter (``output`` is None) or a node's output."""

    name: str
    output: str | None
    text: str
    location: tuple[str | int, ...]

    @property
    def is_output(self) -> bool:
        return self.output is not None


class SubstitutionError(ValueError):
    """A placeholder that names nothing known at execution time."""


def references_in(value: Any, location: tuple[str | int, ...] = ()) -> Iterator[Reference]:
    """Every placeholder inside ``value`` (strings, lists and mappings, recursively)."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield Reference(match.group(1), match.group(2), match.group(0), location)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references_in(item, (*location, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from references_in(item, (*location, index))


def malformed_placeholders(value: Any) -> Iterator[str]:
    """Strings that open ``${{`` without forming a valid placeholder."""
    if isinstance(value, str):
        stripped = PLACEHOLDER.sub("", value)
        if _ANY_OPENING.search(stripped):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from malformed_placeholders(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from malformed_placeholders(item)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def substitute(
    value: Any,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
) -> Any:
    """Fill every placeholder in ``value``; raise SubstitutionError for an unknown name."""

    def lookup(name: str, output: str | None) -> Any:
        if output is None:
            if name not in params:
                raise SubstitutionError(f"unknown parameter '{name}' in ${{{{ {name} }}}}")
            return params[name]
        node_outputs = outputs.get(name)
        if node_outputs is None:
            raise SubstitutionError(f"'{name}' is not a finished upstream node")
        if output not in node_outputs:
            raise SubstitutionError(f"node '{name}' has no output '{output}'")
        return node_outputs[output]

    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return lookup(whole.group(1), whole.group(2))
        return PLACEHOLDER.sub(lambda m: _render(lookup(m.group(1), m.group(2))), value)
    if isinstance(value, Mapping):
        return {
            key: substitute(item, params=params, outputs=outputs) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [substitute(item, params=params, outputs=outputs) for item in value]
    return value
