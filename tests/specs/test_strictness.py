"""Scalars are taken as YAML typed them: no silent str/int/bool conversions."""

from __future__ import annotations

import pytest

from tests.specs.spec_examples import RawDocument, changed, errors_of, example

DEPLOYMENT = example("Deployment", "gpt-mini-endpoint")
WORKFLOW = example("Workflow", "nightly-eval")
CLUSTER = example("Cluster", "local")


@pytest.mark.parametrize(
    ("document", "path", "value", "message"),
    [
        (
            DEPLOYMENT,
            "spec.deploy_config.concurrent_requests",
            "10",
            "Input should be a valid integer",
        ),
        (
            DEPLOYMENT,
            "spec.deploy_config.concurrent_requests",
            True,
            "Input should be a valid integer",
        ),
        (DEPLOYMENT, "spec.deploy_config.ttft", [True, 2], "Input should be a valid number"),
        (DEPLOYMENT, "spec.endpoint_name", 5, "Input should be a valid string"),
        (WORKFLOW, "spec.suspend", "yes", "Input should be a valid boolean"),
        (WORKFLOW, "spec.suspend", 1, "Input should be a valid boolean"),
        (CLUSTER, "spec.display_name", True, "Input should be a valid string"),
    ],
)
def test_no_coercion(document: RawDocument, path: str, value: object, message: str) -> None:
    errors = errors_of(changed(document, path, value))
    assert len(errors) == 1
    assert errors[0][0].startswith(path)
    assert errors[0][1] == message


def test_numbers_accept_integers_where_floats_are_meant() -> None:
    from reconciler.specs import parse_document

    parse_document(changed(DEPLOYMENT, "spec.deploy_config.e2e_latency", [0.5, 2]))
