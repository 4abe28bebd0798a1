"""The envelope: apiVersion, kind, metadata, and what the registry says about kinds."""

from __future__ import annotations

import pytest

from reconciler.specs import KINDS, kind_plural, parse_document
from tests.specs.spec_examples import DELETE, changed, errors_of, example

CREDENTIAL = example("Credential", "openai-prod")
LABEL_RULE = "(a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric)"


@pytest.mark.parametrize(
    "name", ["Bad_Name", "-lead", "trail-", "UPPER", "a" * 64, "", "dots.not.allowed"]
)
def test_name_must_be_a_lowercase_dns_label(name: str) -> None:
    assert errors_of(changed(CREDENTIAL, "metadata.name", name)) == [
        ("metadata.name", f"metadata.name {name!r} is not a lowercase DNS label {LABEL_RULE}")
    ]


@pytest.mark.parametrize("name", ["a", "0", "a-b-9", "a" * 63])
def test_dns_labels_are_accepted(name: str) -> None:
    assert parse_document(changed(CREDENTIAL, "metadata.name", name)).name == name


def test_api_version_must_be_reconciler_v1() -> None:
    assert errors_of(changed(CREDENTIAL, "apiVersion", "v1")) == [
        ("apiVersion", "apiVersion must be 'reconciler/v1', got 'v1'")
    ]


def test_unknown_kind_is_reported_at_kind() -> None:
    assert errors_of(changed(CREDENTIAL, "kind", "Secret")) == [
        (
            "kind",
            "kind 'Secret' is not one of Credential, Project, Cluster, DeploymentTemplate, "
            "Model, Deployment, Workflow",
        )
    ]


def test_missing_kind_is_reported_on_the_document() -> None:
    assert errors_of(changed(CREDENTIAL, "kind", DELETE)) == [
        (
            "",
            "kind is required: one of Credential, Project, Cluster, DeploymentTemplate, "
            "Model, Deployment, Workflow",
        )
    ]


def test_a_document_must_be_a_mapping() -> None:
    assert errors_of(["a", "list"]) == [
        ("", "a document must be a mapping with apiVersion, kind, metadata and spec, got list")
    ]


def test_unknown_keys_are_errors_at_every_level() -> None:
    document = changed(changed(CREDENTIAL, "spec.extra", 1), "metadata.owner", "me")
    assert errors_of(document) == [
        ("metadata.owner", "Extra inputs are not permitted"),
        ("spec.extra", "Extra inputs are not permitted"),
    ]


def test_labels_and_annotations_are_string_maps() -> None:
    document = changed(CREDENTIAL, "metadata.labels", {"team": "infra", "tier": 1})
    assert errors_of(document) == [("metadata.labels.tier", "Input should be a valid string")]
    parsed = parse_document(
        changed(CREDENTIAL, "metadata.annotations", {"reconciler/prune": "disabled"})
    )
    assert parsed.metadata.prune_disabled
    assert not parse_document(CREDENTIAL).metadata.prune_disabled


def test_documents_are_immutable() -> None:
    parsed = parse_document(CREDENTIAL)
    with pytest.raises(ValueError, match="frozen"):
        parsed.metadata.name = "other"  # type: ignore[misc]


def test_kinds_are_in_dependency_order() -> None:
    assert KINDS == (
        "Credential",
        "Project",
        "Cluster",
        "DeploymentTemplate",
        "Model",
        "Deployment",
        "Workflow",
    )


def test_kind_plural_names_the_status_folders() -> None:
    assert [kind_plural(k) for k in KINDS] == [
        "credentials",
        "projects",
        "clusters",
        "deploymenttemplates",
        "models",
        "deployments",
        "workflows",
    ]
    with pytest.raises(ValueError, match="unknown kind 'Secret'"):
        kind_plural("Secret")
