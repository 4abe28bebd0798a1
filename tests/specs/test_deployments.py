"""Deployments and DeploymentTemplates: references, strategy, load, SLO pairs, runtime."""

from __future__ import annotations

import pytest

from reconciler.specs import parse_document
from reconciler.specs.deployment import DeploymentDocument
from reconciler.specs.template import DeploymentTemplateDocument
from tests.specs.spec_examples import DELETE, RawDocument, changed, errors_of, example

SELF_HOSTED = example("Deployment", "phi-chat")
CLOUD = example("Deployment", "gpt-mini-endpoint")
TEMPLATE = example("DeploymentTemplate", "chat-low-latency")


def parse_deployment(document: RawDocument) -> DeploymentDocument:
    parsed = parse_document(document)
    assert isinstance(parsed, DeploymentDocument)
    return parsed


def test_cloud_deployment_needs_no_cluster_or_template_and_defaults_to_green() -> None:
    spec = parse_deployment(CLOUD).spec
    assert (spec.cluster, spec.template, spec.strategy, spec.workers) == (
        None,
        None,
        "green",
        None,
    )
    assert spec.deploy_config.ttft is None


def test_slo_ranges_are_min_max_pairs() -> None:
    config = parse_deployment(SELF_HOSTED).spec.deploy_config
    assert config.ttft == (50, 1000)
    assert config.e2e_latency == (100, 100)


def test_slo_range_min_above_max_is_rejected() -> None:
    assert errors_of(changed(SELF_HOSTED, "spec.deploy_config.ttft", [1000, 50])) == [
        ("spec.deploy_config.ttft", "[min, max] range [1000, 50] has min greater than max")
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1], ("spec.deploy_config.ttft.1", "Field required")),
        (
            [1, 2, 3],
            (
                "spec.deploy_config.ttft",
                "Tuple should have at most 2 items after validation, not 3",
            ),
        ),
        ([0, 2], ("spec.deploy_config.ttft.0", "Input should be greater than 0")),
        (50, ("spec.deploy_config.ttft", "Input should be a valid tuple")),
    ],
)
def test_slo_range_is_two_positive_numbers(value: object, expected: tuple[str, str]) -> None:
    assert errors_of(changed(SELF_HOSTED, "spec.deploy_config.ttft", value)) == [expected]


@pytest.mark.parametrize(
    "key", ["concurrent_requests", "avg_sequence_length", "avg_context_length"]
)
def test_load_figures_are_positive_integers(key: str) -> None:
    assert errors_of(changed(CLOUD, f"spec.deploy_config.{key}", 0)) == [
        (f"spec.deploy_config.{key}", "Input should be greater than 0")
    ]
    assert errors_of(changed(CLOUD, f"spec.deploy_config.{key}", 1.5)) == [
        (f"spec.deploy_config.{key}", "Input should be a valid integer")
    ]


def test_workers_is_a_positive_integer_or_null() -> None:
    assert parse_deployment(changed(SELF_HOSTED, "spec.workers", 3)).spec.workers == 3
    assert errors_of(changed(SELF_HOSTED, "spec.workers", 0)) == [
        ("spec.workers", "Input should be greater than 0")
    ]


def test_strategy_is_green_or_recreate() -> None:
    assert parse_deployment(changed(CLOUD, "spec.strategy", "recreate")).spec.strategy == "recreate"
    assert errors_of(changed(CLOUD, "spec.strategy", "canary")) == [
        ("spec.strategy", "Input should be 'green' or 'recreate'")
    ]


def test_suspend_freezes_a_deployment() -> None:
    assert parse_deployment(changed(CLOUD, "spec.suspend", True)).spec.suspend is True
    assert parse_deployment(CLOUD).spec.suspend is False


def test_model_reference_is_required_and_a_name() -> None:
    assert errors_of(changed(CLOUD, "spec.model", DELETE)) == [("spec.model", "Field required")]
    assert errors_of(changed(CLOUD, "spec.model", "GPT_4o")) == [
        (
            "spec.model",
            "Model name 'GPT_4o' is not a lowercase DNS label "
            "(a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric)",
        )
    ]


def test_template_defaults_hold_only_slo_ranges() -> None:
    parsed = parse_document(TEMPLATE)
    assert isinstance(parsed, DeploymentTemplateDocument)
    assert parsed.spec.defaults.ttft == (50, 500)
    assert parsed.spec.runtime.command is None
    assert errors_of(changed(TEMPLATE, "spec.defaults.concurrent_requests", 4)) == [
        ("spec.defaults.concurrent_requests", "Extra inputs are not permitted")
    ]
    assert errors_of(changed(TEMPLATE, "spec.defaults.e2e_latency", [10, 1])) == [
        ("spec.defaults.e2e_latency", "[min, max] range [10, 1] has min greater than max")
    ]


def test_template_runtime_needs_an_image_or_a_command() -> None:
    local_only = changed(
        changed(TEMPLATE, "spec.runtime.image", DELETE),
        "spec.runtime.command",
        ["python", "-m", "server", "--port", "{port}"],
    )
    parse_document(local_only)
    assert errors_of(changed(TEMPLATE, "spec.runtime.image", DELETE)) == [
        ("spec.runtime", "runtime needs an image (kubernetes driver) or a command (local driver)")
    ]


def test_template_resources_are_quantities() -> None:
    parse_document(changed(TEMPLATE, "spec.resources.cpu", 8))
    parse_document(changed(TEMPLATE, "spec.resources.cpu", "500m"))
    errors = errors_of(changed(TEMPLATE, "spec.resources.memory", "32 gigs"))
    assert (
        "spec.resources.memory",
        "'32 gigs' is not a Kubernetes quantity such as '8', '500m', '32Gi' or '512M'",
    ) in errors


def test_template_port_and_health_path() -> None:
    assert errors_of(changed(TEMPLATE, "spec.runtime.port", 70000)) == [
        ("spec.runtime.port", "Input should be less than or equal to 65535")
    ]
    assert errors_of(changed(TEMPLATE, "spec.runtime.health_path", "health")) == [
        ("spec.runtime.health_path", "health_path 'health' must be an HTTP path starting with '/'")
    ]
