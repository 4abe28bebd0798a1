"""A create_connector node written out in full must call a cloud provider the daemon
serves and name a secret: validate says so at the node, before anything runs."""

from __future__ import annotations

import pytest

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile


def _lines(parameters: str, url: str, credential: str = "{api_key: openai-api-key}") -> list[str]:
    text = f"""\
apiVersion: reconciler/v1
kind: Workflow
metadata: {{name: remote}}
spec:
  trigger: manual
  user_params: {{host: api.openai.com}}
  workflows:
    provision:
      nodes:
        - id: conn
          type: create_connector
          user_inputs:
            name: c
            description: d
            version: '1'
            protocol: http
            parameters: {parameters}
            credential: {credential}
            actions:
              - {{action_type: predict, method: POST, url: "{url}"}}
"""
    result = validate_sources([SourceFile("workflows.yaml", text.encode())])
    return [d.format() for d in result.diagnostics]


def test_the_reference_connector_passes() -> None:
    assert (
        _lines(
            "{endpoint: api.openai.com, model: gpt-3.5-turbo}",
            "https://${parameters.endpoint}/v1/chat",
        )
        == []
    )


def test_a_connector_to_an_unknown_host_is_an_error_at_its_actions() -> None:
    (line,) = _lines("{model: m}", "https://llm.internal.example/v1/chat")
    assert line.startswith("workflows.yaml:20:15: error: connector node 'conn': the connector")
    assert "'llm.internal.example', which is not a cloud provider" in line
    assert line.endswith("(Workflow/remote)")


def test_a_connector_without_a_model_is_an_error() -> None:
    (line,) = _lines("{}", "https://api.openai.com/v1/chat")
    assert "does not say which model: set parameters.model" in line


def test_a_connector_naming_no_secret_is_an_error_at_its_credential() -> None:
    (line,) = _lines("{model: m}", "https://api.openai.com/v1/chat", credential="{}")
    assert line.startswith("workflows.yaml:18:25: error: connector node 'conn' names no secret")


@pytest.mark.parametrize(
    ("parameters", "url"),
    [
        ("{model: m}", "https://${{ host }}/v1/chat"),
        ("{model: '${{ host }}'}", "https://api.openai.com/v1/chat"),
    ],
)
def test_a_connector_known_only_at_run_time_is_left_to_the_run(parameters: str, url: str) -> None:
    assert _lines(parameters, url) == []


def test_credential_values_are_secret_names_whatever_their_keys_say() -> None:
    """``api_key: openai-api-key`` names a secret; a key that says "key" is no reason to
    refuse it. A value that is not a name, or has a credential's shape, is refused and
    never echoed."""
    url = "https://api.openai.com/v1/chat"
    assert _lines("{model: m}", url, credential="{api_key: openai-api-key}") == []
    assert _lines("{model: m}", url, credential="{api_key: '${{ host }}'}") == []
    for value in ("sk-abcdefghijklmnopqrstuvwxyz123", "not a name"):
        (line,) = _lines("{model: m}", url, credential=f"{{api_key: '{value}'}}")
        assert line.startswith("workflows.yaml:18:35: error: inline secret value under credential")
        assert value not in line
