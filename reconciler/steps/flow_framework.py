"""The flow framework's step names, so its templates run here unchanged.

A remote model's steps act through our own Credential, cloud Model and Deployment steps:

- ``create_connector`` makes a Credential held in the state store instead of Git: its
  provider and model come from the host its actions call
  (reconciler.core.connectors), its secret is the first name under ``credential``, and
  every name there is checked by ``check_secret`` (a Credential's chain), so a missing
  secret stalls it with SecretNotFound. Its name is the ``connector_id``; the daemon's
  credential lookups find it there after the Credentials of Git
  (:func:`connector_credential`).
- ``register_remote_model`` runs ``add_model`` (a Model's chain) on a ``cloud_model``
  source of the connector's provider and model, authorised by the connector, and keeps a
  record of the model; with ``deploy: true`` it deploys it as ``deploy_model`` does.
- ``deploy_model`` of a remote model runs the cloud-model Deployment step
  (reconciler.steps.cloud_endpoints: the credential's secret resolves, the provider's
  endpoint is recorded) and gives its ``endpoint_url``; ``undeploy_model`` has nothing to
  stop (the provider serves it), as for a Deployment of a cloud model; ``delete_model``
  runs ``remove_model`` and refuses while the model is deployed; ``delete_connector``
  refuses while a model registered through it remains.
- ``register_local_pretrained_model`` -> ``add_model`` with a Hugging Face source
  (``name`` is the repo id, an optional leading ``huggingface/`` dropped);
  ``deploy_model`` / ``undeploy_model`` / ``delete_model`` of any model that is not a
  remote one go to the deployment and model steps registered before (``deploy_model``,
  ``undeploy_model``, ``remove_model``), the ``model_id`` given as the model's name and
  the Deployment's unless the inputs name them.

Ids are derived from the workflow and node, so a step re-run after a crash (steps are
idempotent) finds and updates the record it made instead of making another. Connector
``credential`` values are secret names; a record keeps only those names.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.core import connectors
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl
from reconciler.engine.outcomes import StalledStepError
from reconciler.engine.store import Store
from reconciler.steps import cloud_endpoints, input_values

CONNECTOR = "connector"
REMOTE_MODEL = "remote_model"
_HF_PREFIX = "huggingface/"
_TAG_COLOR = "#6b7280"


class FlowRecords(Protocol):
    """Where connector and remote-model records live (kind: connector | remote_model)."""

    def put(self, kind: str, record_id: str, record: Mapping[str, Any]) -> None: ...

    def get(self, kind: str, record_id: str) -> Mapping[str, Any] | None: ...

    def delete(self, kind: str, record_id: str) -> bool: ...


class StoreFlowRecords:
    """FlowRecords in the state store's key/value table (``flow/<kind>/<id>``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def _key(kind: str, record_id: str) -> str:
        return f"flow/{kind}/{record_id}"

    def put(self, kind: str, record_id: str, record: Mapping[str, Any]) -> None:
        self._store.set_value(self._key(kind, record_id), dict(record))

    def get(self, kind: str, record_id: str) -> Mapping[str, Any] | None:
        found = self._store.get_value(self._key(kind, record_id))
        return found if isinstance(found, Mapping) else None

    def delete(self, kind: str, record_id: str) -> bool:
        existed = self.get(kind, record_id) is not None
        if existed:
            self._store.set_value(self._key(kind, record_id), None)
        return existed


def connector_credential(records: FlowRecords, connector_id: str) -> Mapping[str, Any] | None:
    """The Credential spec (``provider``, ``secret``) a connector stands for, or None."""
    if not connector_id.startswith(f"{CONNECTOR}-"):
        return None
    record = records.get(CONNECTOR, connector_id)
    found = record.get("credential_spec") if record is not None else None
    return found if isinstance(found, Mapping) else None


def derived_id(prefix: str, ctx: StepContext) -> str:
    """A stable id for what node ``ctx.node_id`` of this workflow creates."""
    digest = hashlib.sha256(f"{ctx.object_key}\0{ctx.node_id}".encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


def _mapping(inputs: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = inputs.get(name)
    if not isinstance(value, Mapping):
        raise StalledStepError(f"input '{name}' must be a mapping, got {value!r}")
    return dict(value)


def _secret_names(credential: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, value in credential.items():
        if not isinstance(value, str) or not value:
            raise StalledStepError(
                f"credential '{key}' must name a secret on the daemon host (a string)"
            )
        names[str(key)] = value
    if not names:
        raise StalledStepError("input 'credential' names no secret")
    return names


@dataclasses.dataclass(frozen=True)
class DelegateSteps:
    """Our own step implementations the flow framework's steps act through (None: this
    daemon has none, and a step needing it stalls saying so)."""

    check_secret: StepImpl | None = None
    add_model: StepImpl | None = None
    deploy_model: StepImpl | None = None
    undeploy_model: StepImpl | None = None
    remove_model: StepImpl | None = None


class FlowFrameworkSteps:
    """The step implementations, bound to their records and to the steps they delegate to.

    ``credentials`` are the daemon's Credential specs, connectors included (what a
    remote model's deployment checks its credential against).
    """

    def __init__(
        self,
        *,
        records: FlowRecords,
        delegates: DelegateSteps | None = None,
        credentials: cloud_endpoints.CredentialFacts | None = None,
    ) -> None:
        self._records = records
        self._steps = delegates or DelegateSteps()
        self._credentials = credentials

    # -- connectors: Credentials kept in the state store --------------------------------

    async def create_connector(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        name = input_values.text(inputs, "name")
        actions = inputs.get("actions")
        if not isinstance(actions, list) or not actions:
            raise StalledStepError("input 'actions' must be a non-empty list of actions")
        parameters = _mapping(inputs, "parameters")
        secrets = _secret_names(_mapping(inputs, "credential"))
        try:
            target = connectors.connector_target(parameters, actions)
        except connectors.ConnectorError as exc:
            raise StalledStepError(f"connector {name!r}: {exc}") from None
        for key, secret in secrets.items():
            checked = await self._delegate(
                self._steps.check_secret, "check_secret", ctx, {"secret": secret}
            )
            if isinstance(checked, outcomes.Stalled):
                return outcomes.Stalled(
                    f"{checked.reason} (credential '{key}' of connector {name!r})"
                )
            if not isinstance(checked, outcomes.Done):
                return checked
        connector_id = derived_id(CONNECTOR, ctx)
        previous = self._records.get(CONNECTOR, connector_id) or {}
        primary = next(iter(secrets.values()))
        record = {
            "name": name,
            "description": str(inputs.get("description") or ""),
            "version": str(inputs.get("version")),
            "protocol": input_values.text(inputs, "protocol"),
            "parameters": parameters,
            "credential": secrets,
            "actions": actions,
            "backend_roles": list(inputs.get("backend_roles") or []),
            "access_mode": inputs.get("access_mode"),
            "add_all_backend_roles": bool(inputs.get("add_all_backend_roles", False)),
            "client_config": dict(inputs.get("client_config") or {}),
            "credential_spec": {"provider": target.provider, "secret": primary},
            "source": target.source(connector_id),
            "models": list(previous.get("models") or []),
            "owner": ctx.object_key,
        }
        self._records.put(CONNECTOR, connector_id, record)
        ctx.log.info(
            f"connector {connector_id} ({name}): Credential for {target.provider}, "
            f"model {target.uri}"
        )
        return outcomes.Done({"connector_id": connector_id})

    async def delete_connector(self, ctx: StepContext) -> outcomes.Outcome:
        connector_id = input_values.text(ctx.inputs, "connector_id")
        record = self._records.get(CONNECTOR, connector_id)
        using = [m for m in (record or {}).get("models") or [] if self._remote(m) is not None]
        if using:
            return outcomes.Failed(
                f"connector {connector_id} is used by model(s) {', '.join(using)}: delete "
                "them first"
            )
        if self._records.delete(CONNECTOR, connector_id):
            ctx.log.info(f"connector {connector_id} deleted")
        else:
            ctx.log.info(f"connector {connector_id} was already gone")
        return outcomes.Done({"connector_id": connector_id})

    # -- remote models: cloud Models and their Deployments ------------------------------

    async def register_remote_model(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        connector_id = input_values.text(inputs, "connector_id")
        connector = self._records.get(CONNECTOR, connector_id)
        if connector is None:
            raise StalledStepError(f"connector {connector_id} does not exist")
        source = connector.get("source")
        if not isinstance(source, Mapping):
            raise StalledStepError(
                f"connector {connector_id} was recorded by an older daemon and names no "
                "model source: provision its workflow again"
            )
        model_id = derived_id("model", ctx)
        added = await self._delegate(
            self._steps.add_model,
            "add_model",
            ctx,
            {
                "model": model_id,
                "modality": "llm",
                "description": str(inputs.get("description") or ""),
                "source": dict(source),
            },
        )
        if not isinstance(added, outcomes.Done):
            return added
        previous = self._records.get(REMOTE_MODEL, model_id) or {}
        record = {
            "name": input_values.text(inputs, "name"),
            "connector_id": connector_id,
            "description": str(inputs.get("description") or ""),
            "function_name": str(inputs.get("function_name") or "remote"),
            "model_group_id": inputs.get("model_group_id"),
            "interface": dict(inputs.get("interface") or {}),
            "guardrails": dict(inputs.get("guardrails") or {}),
            "source": dict(source),
            "deployed": bool(previous.get("deployed", False)),
            "endpoint_url": previous.get("endpoint_url"),
            "owner": ctx.object_key,
        }
        self._records.put(REMOTE_MODEL, model_id, record)
        models = [m for m in connector.get("models") or [] if m != model_id]
        self._records.put(CONNECTOR, connector_id, {**connector, "models": [*models, model_id]})
        outputs: dict[str, Any] = {"model_id": model_id, "register_model_status": "REGISTERED"}
        if inputs.get("deploy"):
            deployed = self._deploy_remote(ctx, model_id, record)
            if not isinstance(deployed, outcomes.Done):
                return deployed
            outputs.update(deployed.outputs, model_id=model_id)
        return outcomes.Done(outputs)

    def _deploy_remote(
        self, ctx: StepContext, model_id: str, remote: Mapping[str, Any]
    ) -> outcomes.Outcome:
        if self._credentials is None:
            return outcomes.Stalled(
                f"this daemon lends no Credential specs to '{ctx.step_type}': remote model "
                f"{model_id} cannot be deployed"
            )
        source = remote.get("source")
        if not isinstance(source, Mapping):
            return outcomes.Stalled(f"remote model {model_id} names no model source")
        done = cloud_endpoints.deploy_cloud(
            ctx,
            name=model_id,
            model=model_id,
            credential=str(remote.get("connector_id")),
            source=source,
            facts=self._credentials,
        )
        if not isinstance(done, outcomes.Done):
            return done
        endpoint_url = str(done.outputs["endpoint_url"])
        self._records.put(
            REMOTE_MODEL, model_id, {**remote, "deployed": True, "endpoint_url": endpoint_url}
        )
        return outcomes.Done(
            {"model_id": model_id, "deploy_model_status": "DEPLOYED", "endpoint_url": endpoint_url}
        )

    # -- deploy, undeploy, delete: of a remote model, or through our own steps -----------

    async def register_local_pretrained_model(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        repo = input_values.text(inputs, "name")
        repo = repo[len(_HF_PREFIX) :] if repo.startswith(_HF_PREFIX) else repo
        model_format = input_values.text(inputs, "model_format")
        name = repo.replace("/", "-").lower()
        mapped = {
            "model": name,
            "modality": "embedding",
            "source": {"provider_type": "hugging_face", "uri": repo, "revision": "main"},
            "description": str(inputs.get("description") or ""),
            "tags": [
                {"name": f"format:{model_format}", "color": _TAG_COLOR},
                {"name": f"version:{inputs['version']}", "color": _TAG_COLOR},
            ],
        }
        outcome = await self._delegate(self._steps.add_model, "add_model", ctx, mapped)
        if not isinstance(outcome, outcomes.Done):
            return outcome
        model_id = str(outcome.outputs.get("model_id") or name)
        outputs = {"model_id": model_id, "register_model_status": "REGISTERED"}
        if inputs.get("deploy"):
            deployed = await self._delegate(
                self._steps.deploy_model,
                "deploy_model",
                ctx,
                {"deployment": name, "model": model_id},
            )
            if not isinstance(deployed, outcomes.Done):
                return deployed
            outputs["deploy_model_status"] = "DEPLOYED"
        return outcomes.Done(outputs)

    async def deploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = ctx.inputs.get("model_id")
        remote = self._remote(model_id)
        if remote is not None and isinstance(model_id, str):
            return self._deploy_remote(ctx, model_id, remote)
        outcome = await self._delegate(
            self._steps.deploy_model, "deploy_model", ctx, _named(ctx.inputs), merge=True
        )
        if isinstance(outcome, outcomes.Done) and model_id is not None:
            return outcomes.Done(
                {**outcome.outputs, "model_id": model_id, "deploy_model_status": "DEPLOYED"}
            )
        return outcome

    async def undeploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = ctx.inputs.get("model_id")
        remote = self._remote(model_id)
        if remote is not None and isinstance(model_id, str):
            ctx.log.info(f"remote model {model_id}: served by its provider; nothing runs to stop")
            self._records.put(
                REMOTE_MODEL, model_id, {**remote, "deployed": False, "endpoint_url": None}
            )
            return outcomes.Done({"success": True})
        outcome = await self._delegate(
            self._steps.undeploy_model, "undeploy_model", ctx, _named(ctx.inputs), merge=True
        )
        if isinstance(outcome, outcomes.Done):
            return outcomes.Done({**outcome.outputs, "success": True})
        return outcome

    async def delete_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = input_values.text(ctx.inputs, "model_id")
        remote = self._remote(model_id)
        if remote is not None and remote.get("deployed"):
            return outcomes.Failed(f"model {model_id} is deployed: undeploy it first")
        given = {"model": model_id}
        if remote is not None and isinstance(remote.get("source"), Mapping):
            given["source"] = remote["source"]
        outcome = await self._delegate(self._steps.remove_model, "remove_model", ctx, given)
        if not isinstance(outcome, outcomes.Done):
            return outcome
        if remote is not None:
            self._records.delete(REMOTE_MODEL, model_id)
            self._forget_model(str(remote.get("connector_id")), model_id)
        return outcomes.Done({"model_id": model_id})

    def _forget_model(self, connector_id: str, model_id: str) -> None:
        connector = self._records.get(CONNECTOR, connector_id)
        if connector is not None:
            models = [m for m in connector.get("models") or [] if m != model_id]
            self._records.put(CONNECTOR, connector_id, {**connector, "models": models})

    def _remote(self, model_id: object) -> Mapping[str, Any] | None:
        if not isinstance(model_id, str) or not model_id:
            return None
        return self._records.get(REMOTE_MODEL, model_id)

    @staticmethod
    async def _delegate(
        impl: StepImpl | None,
        step_type: str,
        ctx: StepContext,
        inputs: Mapping[str, Any],
        *,
        merge: bool = False,
    ) -> outcomes.Outcome:
        if impl is None:
            return outcomes.Stalled(
                f"this daemon has no '{step_type}' step to carry out '{ctx.step_type}'"
            )
        given = {**ctx.inputs, **inputs} if merge else dict(inputs)
        return await impl(dataclasses.replace(ctx, inputs=given))


def _named(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The names our deployment steps read, from the flow framework's ``model_id`` where
    the inputs do not give them: the Model's (``model``) and the Deployment's
    (``deployment``)."""
    model_id = inputs.get("model_id")
    if model_id is None:
        return {}
    named = {"model": model_id, "deployment": model_id}
    return {key: value for key, value in named.items() if key not in inputs}


class _Registry(Protocol):
    """The parts of reconciler.steps.registry.StepRegistry used here."""

    def implementation(self, step_type: str) -> StepImpl | None: ...

    def register(self, step_type: str, impl: StepImpl, *, replace: bool = False) -> None: ...


def register_flow_framework_steps(
    registry: _Registry,
    *,
    records: FlowRecords,
    credentials: cloud_endpoints.CredentialFacts | None = None,
) -> None:
    """Register the flow framework's step names into ``registry``.

    Call it after the model, deployment and Credential steps are registered:
    ``deploy_model`` and ``undeploy_model`` are then wrapped (replaced by versions that
    also take a ``model_id``), and every type without a step of its own here delegates to
    them. ``credentials``: the daemon's Credential specs, connectors included
    (:func:`connector_credential`), which a remote model's deployment checks.
    """
    steps = FlowFrameworkSteps(
        records=records,
        delegates=DelegateSteps(
            check_secret=registry.implementation("check_secret"),
            add_model=registry.implementation("add_model"),
            deploy_model=registry.implementation("deploy_model"),
            undeploy_model=registry.implementation("undeploy_model"),
            remove_model=registry.implementation("remove_model"),
        ),
        credentials=credentials,
    )
    own: dict[str, StepImpl] = {
        "create_connector": steps.create_connector,
        "delete_connector": steps.delete_connector,
        "register_remote_model": steps.register_remote_model,
        "register_local_pretrained_model": steps.register_local_pretrained_model,
        "deploy_model": steps.deploy_model,
        "undeploy_model": steps.undeploy_model,
        "delete_model": steps.delete_model,
    }
    for step_type, impl in own.items():
        registry.register(step_type, impl, replace=True)
