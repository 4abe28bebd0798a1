"""A flow-framework connector's provider and model URI, told by the host its actions call."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core import cloud_providers
from reconciler.core.connectors import ConnectorError, connector_target, expand


def action(url: str, kind: str = "predict") -> dict[str, Any]:
    return {"action_type": kind, "method": "POST", "url": url}


@pytest.mark.parametrize(
    ("parameters", "url", "provider", "uri"),
    [
        (  # the reference document's template
            {"endpoint": "api.openai.com", "model": "gpt-3.5-turbo"},
            "https://${parameters.endpoint}/v1/chat/completions",
            "openai",
            "openai/gpt-3.5-turbo",
        ),
        (
            {"model": "claude-3-5-sonnet-20241022"},
            "https://api.anthropic.com/v1/messages",
            "anthropic",
            "anthropic/claude-3-5-sonnet-20241022",
        ),
        (
            {"region": "us-east-1", "model": "anthropic.claude-3-haiku-20240307-v1:0"},
            "https://bedrock-runtime.${parameters.region}.amazonaws.com/model/${parameters.model}/invoke",
            "bedrock",
            "bedrock/us-east-1/anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (  # the model only in the path
            {},
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/amazon.titan-embed-text-v1/invoke",
            "bedrock",
            "bedrock/eu-west-1/amazon.titan-embed-text-v1",
        ),
        (
            {"api_version": "2024-02-01"},
            "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions",
            "azure_openai",
            "azure_openai/my-resource/gpt-4o",
        ),
        (
            {"project": "my-project", "model": "gemini-1.5-pro"},
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent",
            "vertex",
            "vertex/my-project/us-central1/gemini-1.5-pro",
        ),
        (
            {"model": "meta-llama/Llama-3-8b-chat-hf"},
            "https://api.together.xyz/v1/chat/completions",
            "together",
            "together/meta-llama/Llama-3-8b-chat-hf",
        ),
        (
            {"model": "llama-3.1-8b-instant"},
            "https://api.groq.com/openai/v1/chat/completions",
            "groq",
            "groq/llama-3.1-8b-instant",
        ),
        (
            {"model": "mistral-large-latest"},
            "https://API.MISTRAL.AI/v1/chat/completions",
            "mistral",
            "mistral/mistral-large-latest",
        ),
        (
            {"model": "command-r-plus"},
            "https://api.cohere.com/v2/chat",
            "cohere",
            "cohere/command-r-plus",
        ),
    ],
)
def test_each_provider_is_told_by_its_host(
    parameters: dict[str, Any], url: str, provider: str, uri: str
) -> None:
    target = connector_target(parameters, [action(url)])
    assert (target.provider, target.uri) == (provider, uri)
    assert target.provider in cloud_providers.PROVIDERS
    assert target.source("connector-x") == {
        "provider_type": "cloud_model",
        "provider": provider,
        "uri": uri,
        "credential": "connector-x",
    }


def test_the_predict_action_decides_over_others() -> None:
    actions = [
        action("https://llm.internal.example/health", kind="health"),
        action("https://api.openai.com/v1/chat/completions"),
    ]
    assert connector_target({"model": "gpt-4o-mini"}, actions).provider == "openai"


@pytest.mark.parametrize(
    ("parameters", "actions", "message"),
    [
        ({"model": "x"}, [action("https://llm.internal.example/v1")], "'llm.internal.example'"),
        ({}, [action("https://api.openai.com/v1/chat/completions")], "set parameters.model"),
        ({"model": "x"}, [{"action_type": "predict"}], "no action with a url"),
        ({"model": "x"}, [], "no action with a url"),
        ({}, [action("https://${parameters.endpoint}/v1")], "names a parameter"),
        (
            {"model": "bad model!"},
            [action("https://api.openai.com/v1")],
            "of the form openai/<model>",
        ),
        ({"model": "x"}, [action("https:///v1")], "has no host"),
    ],
)
def test_what_is_not_a_known_cloud_model_is_refused_saying_why(
    parameters: dict[str, Any], actions: list[Any], message: str
) -> None:
    with pytest.raises(ConnectorError, match=None) as raised:
        connector_target(parameters, actions)
    assert message in str(raised.value)


def test_expand_leaves_unknown_names() -> None:
    assert expand("${parameters.a}/${parameters.b}", {"a": 1}) == "1/${parameters.b}"
