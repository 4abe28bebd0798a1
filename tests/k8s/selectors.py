"""Label and field selectors of list and watch requests, parsed as the real server does.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``,
``a notin (x,y)``, joined by commas. Field selectors: ``metadata.name`` and
``metadata.namespace`` with ``=``, ``==`` or ``!=`` (what these kinds support).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector the real server would answer 400 Bad Request for."""


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


_SET = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")
_EXISTS = re.compile(r"^(!?)([A-Za-z0-9./_-]+)$")


def label_matcher(text: str | None) -> Matcher:
    tests: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(text or ""):
        if match := _SET.match(part):
            key, op, raw = match.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif match := _EQ.match(part):
            key, op, value = match.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif match := _EXISTS.match(part):
            negate, key = match.groups()
            if negate:
                tests.append(lambda labels, k=key: k not in labels)
            else:
                tests.append(lambda labels, k=key: k in labels)
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(test(labels) for test in tests)

    return matches


def field_matcher(text: str | None) -> Matcher:
    tests: list[Matcher] = []
    for part in _split(text or ""):
        match = _EQ.match(part)
        if not match or match.group(1) not in {"metadata.name", "metadata.namespace"}:
            raise SelectorError(f'field label not supported: "{part}"')
        field, op, value = match.groups()
        attr = field.split(".", 1)[1]
        if op == "!=":
            tests.append(lambda o, a=attr, v=value: (o.get("metadata") or {}).get(a) != v)
        else:
            tests.append(lambda o, a=attr, v=value: (o.get("metadata") or {}).get(a) == v)
    return lambda obj: all(test(obj) for test in tests)
