"""deploy_model for a cloud Model on a local Cluster: a gateway process, the key only in it.

The real steps drive a real LocalClusterDriver on a tmp state dir; the secret store is
the daemon's resolver over a tmp secrets folder and the provider a loopback double.
What cannot run (no gateway template, a secret that does not resolve) stalls before any
process starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.secrets import SecretResolver
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl, StepLog, StepServices
from reconciler.steps import bookkeeping
from reconciler.steps.endpoints import ModelFacts, register_endpoint_steps
from tests.gateway.fake_provider import FakeProvider, running

KEY = "sk-step-test-9c2e41d07b"
OPENAI = {"provider_type": "cloud_model", "provider": "openai", "uri": "openai/gpt-4o-mini"}
LOAD = {"concurrent_requests": 4, "avg_sequence_length": 10, "avg_context_length": 10}


class Facts:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def model(self, name: str) -> ModelFacts | None:
        return ModelFacts(path=None, source=OPENAI)

    def template(self, name: str) -> Mapping[str, Any] | None:
        return None  # built-in templates only

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return {"driver": "local"} if name == "here" else None

    def credential(self, name: str) -> Mapping[str, Any] | None:
        known = {
            "proxied": {"provider": "openai", "secret": "openai-key", "base_url": self.base_url},
            "missing": {"provider": "openai", "secret": "not-there"},
        }
        return known.get(name)


class Registry(dict[str, StepImpl]):
    def register(self, step_type: str, impl: StepImpl) -> None:
        self[step_type] = impl


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async for started in running(KEY):
        yield started


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "openai-key").write_text(KEY + "\n")
    return folder


def _context(step: str, inputs: dict[str, Any], secrets: Path) -> StepContext:
    resolver = SecretResolver(secrets, credentials_directory=None, environ={})
    return StepContext(
        execution_id="e1",
        node_id=step,
        step_type=step,
        inputs=inputs,
        attempt=1,
        params={},
        object_key="Deployment/chat",
        revision="r1",
        cluster="here",
        log=StepLog(prefix=step),
        services=StepServices(
            extra={bookkeeping.SECRETS_SERVICE: resolver}, readiness_poll_interval_s=0.05
        ),
    )


def _spec(**changes: Any) -> dict[str, Any]:
    spec = {"deployment": "chat", "model": "gpt-4o-mini", "credential": "proxied",
            "cluster": "here", "endpoint_name": "chat", "deploy_config": LOAD,
            "ready_timeout_s": 30}  # fmt: skip
    spec.update(changes)
    return {k: v for k, v in spec.items() if v is not None}


async def test_the_gateway_runs_with_the_key_and_nothing_else_holds_it(
    make_driver: Callable[[], LocalClusterDriver], provider: FakeProvider, secrets: Path
) -> None:
    driver = make_driver()
    driver._secrets = SecretResolver(secrets).resolve  # as the daemon builds its driver
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=Facts(provider.base_url))

    done = await steps["deploy_model"](_context("deploy_model", _spec(), secrets))

    assert isinstance(done, outcomes.Done), done
    assert KEY not in repr(done)
    status = done.outputs["status"]
    assert status["gateway"] == "cloud-gateway" and status["upstream_url"] == provider.base_url
    url = done.outputs["endpoint_url"]
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/chat/completions", json=body) as reply,
    ):
        assert reply.status == 200 and KEY not in await reply.text()
    assert provider.seen[0].authorization == f"Bearer {KEY}"
    record = driver._registry.endpoints["chat"]
    assert KEY not in " ".join(
        record.revision.argv
    )  # argv is in the log file and `ps`; the key is not
    assert record.revision.secret_env == {"RECONCILER_GATEWAY_API_KEY": "openai-key"}
    assert KEY not in (driver._registry.path.read_text())  # its name is stored, never its value

    removed = await steps["undeploy_model"](_context("undeploy_model", _spec(), secrets))
    assert removed == outcomes.Done({"removed": True})


async def test_what_cannot_run_stalls_before_any_process(
    make_driver: Callable[[], LocalClusterDriver], provider: FakeProvider, secrets: Path
) -> None:
    driver = make_driver()
    steps = Registry()
    register_endpoint_steps(steps, drivers={"here": driver}, facts=Facts(provider.base_url))

    missing = await steps["deploy_model"](
        _context("deploy_model", _spec(credential="missing"), secrets)
    )
    assert isinstance(missing, outcomes.Stalled)
    assert missing.reason.startswith("SecretNotFound: Deployment/chat:")
    no_gateway = await steps["deploy_model"](
        _context("deploy_model", _spec(template="llama-cpp"), secrets)
    )
    assert isinstance(no_gateway, outcomes.Stalled)
    assert "DeploymentTemplate/llama-cpp is no gateway template" in no_gateway.reason
    assert not (await driver.observe_endpoint("chat")).exists


async def test_without_a_cluster_the_credentials_base_url_is_the_endpoint(
    provider: FakeProvider, secrets: Path
) -> None:
    steps = Registry()
    register_endpoint_steps(steps, drivers={}, facts=Facts(provider.base_url))
    done = await steps["deploy_model"](_context("deploy_model", _spec(cluster=None), secrets))
    assert isinstance(done, outcomes.Done), done
    assert done.outputs["endpoint_url"] == provider.base_url
