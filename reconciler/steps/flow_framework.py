"""The flow framework's step names, so its templates run here unchanged.

``create_connector`` / ``delete_connector`` keep connector records, and
``register_remote_model`` registers a model served through one; these stand alone and
keep their records through :class:`FlowRecords` (the daemon lends
:class:`StoreFlowRecords`, over the state store). The rest map onto our own steps:

- ``register_local_pretrained_model`` -> ``add_model`` with a Hugging Face source
  (``name`` is the repo id, an optional leading ``huggingface/`` dropped);
- ``deploy_model`` / ``undeploy_model`` / ``delete_model`` with the ``model_id`` of a
  remote model act on its record; with any other model_id they go to the deployment and
  model steps registered before (``deploy_model``, ``undeploy_model``, ``remove_model``),
  with ``model_id`` given as their ``model`` / ``name`` input.

Ids are derived from the workflow and node, so a step re-run after a crash (steps are
idempotent) finds and updates the record it made instead of making another. Connector
``credential`` values are secret names, resolved when a connector is used; a record
keeps only those names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl
from reconciler.engine.outcomes import StalledStepError
from reconciler.engine.store import Store
from reconciler.steps import input_values

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
    return names


class FlowFrameworkSteps:
    """The step implementations, bound to their records and to the steps they delegate to."""

    def __init__(
        self,
        *,
        records: FlowRecords,
        add_model: StepImpl | None = None,
        deploy_model: StepImpl | None = None,
        undeploy_model: StepImpl | None = None,
        remove_model: StepImpl | None = None,
    ) -> None:
        self._records = records
        self._add_model = add_model
        self._deploy_model = deploy_model
        self._undeploy_model = undeploy_model
        self._remove_model = remove_model

    # -- standing alone ----------------------------------------------------------------

    async def create_connector(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        actions = inputs.get("actions")
        if not isinstance(actions, list) or not actions:
            raise StalledStepError("input 'actions' must be a non-empty list of actions")
        connector_id = derived_id("connector", ctx)
        record = {
            "name": input_values.text(inputs, "name"),
            "description": str(inputs.get("description") or ""),
            "version": str(inputs.get("version")),
            "protocol": input_values.text(inputs, "protocol"),
            "parameters": _mapping(inputs, "parameters"),
            "credential": _secret_names(_mapping(inputs, "credential")),
            "actions": actions,
            "backend_roles": list(inputs.get("backend_roles") or []),
            "access_mode": inputs.get("access_mode"),
            "add_all_backend_roles": bool(inputs.get("add_all_backend_roles", False)),
            "client_config": dict(inputs.get("client_config") or {}),
            "owner": ctx.object_key,
        }
        self._records.put(CONNECTOR, connector_id, record)
        ctx.log.info(f"connector {connector_id} ({record['name']}) recorded")
        return outcomes.Done({"connector_id": connector_id})

    async def delete_connector(self, ctx: StepContext) -> outcomes.Outcome:
        connector_id = input_values.text(ctx.inputs, "connector_id")
        if self._records.delete(CONNECTOR, connector_id):
            ctx.log.info(f"connector {connector_id} deleted")
        else:
            ctx.log.info(f"connector {connector_id} was already gone")
        return outcomes.Done({"connector_id": connector_id})

    async def register_remote_model(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        connector_id = input_values.text(inputs, "connector_id")
        if self._records.get(CONNECTOR, connector_id) is None:
            raise StalledStepError(f"connector {connector_id} does not exist")
        model_id = derived_id("model", ctx)
        deploy = bool(inputs.get("deploy", False))
        self._records.put(
            REMOTE_MODEL,
            model_id,
            {
                "name": input_values.text(inputs, "name"),
                "connector_id": connector_id,
                "description": str(inputs.get("description") or ""),
                "function_name": str(inputs.get("function_name") or "remote"),
                "model_group_id": inputs.get("model_group_id"),
                "interface": dict(inputs.get("interface") or {}),
                "guardrails": dict(inputs.get("guardrails") or {}),
                "deployed": deploy,
                "owner": ctx.object_key,
            },
        )
        outputs = {"model_id": model_id, "register_model_status": "REGISTERED"}
        if deploy:
            outputs["deploy_model_status"] = "DEPLOYED"
        return outcomes.Done(outputs)

    # -- mapped onto our steps ---------------------------------------------------------

    async def register_local_pretrained_model(self, ctx: StepContext) -> outcomes.Outcome:
        inputs = ctx.inputs
        repo = input_values.text(inputs, "name")
        repo = repo[len(_HF_PREFIX) :] if repo.startswith(_HF_PREFIX) else repo
        model_format = input_values.text(inputs, "model_format")
        mapped = {
            "name": repo.replace("/", "-").lower(),
            "modality": "embedding",
            "source": {"provider_type": "hugging_face", "uri": repo, "revision": "main"},
            "description": str(inputs.get("description") or ""),
            "tags": [
                {"name": f"format:{model_format}", "color": _TAG_COLOR},
                {"name": f"version:{inputs['version']}", "color": _TAG_COLOR},
            ],
        }
        outcome = await self._delegate(self._add_model, "add_model", ctx, mapped)
        if not isinstance(outcome, outcomes.Done):
            return outcome
        model_id = str(outcome.outputs.get("model_id") or mapped["name"])
        outputs = {"model_id": model_id, "register_model_status": "REGISTERED"}
        if inputs.get("deploy"):
            deployed = await self._delegate(
                self._deploy_model, "deploy_model", ctx, {"name": mapped["name"], "model": model_id}
            )
            if not isinstance(deployed, outcomes.Done):
                return deployed
            outputs["deploy_model_status"] = "DEPLOYED"
        return outcomes.Done(outputs)

    async def deploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = ctx.inputs.get("model_id")
        remote = self._remote(model_id)
        if remote is not None and isinstance(model_id, str):
            self._records.put(REMOTE_MODEL, model_id, {**remote, "deployed": True})
            return outcomes.Done({"model_id": model_id, "deploy_model_status": "DEPLOYED"})
        extra = {"model": model_id} if model_id is not None and "model" not in ctx.inputs else {}
        outcome = await self._delegate(self._deploy_model, "deploy_model", ctx, extra, merge=True)
        if isinstance(outcome, outcomes.Done) and model_id is not None:
            return outcomes.Done(
                {**outcome.outputs, "model_id": model_id, "deploy_model_status": "DEPLOYED"}
            )
        return outcome

    async def undeploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = ctx.inputs.get("model_id")
        remote = self._remote(model_id)
        if remote is not None and isinstance(model_id, str):
            self._records.put(REMOTE_MODEL, model_id, {**remote, "deployed": False})
            return outcomes.Done({"success": True})
        extra = {"name": model_id} if model_id is not None and "name" not in ctx.inputs else {}
        outcome = await self._delegate(
            self._undeploy_model, "undeploy_model", ctx, extra, merge=True
        )
        if isinstance(outcome, outcomes.Done):
            return outcomes.Done({**outcome.outputs, "success": True})
        return outcome

    async def delete_model(self, ctx: StepContext) -> outcomes.Outcome:
        model_id = input_values.text(ctx.inputs, "model_id")
        remote = self._remote(model_id)
        if remote is not None:
            if remote.get("deployed"):
                return outcomes.Failed(f"model {model_id} is deployed: undeploy it first")
            self._records.delete(REMOTE_MODEL, model_id)
            return outcomes.Done({"model_id": model_id})
        outcome = await self._delegate(self._remove_model, "remove_model", ctx, {"name": model_id})
        if isinstance(outcome, outcomes.Done):
            return outcomes.Done({"model_id": model_id})
        return outcome

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
                f"this daemon has no '{step_type}' step to carry out '{ctx.step_type}' "
                "for a model that is not a remote model"
            )
        given = {**ctx.inputs, **inputs} if merge else dict(inputs)
        return await impl(_with_inputs(ctx, given))


def _with_inputs(ctx: StepContext, inputs: Mapping[str, Any]) -> StepContext:
    return StepContext(
        execution_id=ctx.execution_id,
        node_id=ctx.node_id,
        step_type=ctx.step_type,
        inputs=inputs,
        attempt=ctx.attempt,
        params=ctx.params,
        object_key=ctx.object_key,
        revision=ctx.revision,
        cluster=ctx.cluster,
        log=ctx.log,
        services=ctx.services,
    )


class _Registry(Protocol):
    """The parts of reconciler.steps.registry.StepRegistry used here."""

    def implementation(self, step_type: str) -> StepImpl | None: ...

    def register(self, step_type: str, impl: StepImpl, *, replace: bool = False) -> None: ...


def register_flow_framework_steps(registry: _Registry, *, records: FlowRecords) -> None:
    """Register the flow framework's step names into ``registry``.

    Call it after the model and deployment steps are registered: ``deploy_model`` and
    ``undeploy_model`` are then wrapped (replaced by versions that also take a
    ``model_id``), and every type without a step of its own here delegates to them.
    """
    steps = FlowFrameworkSteps(
        records=records,
        add_model=registry.implementation("add_model"),
        deploy_model=registry.implementation("deploy_model"),
        undeploy_model=registry.implementation("undeploy_model"),
        remove_model=registry.implementation("remove_model"),
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
