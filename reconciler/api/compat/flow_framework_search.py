"""``_search`` of the flow framework: the part of the query language its clients send.

That API hands the body to a search engine; here the templates are few and in memory,
so a small matcher over each template's fields answers it: ``match_all``, ``match``
(every word of the text appears in the field, case-insensitively), ``term`` and
``terms`` (the exact value), ``prefix``, ``ids``, and ``bool`` (``must``, ``filter``,
``should`` with ``minimum_should_match``, ``must_not``), with ``from`` and ``size``. A
query clause or body field outside that is a 400 naming it, never read as "match all".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.api.problems import BadRequest

INDEX = ".plugins-flow-framework-templates"
"""The index name that API's hits carry in ``_index``."""
BODY_FIELDS = ("query", "from", "size")
DEFAULT_SIZE = 10
MAX_SIZE = 10_000

Matcher = Callable[["Hit"], bool]


@dataclasses.dataclass(frozen=True)
class Hit:
    """One searchable template: its id and ``_source``."""

    workflow_id: str
    source: Mapping[str, Any]

    def values(self, field: str) -> list[str]:
        """The field's values as text (``_id`` and ``workflow_id`` are the id)."""
        if field in ("_id", "workflow_id"):
            return [self.workflow_id]
        value: Any = self.source
        for part in field.removesuffix(".keyword").split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        return [str(item) for item in items if not isinstance(item, Mapping | list)]


def _single(clause: str, body: object) -> tuple[str, Any]:
    if not isinstance(body, Mapping) or len(body) != 1:
        raise BadRequest(f"query.{clause}: give exactly one field, as {{field: value}}")
    field, value = next(iter(body.items()))
    return str(field), value


def _text(clause: str, value: Any, key: str | None) -> str:
    """A clause's string, given as it is or (with ``key``) as ``{key: string}``."""
    if key is not None and isinstance(value, Mapping):
        if set(value) != {key}:
            raise BadRequest(f"query.{clause}: the field's object takes exactly {key!r}")
        value = value[key]
    if not isinstance(value, str):
        raise BadRequest(f"query.{clause}: the field's value must be a string")
    return value


def _match(body: object) -> Matcher:
    field, value = _single("match", body)
    words = _text("match", value, "query").lower().split()
    return lambda hit: any(
        all(word in text.lower() for word in words) for text in hit.values(field)
    )


def _term(body: object) -> Matcher:
    field, value = _single("term", body)
    wanted = _text("term", value, "value")
    return lambda hit: wanted in hit.values(field)


def _terms(body: object) -> Matcher:
    field, value = _single("terms", body)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("query.terms: the field's value must be a list of strings")
    wanted = set(value)
    return lambda hit: bool(wanted & set(hit.values(field)))


def _prefix(body: object) -> Matcher:
    field, value = _single("prefix", body)
    start = _text("prefix", value, "value")
    return lambda hit: any(text.startswith(start) for text in hit.values(field))


def _ids(body: object) -> Matcher:
    values = body.get("values") if isinstance(body, Mapping) and set(body) == {"values"} else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadRequest("query.ids: give exactly {values: [id, ...]} (strings)")
    wanted = set(values)
    return lambda hit: hit.workflow_id in wanted


def _match_all(body: object) -> Matcher:
    if body != {}:
        raise BadRequest("query.match_all: takes an empty object")
    return lambda hit: True


def _clauses(name: str, value: object) -> list[Matcher]:
    items = value if isinstance(value, list) else [value]
    return [compile_query(item, where=f"bool.{name}") for item in items]


def _bool(body: object) -> Matcher:
    if not isinstance(body, Mapping):
        raise BadRequest("query.bool: must be an object")
    unknown = sorted(set(body) - {"must", "filter", "should", "must_not", "minimum_should_match"})
    if unknown:
        raise BadRequest(f"query.bool.{unknown[0]}: not supported here")
    must = _clauses("must", body.get("must", [])) + _clauses("filter", body.get("filter", []))
    should = _clauses("should", body.get("should", []))
    must_not = _clauses("must_not", body.get("must_not", []))
    minimum = whole(body.get("minimum_should_match", 1 if should and not must else 0))
    if minimum is None or minimum < 0:
        raise BadRequest("query.bool.minimum_should_match: must be a whole number")

    def matches(hit: Hit) -> bool:
        return (
            all(m(hit) for m in must)
            and not any(m(hit) for m in must_not)
            and sum(1 for m in should if m(hit)) >= minimum
        )

    return matches


_CLAUSES: Mapping[str, Callable[[object], Matcher]] = {
    "match_all": _match_all,
    "match": _match,
    "term": _term,
    "terms": _terms,
    "prefix": _prefix,
    "ids": _ids,
    "bool": _bool,
}


def compile_query(query: object, *, where: str = "query") -> Matcher:
    """A matcher for one query clause; 400 for one this module does not know."""
    if not isinstance(query, Mapping) or len(query) != 1:
        raise BadRequest(f"{where}: a query clause is an object with one key, e.g. match_all")
    clause, body = next(iter(query.items()))
    build = _CLAUSES.get(str(clause))
    if build is None:
        raise BadRequest(
            f"{where}.{clause}: this query clause is not supported (supported: "
            f"{', '.join(_CLAUSES)})"
        )
    return build(body)


def whole(value: object) -> int | None:
    """``value`` as a whole number (JSON's 3 and 3.0 alike), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _count(body: Mapping[str, Any], name: str, default: int) -> int:
    value = whole(body.get(name, default))
    if value is None or not 0 <= value <= MAX_SIZE:
        raise BadRequest(f"{name}: must be a whole number from 0 to {MAX_SIZE}")
    return value


def search(body: Mapping[str, Any], hits: Sequence[Hit], *, took_ms: int) -> dict[str, Any]:
    """The search response of that API for ``body`` over ``hits``."""
    unknown = sorted(set(body) - set(BODY_FIELDS))
    if unknown:
        raise BadRequest(f"{unknown[0]}: not supported here (a search takes query, from, size)")
    matcher = compile_query(body.get("query", {"match_all": {}}))
    start = _count(body, "from", 0)
    size = _count(body, "size", DEFAULT_SIZE)
    found = [hit for hit in hits if matcher(hit)]
    page = found[start : start + size]
    return {
        "took": took_ms,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": len(found), "relation": "eq"},
            "max_score": 1.0 if page else None,
            "hits": [
                {
                    "_index": INDEX,
                    "_id": hit.workflow_id,
                    "_score": 1.0,
                    "_source": dict(hit.source),
                }
                for hit in page
            ],
        },
    }
