"""Every answer the API tests get, checked against the OpenAPI document the API serves.

``AnswerCheck.check`` finds the operation a request reached (method and path template),
and fails when the answer's status is not one the document gives that operation, when
its media type is not one it lists, or when its body does not validate against the
schema for that status and media type. A request body the server accepted (2xx) must
validate against the operation's request schema too, so a check in a handler that is
looser than the document is caught. Unknown routes and methods answer with a problem
document, which is checked as well. What was seen is kept, so a test can tell which
operations it exercised.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from reconciler.api import openapi

_PARAMETER = re.compile(r"\{([^}]+)\}")
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    """The path template (or the path itself where no route matched)."""
    status: int


class AnswerMismatch(AssertionError):
    """An answer (or an accepted request) that the document does not allow."""


def _path_templates(document: Mapping[str, Any]) -> list[tuple[re.Pattern[str], str, int]]:
    """(regex, template, literal length) for each documented path template."""
    templates: list[tuple[re.Pattern[str], str, int]] = []
    for template, item in document["paths"].items():
        patterns = {
            p["name"]: p["schema"].get("pattern", "^[^/]+$").strip("^$")
            for operation in item.values()
            for p in operation.get("parameters", [])
            if p["in"] == "path"
        }
        regex = ""
        last = 0
        for found in _PARAMETER.finditer(template):
            regex += re.escape(template[last : found.start()])
            regex += f"(?:{patterns.get(found.group(1), '[^/]+')})"
            last = found.end()
        regex += re.escape(template[last:])
        literal = len(_PARAMETER.sub("", template))
        templates.append((re.compile(regex), template, literal))
    return templates


@functools.cache
def _served() -> tuple[
    dict[str, Any],
    list[tuple[re.Pattern[str], str, int]],
    dict[str, jsonschema.protocols.Validator],
]:
    """The served document, its path templates and its validators (filled as schemas are
    met), built once per process and shared by every AnswerCheck: each only reads them,
    and building them again for each test cost ~50 ms of CPU."""
    document = openapi.document()
    return document, _path_templates(document), {}


@dataclasses.dataclass
class AnswerCheck:
    seen: list[Seen] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.document, self._templates, self._validators = _served()

    def template_of(self, path: str) -> str | None:
        """The documented path template ``path`` falls under (the most literal one)."""
        found = [(literal, t) for regex, t, literal in self._templates if regex.fullmatch(path)]
        return max(found)[1] if found else None

    def _validate(self, schema: Mapping[str, Any], value: Any, what: str) -> None:
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            root = {**schema, "components": self.document["components"]}
            validator = jsonschema.Draft202012Validator(
                root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
            self._validators[key] = validator
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            raise AnswerMismatch(f"{what} does not match the document at {where}: {error.message}")

    def check(
        self,
        method: str,
        url_path: str,
        *,
        status: int,
        content_type: str,
        text: str,
        sent_json: Any = None,
        sent_json_given: bool = False,
    ) -> None:
        path = url_path.split("?", 1)[0]
        template = self.template_of(path)
        operation = None
        if template is not None:
            looked_up = "get" if method == "HEAD" else method.lower()
            operation = self.document["paths"][template].get(looked_up)
        self.seen.append(Seen(method, template or path, status))
        what = f"{method} {url_path} -> {status}"
        media = content_type.split(";", 1)[0].strip()
        if operation is None:  # no such route, or not this method: a problem document
            if status not in (404, 405) or media != "application/problem+json":
                raise AnswerMismatch(f"{what}: an undocumented route answered {media}")
            self._validate(PROBLEM, json.loads(text), what)
            return
        answer = operation["responses"].get(str(status))
        if answer is None:
            raise AnswerMismatch(
                f"{what}: status {status} is not documented for {method} {template} "
                f"(documented: {', '.join(sorted(operation['responses']))}); body: {text[:300]}"
            )
        content = answer.get("content") or {}
        if not content:
            return
        if media not in content:
            raise AnswerMismatch(f"{what}: answered {media}, documented {sorted(content)}")
        if method == "HEAD":
            return
        body: Any = json.loads(text) if media.endswith("json") else text
        self._validate(content[media]["schema"], body, what)
        request = operation.get("requestBody")
        if 200 <= status < 300 and sent_json_given and request is not None:
            schema = request["content"].get("application/json", {}).get("schema")
            if schema is not None:
                self._validate(schema, sent_json, f"the request body of {what}")

    def operations(self) -> set[tuple[str, str]]:
        """Every documented operation, as (METHOD, path template)."""
        return {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
        }
