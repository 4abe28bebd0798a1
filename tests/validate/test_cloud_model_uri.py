"""A cloud Model's URI is checked against its provider's form at validate time."""

from __future__ import annotations

import pytest

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile


def _lines(provider: str, uri: str) -> list[str]:
    text = (
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: cloudy}\n"
        "spec:\n  modality: llm\n  source:\n    provider_type: cloud_model\n"
        f"    provider: {provider}\n    uri: {uri}\n"
    )
    result = validate_sources([SourceFile("models.yaml", text.encode())])
    return [d.format() for d in result.diagnostics]


@pytest.mark.parametrize(
    ("provider", "uri"),
    [("openai", "openai/gpt-4o-mini"), ("anthropic", "anthropic/claude-3-5-sonnet-latest")],
)
def test_a_uri_of_its_providers_form_passes(provider: str, uri: str) -> None:
    assert _lines(provider, uri) == []


def test_a_uri_not_of_its_providers_form_is_an_error_at_the_uri() -> None:
    (line,) = _lines("openai", "gpt-4o-mini")
    assert line.startswith("models.yaml:9:10: error: uri 'gpt-4o-mini' is not of the form")
    assert line.endswith("(Model/cloudy)")
