"""Model sources, scan policy, tags and size, as each rule reports them."""

from __future__ import annotations

import pytest

from reconciler.specs import parse_document
from reconciler.specs.model import ModelDocument
from tests.specs.spec_examples import DELETE, RawDocument, changed, errors_of, example

HF = example("Model", "phi-3-5-mini")
URL = example("Model", "tiny-gguf")
DISK = example("Model", "minilm")
CLOUD = example("Model", "gpt-4o-mini")
SHA = "9f2c0c3b6a1e4d5f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"


def parse_model(document: RawDocument) -> ModelDocument:
    parsed = parse_document(document)
    assert isinstance(parsed, ModelDocument)
    return parsed


def test_hugging_face_revision_defaults_to_main() -> None:
    source = parse_model(changed(HF, "spec.source.revision", DELETE)).spec.source
    assert source.provider_type == "hugging_face"
    assert source.revision == "main"


@pytest.mark.parametrize("uri", ["Phi-3.5", "a/b/c", "/abs", "owner/"])
def test_hugging_face_uri_is_owner_slash_name(uri: str) -> None:
    assert errors_of(changed(HF, "spec.source.uri", uri)) == [
        (
            "spec.source.uri",
            f"uri {uri!r} is not a Hugging Face repo id: use 'owner/name', "
            "e.g. 'microsoft/Phi-3.5-mini-instruct'",
        )
    ]


def test_unknown_provider_type_is_reported_at_the_key() -> None:
    assert errors_of(changed(HF, "spec.source.provider_type", "s3")) == [
        (
            "spec.source.provider_type",
            "provider_type 's3' is not one of hugging_face, cloud_model, url, disk",
        )
    ]


def test_missing_provider_type_is_reported_on_the_source() -> None:
    assert errors_of(changed(HF, "spec.source.provider_type", DELETE)) == [
        ("spec.source", "provider_type is required: one of hugging_face, cloud_model, url, disk")
    ]


def test_source_errors_are_located_at_yaml_keys_without_the_union_tag() -> None:
    document = changed(changed(URL, "spec.source.uri", "ftp://host/x"), "spec.source.x", 1)
    assert errors_of(document) == [
        ("spec.source.uri", "'ftp://host/x' is not an http(s) URL, e.g. 'https://host/path'"),
        ("spec.source.x", "Extra inputs are not permitted"),
    ]


def test_url_source_requires_sha256() -> None:
    assert errors_of(changed(URL, "spec.source.sha256", DELETE)) == [
        ("spec.source.sha256", "Field required")
    ]


@pytest.mark.parametrize("digest", ["abc", SHA[:-1] + "g", SHA + "0"])
def test_sha256_is_64_hex_characters(digest: str) -> None:
    assert errors_of(changed(URL, "spec.source.sha256", digest)) == [
        (
            "spec.source.sha256",
            f"sha256 {digest!r} is not a SHA-256 digest: it must be 64 hex characters",
        )
    ]


def test_disk_uri_is_an_absolute_path() -> None:
    assert errors_of(changed(DISK, "spec.source.uri", "models/minilm")) == [
        ("spec.source.uri", "'models/minilm' is not an absolute path: it must start with '/'")
    ]


def test_disk_source_takes_no_credential() -> None:
    assert errors_of(changed(DISK, "spec.source.credential", "hf-token")) == [
        ("spec.source.credential", "Extra inputs are not permitted")
    ]


def test_cloud_model_needs_a_provider() -> None:
    assert errors_of(changed(CLOUD, "spec.source.provider", DELETE)) == [
        ("spec.source.provider", "Field required")
    ]


def test_credential_reference_is_a_name() -> None:
    assert errors_of(changed(HF, "spec.source.credential", "HF Token")) == [
        (
            "spec.source.credential",
            "Credential name 'HF Token' is not a lowercase DNS label "
            "(a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric)",
        )
    ]


def test_security_scan_defaults_to_required_and_accepts_skip() -> None:
    assert parse_model(changed(HF, "spec.security_scan", DELETE)).spec.security_scan == "required"
    assert parse_model(changed(HF, "spec.security_scan", "skip")).spec.security_scan == "skip"
    assert errors_of(changed(HF, "spec.security_scan", "off")) == [
        ("spec.security_scan", "Input should be 'required' or 'skip'")
    ]


def test_modality_is_one_of_the_known_ones() -> None:
    assert errors_of(changed(HF, "spec.modality", "text")) == [
        (
            "spec.modality",
            "Input should be 'llm', 'embedding', 'reranker', 'vision' or 'audio'",
        )
    ]


@pytest.mark.parametrize("color", ["#abc", "#66d1DF"])
def test_tag_colours_are_hex(color: str) -> None:
    parse_model(changed(HF, "spec.tags.0.color", color))


@pytest.mark.parametrize("color", ["red", "#abcd", "66d1DF", "#ggg"])
def test_tag_colour_that_is_not_hex_is_rejected(color: str) -> None:
    assert errors_of(changed(HF, "spec.tags.0.color", color)) == [
        ("spec.tags.0.color", f"color {color!r} is not a hex colour such as '#1a2b3c' or '#abc'")
    ]


@pytest.mark.parametrize(
    ("parameters", "count"),
    [
        (3_800_000_000, 3_800_000_000),
        ("3.8B", 3_800_000_000),
        ("125m", 125_000_000),
        ("7B", 7_000_000_000),
    ],
)
def test_parameters_give_a_count(parameters: int | str, count: int) -> None:
    spec = parse_model(changed(HF, "spec.parameters", parameters)).spec
    assert spec.parameter_count == count


def test_parameters_that_are_not_a_count_are_rejected() -> None:
    assert errors_of(changed(HF, "spec.parameters", "big")) == [
        (
            "spec.parameters",
            "parameters 'big' is not a parameter count: write an integer or a number with "
            "K, M, B or T, e.g. '3.8B'",
        )
    ]


def test_dtype_is_a_known_weight_type() -> None:
    assert parse_model(changed(HF, "spec.dtype", "bfloat16")).spec.dtype == "bfloat16"
    assert errors_of(changed(HF, "spec.dtype", "fp4"))[0][0] == "spec.dtype"
