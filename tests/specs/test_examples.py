"""The canonical examples are accepted as they are, by the models and by the schemas."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from reconciler.specs import DOCUMENT_MODELS, parse_document
from reconciler.specs.schema_export import generate_schemas, schema_filename
from tests.specs.spec_examples import (
    EXAMPLE_FILES,
    EXAMPLES,
    SHARED_SPEC,
    RawDocument,
    example_documents,
)

DOCUMENTS = example_documents()
IDS = [f"{f}#{i}:{d['kind']}/{d['metadata']['name']}" for f, i, d in DOCUMENTS]


@pytest.mark.parametrize("filename", EXAMPLE_FILES)
def test_repo_examples_are_the_shared_ones_unchanged(filename: str) -> None:
    shared = SHARED_SPEC / filename
    if not shared.is_file():
        pytest.skip(f"{shared} is not here")
    assert (EXAMPLES / filename).read_bytes() == shared.read_bytes()


def test_examples_cover_every_kind() -> None:
    assert {d["kind"] for _, _, d in DOCUMENTS} == set(DOCUMENT_MODELS)


@pytest.mark.parametrize(("filename", "index", "document"), DOCUMENTS, ids=IDS)
def test_example_parses_into_its_kind(filename: str, index: int, document: RawDocument) -> None:
    parsed = parse_document(document)
    assert type(parsed) is DOCUMENT_MODELS[document["kind"]]
    assert parsed.ref == f"{document['kind']}/{document['metadata']['name']}"


@pytest.mark.parametrize("filename", EXAMPLE_FILES)
def test_examples_parse_from_round_trip_yaml(filename: str) -> None:
    # The loader reads with ruamel.yaml to keep positions: its mapping, sequence and
    # quoted-string subclasses must be accepted by the strict models too.
    loader = YAML(typ="rt")
    loader.preserve_quotes = True
    for document in loader.load_all((EXAMPLES / filename).read_text(encoding="utf-8")):
        parse_document(document)


@pytest.mark.parametrize(("filename", "index", "document"), DOCUMENTS, ids=IDS)
def test_example_matches_generated_json_schemas(
    filename: str, index: int, document: RawDocument
) -> None:
    schemas = generate_schemas()
    for name in ("document.schema.json", schema_filename(document["kind"])):
        schema = json.loads(json.dumps(schemas[name]))  # as the file holds it
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        assert [e.message for e in validator.iter_errors(document)] == [], name


@pytest.mark.parametrize(("filename", "index", "document"), DOCUMENTS, ids=IDS)
def test_example_dumps_back_to_an_equal_document(
    filename: str, index: int, document: RawDocument
) -> None:
    parsed = parse_document(document)
    assert parse_document(parsed.model_dump(mode="json")) == parsed
