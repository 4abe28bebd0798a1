"""The parts of a daemon that flow-framework steps run on, all real: the step registry
with the Credential, model and flow steps, a secrets folder, a model cache, a state store
and the durable executor (no cluster: a remote model's deployment runs nothing)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from reconciler.core.chains import Chain
from reconciler.daemon.endpoint_facts import DaemonEndpointFacts
from reconciler.drivers.secrets import SecretResolver
from reconciler.engine.context import StepServices
from reconciler.engine.executor import Executor
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.store import Store
from reconciler.steps import bookkeeping, models
from reconciler.steps.flow_framework import (
    StoreFlowRecords,
    connector_credential,
    register_flow_framework_steps,
)
from reconciler.steps.registry import default_registry

SECRET_NAME = "openai-api-key"
SECRET_VALUE = "sk-flow-test-0123456789"


@dataclasses.dataclass
class Daemonish:
    """The parts of a daemon the flow steps run on: real steps, secrets and model cache."""

    store: Store
    records: StoreFlowRecords
    executor: Executor
    secrets_dir: Path
    model_cache: Path

    async def run(self, chain: Chain) -> ExecutionRecord:
        return await self.executor.wait(self.executor.submit(chain))

    async def outputs(self, chain: Chain) -> dict[str, Mapping[str, Any]]:
        record = await self.run(chain)
        assert record.status == "succeeded", record.error
        return {s.node_id: dict(s.outputs or {}) for s in self.store.get_steps(record.id)}


@contextlib.asynccontextmanager
async def flow_daemon(tmp_path: Path) -> AsyncIterator[Daemonish]:
    store = Store(tmp_path / "state")
    records = StoreFlowRecords(store)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / SECRET_NAME).write_text(SECRET_VALUE)
    resolver = SecretResolver(secrets_dir, credentials_directory=None, environ={})
    facts = DaemonEndpointFacts(
        desired=dict,
        status_of=lambda key: None,
        model_cache=tmp_path / "models",
        connectors=lambda name: connector_credential(records, name),
    )
    registry = default_registry()
    registry.register("check_secret", bookkeeping.check_secret)
    models.register_model_steps(registry)
    register_flow_framework_steps(registry, records=records, credentials=facts)
    model_services = models.ModelServices(
        cache_dir=tmp_path / "models",
        credentials=models.SecretStoreCredentials(
            resolver=resolver, secret_names=facts.secret_name
        ),
    )
    services = StepServices(
        extra={bookkeeping.SECRETS_SERVICE: resolver, models.MODEL_SERVICE: model_services}
    )
    executor = Executor(store=store, registry=registry, services=services)
    await executor.start()
    try:
        yield Daemonish(store, records, executor, secrets_dir, tmp_path / "models")
    finally:
        await executor.shutdown()
        store.close()
