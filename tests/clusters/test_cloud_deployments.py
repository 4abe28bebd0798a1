"""Cloud-model Deployments: no cluster; the credential's secret must resolve on the host,
and the provider's endpoint is recorded. The secret store is the daemon's real resolver
over a secrets folder in tmp."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.core import cloud_providers
from reconciler.core.render import cloud_endpoints
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers.secrets import SecretResolver
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps import bookkeeping
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps

SECRET_VALUE = "sk-cloud-test-never-printed"


class Facts:
    def __init__(self, source: Mapping[str, Any], *, ready: bool = True) -> None:
        self.source = source
        self.ready = ready

    def model(self, name: str) -> ModelFacts | None:
        return ModelFacts(path=None, source=self.source) if self.ready else None

    def template(self, name: str) -> Mapping[str, Any] | None:
        return None

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        known = {
            "openai-prod": {"provider": "openai", "secret": "openai-api-key"},
            "azure": {"provider": "azure_openai", "secret": "azure-key"},
            "missing": {"provider": "openai", "secret": "not-there"},
        }
        return known.get(name)


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


OPENAI = {"provider_type": "cloud_model", "provider": "openai", "uri": "openai/gpt-4o-mini"}
SPEC: dict[str, Any] = {
    "deployment": "gpt-mini",
    "model": "gpt-4o-mini",
    "credential": "openai-prod",
    "endpoint_name": "test endpoint",
    "deploy_config": {
        "concurrent_requests": 10,
        "avg_sequence_length": 100,
        "avg_context_length": 102,
    },
}


def context(step_type: str, inputs: dict[str, Any], secrets: Path) -> StepContext:
    resolver = SecretResolver(secrets, credentials_directory=None, environ={})
    return StepContext(
        execution_id="e1",
        node_id=step_type,
        step_type=step_type,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/gpt-mini",
        revision="r1",
        cluster=None,
        log=StepLog(prefix=step_type),
        services=StepServices(extra={bookkeeping.SECRETS_SERVICE: resolver}),
    )


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "openai-api-key").write_text(SECRET_VALUE + "\n")
    (folder / "azure-key").write_text("azure-value\n")
    return folder


def steps_for(facts: Facts) -> Registry:
    steps = Registry()
    register_endpoint_steps(steps, drivers={}, facts=facts)
    return steps


async def test_a_cloud_model_records_the_provider_endpoint_without_a_cluster(
    secrets: Path,
) -> None:
    steps = steps_for(Facts(OPENAI))

    done = await steps["deploy_model"](context("deploy_model", dict(SPEC), secrets))

    assert isinstance(done, outcomes.Done), done
    assert done.outputs["endpoint_url"] == "https://api.openai.com/v1"
    status = done.outputs["status"]
    assert status == {
        "endpoint_url": "https://api.openai.com/v1",
        "provider": "openai",
        "provider_model": "gpt-4o-mini",
        "credential": "openai-prod",
        "cluster": None,
    }
    assert SECRET_VALUE not in repr(done)

    removed = await steps["undeploy_model"](context("undeploy_model", dict(SPEC), secrets))
    assert removed == outcomes.Done({"removed": False})


async def test_the_uri_parts_make_the_host_of_azure(secrets: Path) -> None:
    azure = {
        "provider_type": "cloud_model",
        "provider": "azure_openai",
        "uri": "azure_openai/my-resource/gpt-4o",
    }
    done = await steps_for(Facts(azure))["deploy_model"](
        context("deploy_model", {**SPEC, "credential": "azure"}, secrets)
    )
    assert isinstance(done, outcomes.Done), done
    assert done.outputs["endpoint_url"] == "https://my-resource.openai.azure.com/openai/v1"
    assert done.outputs["status"]["provider_model"] == "gpt-4o"


async def test_a_missing_secret_stalls_with_secret_not_found(secrets: Path) -> None:
    stalled = await steps_for(Facts(OPENAI))["deploy_model"](
        context("deploy_model", {**SPEC, "credential": "missing"}, secrets)
    )
    assert isinstance(stalled, outcomes.Stalled)
    assert stalled.reason.startswith("SecretNotFound: Deployment/gpt-mini: ")
    assert "'not-there'" in stalled.reason and str(secrets) in stalled.reason


async def test_credential_problems_are_named(secrets: Path) -> None:
    steps = steps_for(Facts(OPENAI))
    unknown = await steps["deploy_model"](
        context("deploy_model", {**SPEC, "credential": "nope"}, secrets)
    )
    assert unknown == outcomes.Stalled("Deployment/gpt-mini: Credential/nope does not exist")
    other = await steps["deploy_model"](
        context("deploy_model", {**SPEC, "credential": "azure"}, secrets)
    )
    assert isinstance(other, outcomes.Stalled)
    assert "is for provider 'azure_openai', but Model/gpt-4o-mini is served by 'openai'" in (
        other.reason
    )
    none = await steps["deploy_model"](
        context("deploy_model", {k: v for k, v in SPEC.items() if k != "credential"}, secrets)
    )
    assert isinstance(none, outcomes.Stalled) and "set spec.credential" in none.reason


async def test_a_cloud_deployment_waits_for_its_model(secrets: Path) -> None:
    waiting = await steps_for(Facts(OPENAI, ready=False))["deploy_model"](
        context("deploy_model", dict(SPEC), secrets)
    )
    assert isinstance(waiting, outcomes.Retry) and waiting.reason.startswith("WaitingForModel")


def test_every_catalogued_provider_has_an_endpoint_from_its_example() -> None:
    assert set(cloud_endpoints.BASE_URLS) == set(cloud_providers.PROVIDERS)
    for name, provider in cloud_providers.PROVIDERS.items():
        found = cloud_endpoints.cloud_endpoint(provider=name, uri=provider.example)
        assert found.endpoint_url.startswith("https://") and "{" not in found.endpoint_url
        assert found.model and found.model in provider.example
    with pytest.raises(RenderError, match="is not of the form openai/<model>"):
        cloud_endpoints.cloud_endpoint(provider="openai", uri="gpt-4o")
