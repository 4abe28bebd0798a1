"""What every surface shares: the problem document, the base classes of shapes, and the
parsing of a request body through its model with errors a person can act on.

An answer's model is closed (a field it does not declare is an error), so the document
lists every field an answer carries; a free-form part is typed ``dict[str, Any]``. A
field that may be absent is typed ``X | MISSING`` and left out of the answer when unset.

A request model declares the words of its errors: ``unknown_field`` for a field it does
not take and ``problems`` per field, so a surface keeps its own messages while the model
decides what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import MISSING, BaseModel, ConfigDict, ValidationError

from reconciler.api.problems import ApiError, Unprocessable

Scalar = str | int | float | bool | None
"""A parameter value: a string, number, boolean or null."""


def literal_of(values: Sequence[str]) -> Any:
    """``Literal`` of the values a constant of the code holds (a step catalogue, a field
    list), so a shape and the code agree by construction. For mypy, annotate the alias
    as ``str`` under ``TYPE_CHECKING``."""
    return Literal[tuple(values)]


class Shape(BaseModel):
    """A body the API answers with; closed, so the document names all of it."""

    model_config = ConfigDict(
        extra="forbid",
        serialize_by_alias=True,
        validate_by_name=True,
        use_attribute_docstrings=True,
    )

    def as_json(self) -> dict[str, Any]:
        """The JSON object of this answer (unset optional fields left out)."""
        return self.model_dump(mode="json", by_alias=True)


class Problem(Shape):
    """An error as a JSON problem document (RFC 9457); every error answer is one."""

    type: str
    title: str
    status: int
    detail: str
    diagnostics: list[str] | MISSING = MISSING
    """A write the repo would not validate with: the first problems validation found."""
    project: str | MISSING = MISSING
    """A Project's permissions refused the action: that Project."""
    action: str | MISSING = MISSING
    """The Project action that was needed (execute, deploy, edit, delete, full)."""
    roles_held: list[str] | MISSING = MISSING
    roles_granting: list[str] | MISSING = MISSING


class RequestShape(BaseModel):
    """A request body; closed, with the words of its errors."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
    )

    unknown_field: ClassVar[str] = "unknown field {field!r}"
    """The error for a field the body does not take (``{field}``: its name)."""
    problems: ClassVar[Mapping[str, str]] = {}
    """The error for a field whose value is refused, by field name (else pydantic's words,
    after the field's path)."""


Model = TypeVar("Model", bound=RequestShape)


def parse(
    model: type[Model], body: Mapping[str, Any], *, error: type[ApiError] = Unprocessable
) -> Model:
    """``body`` as ``model``; ``error`` (422 unless the surface says otherwise) naming the
    first field that is wrong, an unknown field first."""
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        raise error(problem_text(model, exc)) from None


def problem_text(model: type[RequestShape], exc: ValidationError) -> str:
    """The one sentence that says what is wrong with a body ``model`` refused."""
    found = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in found if e["type"] == "extra_forbidden")
    if unknown:
        return model.unknown_field.format(field=unknown[0])
    first = found[0]
    loc = first["loc"]
    if loc and str(loc[0]) in model.problems:
        return model.problems[str(loc[0])]
    cause = (first.get("ctx") or {}).get("error")
    words = str(cause) if isinstance(cause, ValueError) else first["msg"]
    where = ".".join(str(part) for part in loc)
    return f"{where}: {words}" if where else words
