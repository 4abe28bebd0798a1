"""The OpenAPI 3.1 document generated from route declarations and their models.

Every shape a route names (request bodies in validation mode, answers in serialization
mode) goes through pydantic's JSON Schema generator in one batch, so a model used by
several routes is one entry of ``components/schemas`` and is referenced everywhere. The
schemas are tidied for readers: no generated titles, ``X | None`` as ``type: [X, null]``,
no ``default: null``. Query parameters come from each route's query model, path
parameters from its path template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from reconciler.api.shapes.common import Problem
from reconciler.api.shapes.registry import ERROR_WORDS, PROBLEM, Route

REF_TEMPLATE = "#/components/schemas/{model}"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


class _Schemas(GenerateJsonSchema):
    """pydantic's generator, without what only adds noise to an API document."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        generated = super().dict_schema(schema)
        if generated.get("additionalProperties") is True:  # the default: say nothing
            generated = {k: v for k, v in generated.items() if k != "additionalProperties"}
        return generated

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if set(inner) == {"type"} and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        return super().nullable_schema(schema)

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if "default" in generated and generated["default"] is None:
            generated = {k: v for k, v in generated.items() if k != "default"}
        return generated


class _Batch:
    """The shapes of a document, generated together so they share components."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, JsonSchemaMode, TypeAdapter[Any]]] = []
        self._keys: dict[tuple[int, JsonSchemaMode], int] = {}
        self._shapes: list[Any] = []  # kept alive, so their ids stay theirs

    def want(self, shape: Any, mode: JsonSchemaMode) -> int:
        found = self._keys.get((id(shape), mode))
        if found is None:
            found = len(self._inputs)
            self._inputs.append((found, mode, TypeAdapter(shape)))
            self._keys[(id(shape), mode)] = found
            self._shapes.append(shape)
        return found

    def generate(self) -> tuple[dict[int, JsonSchemaValue], dict[str, JsonSchemaValue]]:
        keyed, top = TypeAdapter.json_schemas(
            self._inputs,
            ref_template=REF_TEMPLATE,
            union_format="primitive_type_array",
            schema_generator=_Schemas,
        )
        defs: dict[str, JsonSchemaValue] = dict(top.get("$defs") or {})
        odd = [name for name in defs if "__" in name or name.endswith(("-Input", "-Output"))]
        if odd:
            raise ValueError(
                f"shape {odd[0]!r}: two models share a name, or one model is both a request "
                "and an answer with different schemas; give each its own name"
            )
        tidy = {name: _one_line({k: v for k, v in defs[name].items() if k != "title"})
                for name in defs}  # fmt: skip
        schemas = {key: _one_line(value) for (key, _), value in keyed.items()}
        return schemas, tidy


def _in_reading_order(
    paths: dict[str, Any], components: dict[str, JsonSchemaValue]
) -> dict[str, JsonSchemaValue]:
    """The components in the order a reader meets them: by route, each followed by the
    shapes it refers to."""
    ordered: dict[str, JsonSchemaValue] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in ordered:
                    ordered[name] = components[name]
                    visit(components[name])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(paths)
    for name, schema in components.items():  # none should be left; never drop one
        ordered.setdefault(name, schema)
    return ordered


def _one_line(value: Any) -> Any:
    """``value`` with every description on one line (docstrings wrap)."""
    if isinstance(value, dict):
        return {
            k: " ".join(v.split()) if k == "description" and isinstance(v, str) else _one_line(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_one_line(v) for v in value]
    return value


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    if route.query is None:
        return []
    schema = TypeAdapter(route.query).json_schema(
        mode="validation",
        ref_template=REF_TEMPLATE,
        union_format="primitive_type_array",
        schema_generator=_Schemas,
    )
    if "$defs" in schema:
        raise ValueError(f"{route.method} {route.path}: a query parameter must be a plain value")
    required = set(schema.get("required") or ())
    parameters = []
    for name, field in schema.get("properties", {}).items():
        field = dict(field)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = _one_line(field).pop("description", None)
        parameter["schema"] = field
        if description:
            parameter["description"] = description
        if field.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    parameters = []
    for name in route.path_parameters:
        schema: dict[str, Any] = {"type": "string"}
        if name in route.patterns:
            schema["pattern"] = f"^{route.patterns[name]}$"
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def query_names(route: Route) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameters ``route`` takes, and those of them that may repeat."""
    parameters = _query_parameters(route)
    return (
        frozenset(p["name"] for p in parameters),
        frozenset(p["name"] for p in parameters if p.get("explode")),
    )


def _operation(route: Route, batch: _Batch) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The operation with each schema as a batch key, and where those keys sit."""
    operation: dict[str, Any] = {"summary": route.summary}
    if route.description:
        operation["description"] = route.description
    operation["security"] = [] if route.role is None else BEARER
    if route.x_role is not None:
        operation["x-role"] = route.x_role
    if route.open_query:
        operation["x-open-query"] = True
    parameters = _path_parameters(route) + _query_parameters(route)
    if parameters:
        operation["parameters"] = parameters
    holes: list[tuple[Any, ...]] = []
    if route.body is not None:
        content: dict[str, Any] = {}
        for media, shape in route.body.content.items():
            content[media] = {"schema": batch.want(shape, "validation")}
            holes.append(("requestBody", "content", media, "schema"))
        operation["requestBody"] = {"required": route.body.required, "content": content}
    responses: dict[str, Any] = {}
    codes = sorted({*route.answers, *route.errors, 400})
    for code in codes:
        answer = route.answers.get(code)
        if answer is None:
            responses[str(code)] = {
                "description": ERROR_WORDS[code],
                "content": {PROBLEM: {"schema": batch.want(Problem, "serialization")}},
            }
            holes.append(("responses", str(code), "content", PROBLEM, "schema"))
            continue
        entry: dict[str, Any] = {"description": answer.description}
        shapes = answer.content()
        if shapes:
            entry["content"] = {
                media: {"schema": batch.want(shape, "serialization")}
                for media, shape in shapes.items()
            }
            holes += [("responses", str(code), "content", media, "schema") for media in shapes]
        responses[str(code)] = entry
    operation["responses"] = responses
    return operation, holes


def _fill(operation: dict[str, Any], holes: Iterable[tuple[Any, ...]],
          schemas: dict[int, JsonSchemaValue]) -> None:  # fmt: skip
    for hole in holes:
        place = operation
        for part in hole[:-1]:
            place = place[part]
        place[hole[-1]] = schemas[place[hole[-1]]]


def build(routes: Sequence[Route], *, info: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (in their order), with ``info``."""
    batch = _Batch()
    made: list[tuple[Route, dict[str, Any], list[tuple[Any, ...]]]] = []
    for route in routes:
        operation, holes = _operation(route, batch)
        made.append((route, operation, holes))
    schemas, components = batch.generate()
    paths: dict[str, dict[str, Any]] = {}
    for route, operation, holes in made:
        _fill(operation, holes, schemas)
        item = paths.setdefault(route.path, {})
        if route.method.lower() in item:
            raise ValueError(f"{route.method} {route.path} is declared twice")
        item[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {
            "schemas": _in_reading_order(paths, components),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": BEARER,
    }
