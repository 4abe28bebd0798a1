"""The OpenAPI document as generated from the route declarations and their models: valid
OpenAPI 3.1 whose schemas are valid JSON Schema and whose references resolve; every
declared route in it once, with its role and query parameters; request bodies parsed
through their models with the surface's own error words; and the answer check the API
tests run refusing what the document does not allow."""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

import jsonschema
import pytest
from pydantic import MISSING, BaseModel, create_model

from reconciler.api import openapi
from reconciler.api.compat import workflow_dashboard_fields
from reconciler.api.compat.deployed_workflow import ACTIONS
from reconciler.api.compat.inference_tasks_shapes import DEPLOYMENT_FIELDS, InferenceDeleteRequest
from reconciler.api.compat.workflow_dashboard_shapes import (
    DashboardCreateRequest,
    DashboardExecuteRequest,
    DashboardOptions,
    DashboardOptionsState,
)
from reconciler.api.problems import BadRequest, Unprocessable
from reconciler.api.shapes import document as generated
from reconciler.api.shapes.common import RequestShape, parse
from reconciler.api.shapes.native import RunRequest, SyncRequest
from reconciler.api.shapes.registry import Answer, RouteTable
from reconciler.specs.deployment import DeploymentSpec
from tests.api.documented import AnswerCheck, AnswerMismatch


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def test_the_document_is_openapi_3_1_and_its_schemas_are_json_schema() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    schemathesis = pytest.importorskip("schemathesis")
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for name, schema in document["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise AssertionError(f"{name}: {exc.message}") from exc
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_every_declared_route_is_documented_once_with_its_role() -> None:
    document = openapi.document()
    declared = openapi.declared()
    assert len({(r.method, r.path) for r in declared}) == len(declared)
    for route in declared:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["summary"] == route.summary
        assert operation["security"] == ([] if route.role is None else [{"bearer": []}])
        expected_role = route.role_note or (route.role if route.role != "viewer" else None)
        assert operation.get("x-role") == expected_role, route.path
        assert "400" in operation["responses"]  # an unknown query parameter, anywhere
        for code in route.errors:
            content = operation["responses"][str(code)]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
    documented = sum(len(item) for item in document["paths"].values())
    assert documented == len(declared)


def test_query_parameters_come_from_the_query_models() -> None:
    allowed = openapi.query_parameters()
    assert allowed[("GET", "/api/v1/objects")] == (
        frozenset({"kind", "phase", "label", "limit", "offset", "continue"}),
        frozenset({"label"}),
    )
    assert allowed[("GET", "/api/workflows")][0] == {
        "status", "priority", "search", "page", "pageSize"
    }  # fmt: skip
    assert allowed[("GET", "/api/v1/status")] == (frozenset(), frozenset())
    assert ("POST", "/_plugins/_flow_framework/workflow") not in allowed  # it reads its own
    parameters = openapi.document()["paths"]["/api/v1/executions"]["get"]["parameters"]
    status = next(p for p in parameters if p["name"] == "status")
    assert status["explode"] and status["schema"]["type"] == "array"


def test_literal_shapes_say_what_the_code_says() -> None:
    options = tuple(f.alias for f in DashboardOptions.model_fields.values())
    assert options == tuple(workflow_dashboard_fields.OPTIONS)
    assert tuple(DashboardOptionsState.model_fields) == tuple(DashboardOptions.model_fields)
    trace = DashboardCreateRequest.model_fields["trace_level"].annotation
    assert set(get_args(get_args(trace)[0])) == set(workflow_dashboard_fields.TRACE_LEVELS)
    assert set(DEPLOYMENT_FIELDS) <= set(DeploymentSpec.model_fields)
    schema = openapi.document()["components"]["schemas"]["EndpointRequest"]
    mapping = schema["properties"]["request"]["discriminator"]["mapping"]
    assert set(mapping) == set(ACTIONS)


def test_a_body_is_parsed_with_the_surface_words() -> None:
    assert parse(SyncRequest, {}).kind is MISSING
    with pytest.raises(Unprocessable, match="unknown field 'kinds'; sync takes 'kind' and 'name'"):
        parse(SyncRequest, {"kinds": "Model", "name": 3})
    both = r"^give both 'kind' and 'name' as strings, or neither$"
    with pytest.raises(Unprocessable, match=both):
        parse(SyncRequest, {"kind": "Model"})
    with pytest.raises(Unprocessable, match=r"^kind must be one of Credential, "):
        parse(SyncRequest, {"kind": "Modle", "name": "x"})
    with pytest.raises(Unprocessable, match="'params' must be an object"):
        parse(RunRequest, {"params": {"nested": {"no": 1}}})
    assert parse(RunRequest, {"params": {"n": 1, "s": "x", "b": True, "z": None}}).params
    with pytest.raises(BadRequest, match=r"^name: expected a Deployment's name$"):
        parse(InferenceDeleteRequest, {"model_id": "m", "name": 3}, error=BadRequest)
    with pytest.raises(Unprocessable, match=r"^environment must be a string$"):
        parse(DashboardExecuteRequest, {"environment": ["a"]})


def test_a_refused_field_without_words_of_its_own_names_its_path() -> None:
    class Inner(BaseModel):
        size: int

    class Outer(RequestShape):
        inner: Inner

    with pytest.raises(Unprocessable, match=r"^inner\.size: Input should be a valid integer"):
        parse(Outer, {"inner": {"size": "big"}})


def test_two_shapes_of_one_name_are_refused() -> None:
    one = create_model("Twin", __module__="surface.one", value=(int, ...))
    two = create_model("Twin", __module__="surface.two", value=(str, ...))
    table = RouteTable()
    table.declare("GET", "/a", "A", role=None, answers={200: Answer("a", one)})
    table.declare("GET", "/b", "B", role=None, answers={200: Answer("b", two)})
    with pytest.raises(ValueError, match="share a name"):
        generated.build(table.routes, info={"title": "t", "version": "0"})
    with pytest.raises(ValueError, match="declared twice"):
        table.declare("GET", "/a", "again", role=None, answers={})


def test_nullable_simple_types_read_as_type_lists() -> None:
    class Reading(BaseModel):
        when: str | None
        where: dict[str, Any] | None
        what: Literal["a", "b"] | None

    table = RouteTable()
    table.declare("GET", "/r", "R", role=None, answers={200: Answer("r", Reading)})
    schema = generated.build(table.routes, info={})["components"]["schemas"]["Reading"]
    assert schema["properties"]["when"] == {"type": ["string", "null"]}
    assert schema["properties"]["where"] == {"type": ["object", "null"]}
    assert {"type": "null"} in schema["properties"]["what"]["anyOf"]
    assert "title" not in schema


def test_the_answer_check_refuses_what_the_document_does_not_allow() -> None:
    check = AnswerCheck()
    check.check("GET", "/healthz", status=200, content_type="application/json",
                text='{"status":"ok"}')  # fmt: skip
    cases: list[tuple[str, str, int, str, str, Any]] = [
        ("GET", "/healthz", 200, "application/json", '{"status":"fine"}', None),
        ("GET", "/healthz", 201, "application/json", '{"status":"ok"}', None),
        ("GET", "/healthz", 200, "text/plain", "ok", None),
        ("GET", "/api/v1/status", 500, "application/problem+json", "{}", None),
        ("GET", "/nowhere", 200, "application/json", "{}", None),
        ("POST", "/api/v1/sync", 202, "application/json",
         '{"triggered":true,"object":null}', {"kind": "Nope", "name": "x"}),
        ("GET", "/api/v1/objects", 200, "application/json",
         '{"items":[],"total":0,"limit":1,"offset":0,"continue":null,"extra":1}', None),
    ]  # fmt: skip
    for method, path, status, media, text, sent in cases:
        with pytest.raises(AnswerMismatch):
            check.check(method, path, status=status, content_type=media, text=text,
                        sent_json=sent, sent_json_given=sent is not None)  # fmt: skip
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no"}
    check.check("GET", "/nowhere", status=404, content_type="application/problem+json",
                text=json.dumps(problem))  # fmt: skip
    assert check.template_of("/_plugins/_flow_framework/workflow/_steps").endswith("/_steps")
    assert check.template_of("/api/v1/objects/Model/m/explain").endswith("/explain")
