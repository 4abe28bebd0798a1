"""Deployment and Cluster steps over the cluster driver interface.

``deploy_model`` sizes the endpoint (roofline, pinned by ``workers``), renders the
template, builds the runtime virtualenv a built-in local template needs, applies the
endpoint and waits until its driver says it is ready; ``undeploy_model`` removes it,
``scale_deployment`` changes its workers, ``check_cluster`` observes a cluster and
``release_cluster`` forgets one. Each returns its status fields under ``status`` for the
daemon to merge into the object's status file. What the steps need of the daemon (the
Model's facts, repo templates, cluster and credential specs) comes through the small
EndpointFacts Protocol; drivers come by cluster name.

On a kubernetes Cluster the Deployment and Service are rendered by core and rolled out by
the driver (``strategy: green``: the new revision's workers are ready before the Service
switches to them); drift found on the live objects is re-applied and listed under the
status's ``drift``. A cloud-model Deployment runs nothing: its step lives in
reconciler.steps.cloud_endpoints (the credential's secret resolves, the provider's
endpoint is recorded); with a cluster it runs a gateway there instead
(reconciler.steps.cloud_gateway), rolled out like any endpoint. A hugging_face Model on
a local Cluster is served from the shared model cache: its files are downloaded there and
scanned first (steps.models.hub_files_for_endpoint), and a blocking finding stalls the
Deployment with ``ScanFailed`` before any process starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pydantic

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.render import autoscaling as render_autoscaling
from reconciler.core.render import cache as render_cache
from reconciler.core.render import kubernetes as render_k8s
from reconciler.core.render import llm_server
from reconciler.core.render.local_command import (
    needs_runtime,
    needs_server_config,
    render_local_command,
    server_config,
)
from reconciler.core.render.placeholders import RenderError
from reconciler.core.sizing import gpus, roofline
from reconciler.drivers import runtimes, server_configs
from reconciler.drivers.clusters import protocol
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl
from reconciler.specs.deployment import DeploymentSpec
from reconciler.specs.template import DeploymentTemplateSpec
from reconciler.steps import adapters as lora
from reconciler.steps import cloud_endpoints as cloud
from reconciler.steps import cloud_gateway, model_cache, models, scaling

OWNER_LABEL = "reconciler/deployment"
DEFAULT_READY_TIMEOUT_S = 900.0
DEFAULT_NAMESPACE = "reconciler"
HUGGING_FACE = "hugging_face"
WAITING_FOR_MODEL_RETRY_S = 10.0
_STEP_INPUTS = frozenset({"deployment", "ready_timeout_s"})


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What a Ready Model tells a deployment: where its files are and its shape."""

    path: str | None
    parameters: int | str | None = None
    dtype: str | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    blocked: str | None = None
    """Why no Deployment may use this Model (a failed security scan), if so."""
    source: Mapping[str, Any] | None = None
    """The Model's ``spec.source`` (``provider_type``, ``uri``, ...), when known."""
    cache: Mapping[str, Any] | None = None
    """The Model's status ``cache``: per Cluster, where its pre-pulled files are."""

    @property
    def provider_type(self) -> str | None:
        found = (self.source or {}).get("provider_type")
        return found if isinstance(found, str) else None


class EndpointFacts(Protocol):
    """The daemon's knowledge the deployment steps read."""

    def model(self, name: str) -> ModelFacts | None:
        """The Model's facts once it is Ready, else None."""
        ...

    def template(self, name: str) -> Mapping[str, Any] | None:
        """A DeploymentTemplate spec of the repo (None: not in the repo)."""
        ...

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        """A Cluster spec (None: no such Cluster)."""
        ...

    def credential(self, name: str) -> Mapping[str, Any] | None:
        """A Credential spec (None: no such Credential)."""
        ...


class StepRegistryLike(Protocol):
    def register(self, step_type: str, impl: StepImpl) -> None: ...


def register_endpoint_steps(
    registry: StepRegistryLike,
    *,
    drivers: Mapping[str, protocol.ClusterDriver],
    facts: EndpointFacts,
    runtime_manager: runtimes.RuntimeManager | None = None,
    configs: server_configs.ServerConfigs | None = None,
) -> None:
    """Register the five steps; ``drivers`` maps a Cluster's name to its driver.

    ``configs`` keeps the config files local servers read (llama-cpp-python's); by
    default under the runtime manager's folder, ``server-configs/``.
    """
    if configs is None and runtime_manager is not None:
        configs = server_configs.ServerConfigs(runtime_manager.root / "server-configs")
    steps = _EndpointSteps(
        drivers=drivers, facts=facts, runtime_manager=runtime_manager, configs=configs
    )
    registry.register("deploy_model", steps.deploy_model)
    registry.register("undeploy_model", steps.undeploy_model)
    registry.register("scale_deployment", steps.scale_deployment)
    registry.register("check_cluster", steps.check_cluster)
    registry.register("release_cluster", steps.release_cluster)
    model_cache.register_cache_steps(registry, drivers=drivers, facts=facts)


class _Stop(Exception):
    """Ends a step early with the outcome it carries."""

    def __init__(self, outcome: outcomes.Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


def _driver_outcome(exc: protocol.ClusterError, *, what: str) -> outcomes.Outcome:
    text = f"{what}: {exc}"
    reason, _, rest = str(exc).partition(": ")
    if reason == "SecretNotFound":
        return outcomes.Stalled(f"SecretNotFound: {what}: {rest}")
    if isinstance(exc, protocol.ClusterAuthError | protocol.InvalidEndpointError):
        return outcomes.Stalled(text)
    if isinstance(exc, protocol.EndpointConflictError):
        return outcomes.Stalled(text)
    return outcomes.Retry(text)


@dataclasses.dataclass(frozen=True)
class _EndpointSteps:
    drivers: Mapping[str, protocol.ClusterDriver]
    facts: EndpointFacts
    runtime_manager: runtimes.RuntimeManager | None
    configs: server_configs.ServerConfigs | None = None

    # --- helpers ---------------------------------------------------------------------

    def _driver(self, cluster: str | None, *, who: str) -> protocol.ClusterDriver:
        if cluster is None:
            raise _Stop(
                outcomes.Stalled(
                    f"{who} names no cluster; cloud-model deployments are not run by the "
                    "cluster steps"
                )
            )
        try:
            driver = self.drivers.get(cluster)
        except protocol.ClusterError as exc:
            raise _Stop(_driver_outcome(exc, what=f"{who}: Cluster/{cluster}")) from None
        if driver is None:
            raise _Stop(outcomes.Stalled(f"{who}: no driver for Cluster/{cluster}"))
        return driver

    def _deployment(self, ctx: StepContext) -> tuple[str, DeploymentSpec]:
        name = str(ctx.inputs.get("deployment") or "")
        fields = {key: value for key, value in ctx.inputs.items() if key not in _STEP_INPUTS}
        try:
            return name, DeploymentSpec.model_validate(fields)
        except pydantic.ValidationError as exc:
            raise _Stop(outcomes.Stalled(f"Deployment/{name}: invalid spec: {exc}")) from exc

    def _template(self, name: str) -> DeploymentTemplateSpec:
        raw = self.facts.template(name) or BUILTIN_TEMPLATES.get(name)
        if raw is None:
            raise _Stop(outcomes.Stalled(f"DeploymentTemplate/{name} does not exist"))
        try:
            return DeploymentTemplateSpec.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise _Stop(outcomes.Stalled(f"DeploymentTemplate/{name}: {exc}")) from exc

    def _sizing(
        self,
        *,
        spec: DeploymentSpec,
        model: ModelFacts,
        template: DeploymentTemplateSpec,
        gpu_name: str | None,
        max_gpus: int | None = None,
    ) -> roofline.SizingResult:
        gpu = gpus.find_gpu(gpu_name) if gpu_name else None
        load = roofline.Load.from_deploy_config(
            spec.deploy_config.model_dump(), defaults=template.defaults.model_dump()
        )
        if gpu_name and gpu is None:
            note = f"GPU type {gpu_name!r} is not in the sizing catalogue: not estimated"
            return roofline.SizingResult(
                gpu_name,
                template.resources.gpus_per_worker or 1,
                spec.workers or 1,
                True,
                None,
                notes=(note,),
            )
        if gpu is not None and (model.parameters is None or model.dtype is None):
            note = "the Model has no parameters or dtype: not estimated"
            return roofline.SizingResult(
                gpu.name,
                template.resources.gpus_per_worker or 1,
                spec.workers or 1,
                True,
                None,
                notes=(note,),
            )
        shape = roofline.ModelShape(
            parameters=roofline.parse_parameters(model.parameters or 1),
            dtype=model.dtype or "bfloat16",
            layers=model.layers,
            kv_heads=model.kv_heads,
            head_dim=model.head_dim,
        )
        return roofline.size(
            model=shape,
            gpu=gpu,
            load=load,
            workers=spec.workers,
            gpus_per_worker=template.resources.gpus_per_worker if gpu is not None else None,
            max_gpus=max_gpus,
        )

    async def _gpu_type(
        self, driver: protocol.ClusterDriver, cluster: Mapping[str, Any]
    ) -> tuple[str | None, str | None]:
        """(GPU type for sizing, node product label to pin pods to, if observed).

        The Cluster's declared ``gpu.type`` wins; else the type of the most free GPUs the
        cluster reports (a ``nvidia.com/gpu.product`` value, which also pins the pods).
        """
        declared = cluster.get("gpu")
        if isinstance(declared, Mapping) and isinstance(declared.get("type"), str):
            return str(declared["type"]), None
        try:
            found = await driver.inventory()
        except protocol.ClusterError:
            return None, None
        known = [count for count in found.gpus.values() if count.gpu_type != "unknown"]
        if not known:
            return None, None
        best = max(known, key=lambda count: (count.free, count.total, count.gpu_type))
        return best.gpu_type, best.gpu_type

    async def _command(
        self,
        ctx: StepContext,
        *,
        name: str,
        spec: DeploymentSpec,
        template_name: str,
        template: DeploymentTemplateSpec,
        model_path: str,
        adapters: tuple[llm_server.AdapterFiles, ...] = (),
    ) -> tuple[tuple[str, ...], dict[str, str], str | None]:
        """(argv, env, the server config file it reads if any)."""
        runtime_bin: str | None = None
        if needs_runtime(template):
            if self.runtime_manager is None:
                raise _Stop(outcomes.Failed("no runtime manager was given to the deploy steps"))
            try:
                built = await self.runtime_manager.ensure(template_name, progress=ctx.log.info)
            except runtimes.UnknownRuntimeError as exc:
                raise _Stop(outcomes.Stalled(f"DeploymentTemplate/{template_name}: {exc}")) from exc
            except runtimes.RuntimeBuildError as exc:
                raise _Stop(outcomes.Retry(f"runtime {template_name}: {exc}")) from exc
            runtime_bin = str(built)
        try:
            config_path = self._server_config(
                name=name,
                spec=spec,
                template_name=template_name,
                template=template,
                model_path=model_path,
                adapters=adapters,
            )
            rendered = render_local_command(
                template_name=template_name,
                template=template,
                deployment_name=name,
                deployment=spec,
                model_path=model_path,
                runtime_bin=runtime_bin,
                server_config_path=config_path,
                adapters=adapters,
            )
        except RenderError as exc:
            raise _Stop(outcomes.Stalled(str(exc))) from exc
        return rendered.argv, rendered.env, config_path

    def _server_config(
        self,
        *,
        name: str,
        spec: DeploymentSpec,
        template_name: str,
        template: DeploymentTemplateSpec,
        model_path: str,
        adapters: tuple[llm_server.AdapterFiles, ...],
    ) -> str | None:
        """The path of the server's config file when its template reads one (written)."""
        if not needs_server_config(template):
            return None
        if self.configs is None:
            raise _Stop(outcomes.Failed("no server config folder was given to the deploy steps"))
        content = server_config(
            template_name=template_name,
            template=template,
            deployment=spec,
            model_path=model_path,
            adapters=adapters,
        )
        return str(self.configs.write(name, llm_server.config_text(content)))

    # --- steps -----------------------------------------------------------------------

    async def deploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        try:
            return await self._deploy(ctx)
        except _Stop as stop:
            return stop.outcome

    async def _deploy(self, ctx: StepContext) -> outcomes.Outcome:
        name, spec = self._deployment(ctx)
        who = f"Deployment/{name}"
        model = self.facts.model(spec.model)
        if model is not None and model.blocked is not None:
            return outcomes.Stalled(model.blocked)
        if model is not None and model.provider_type == cloud.CLOUD_MODEL:
            if spec.cluster is not None:
                return await self._deploy_gateway(ctx, name=name, spec=spec, model=model)
            return cloud.deploy_cloud(
                ctx,
                name=name,
                model=spec.model,
                credential=spec.credential,
                source=model.source or {},
                facts=self.facts,
            )
        if model is None and spec.cluster is None:
            return outcomes.Retry(
                f"WaitingForModel: Model/{spec.model} is not Ready yet",
                after_seconds=WAITING_FOR_MODEL_RETRY_S,
            )
        driver = self._driver(spec.cluster, who=who)
        assert spec.cluster is not None
        cluster = self.facts.cluster(spec.cluster) or {}
        local = cluster.get("driver", "local") == "local"
        hub_model = model is not None and model.provider_type == HUGGING_FACE
        if model is None or (model.path is None and not hub_model):
            return outcomes.Retry(
                f"WaitingForModel: Model/{spec.model} is not Ready yet",
                after_seconds=WAITING_FOR_MODEL_RETRY_S,
            )
        if spec.template is None:
            return outcomes.Stalled(f"{who} names no template: set spec.template")
        template = self._template(spec.template)
        if local and hub_model:
            files = await models.hub_files_for_endpoint(
                ctx, model=spec.model, source=model.source or {}
            )
            if not isinstance(files, Path):
                return files
            model = dataclasses.replace(model, path=str(files))
        found_adapters = await lora.adapter_files(
            ctx,
            who=who,
            spec=spec,
            model_of=self.facts.model,
            local=local,
            lora_style=template.runtime.lora,
        )
        if not isinstance(found_adapters, tuple):
            return found_adapters
        gpu_name, gpu_product = (None, None) if local else await self._gpu_type(driver, cluster)
        sized = spec
        if spec.autoscaling is not None:  # sized at the autoscaler's floor, where it starts
            sized = spec.model_copy(update={"workers": spec.autoscaling.min_workers})
        have = None if local else _declared_gpus(cluster)
        try:
            sizing = self._sizing(
                spec=sized, model=model, template=template, gpu_name=gpu_name, max_gpus=have
            )
        except roofline.SizingError as exc:
            return outcomes.Stalled(f"{who}: sizing: {exc}")
        if not sizing.feasible:
            return outcomes.Stalled(f"{who}: infeasible: {'; '.join(sizing.gap)}")
        need = sizing.workers * sizing.gpus_per_worker
        if have is not None and need > have:
            return outcomes.Stalled(
                f"{who}: infeasible: needs {need} GPU(s) ({sizing.workers} worker(s) x "
                f"{sizing.gpus_per_worker}) and Cluster/{spec.cluster} has {have} (spec.gpu.count)"
            )
        resources = template.resources
        config_file: str | None = None
        endpoint = protocol.EndpointSpec(
            name=name,
            owner_labels={
                protocol.MANAGED_BY_LABEL: protocol.MANAGED_BY_VALUE,
                OWNER_LABEL: name,
            },
            image=template.runtime.image,
            command=(),
            args=(),
            env=dict(template.runtime.env),
            port=template.runtime.port,
            health_path=template.runtime.health_path,
            resources=protocol.WorkerResources(
                gpus=sizing.gpus_per_worker,
                cpu=None if resources.cpu is None else str(resources.cpu),
                memory=None if resources.memory is None else str(resources.memory),
            ),
            workers=sizing.workers,
            strategy=spec.strategy,
            worker_concurrency=spec.deploy_config.concurrent_requests,
            autoscaling=scaling.policy_of(spec),
            gate=scaling.gate_of(spec, defaults=template.defaults),
        )
        if local:
            command, env, config_file = await self._command(
                ctx,
                name=name,
                spec=spec,
                template_name=spec.template,
                template=template,
                model_path=_model_file(str(model.path), template_name=spec.template),
                adapters=found_adapters,
            )
            endpoint = dataclasses.replace(endpoint, command=command, env=env)
        else:
            from_cache = hub_model and model_cache.cached_on(model.cache, spec.cluster)
            endpoint = self._with_manifests(
                endpoint,
                spec=spec,
                template=template,
                cluster=cluster,
                model_path=_cluster_model_path(model),
                sizing=sizing,
                gpu_product=gpu_product,
                adapters=found_adapters,
                from_cache=bool(from_cache),
            )
            if from_cache:
                ctx.log.info(f"{who}: pods read Model/{spec.model} from the node cache")
        try:
            healed, seen = await self._roll_out(ctx, driver, endpoint, who=who, on=spec.cluster)
        except protocol.RolloutTimeoutError as exc:
            return outcomes.Retry(f"{who}: {exc}")
        except protocol.RolloutFailedError as exc:
            outputs = await self._failed_rollout(driver, endpoint.name, exc, spec, sizing, cluster)
            return outcomes.Stalled(f"RolloutFailed: {who}: {exc}", outputs=outputs)
        except protocol.ClusterError as exc:
            return _driver_outcome(exc, what=who)
        if not seen.ready:
            return outcomes.Retry(f"{who}: not ready: {seen.message}")
        for drift in healed:
            by = f" by {drift.manager}" if drift.manager else ""
            ctx.log.warning(f"{who}: drift re-applied: {drift.field} changed{by}")
        if local and self.configs is not None:
            self.configs.prune(name, keep=None if config_file is None else Path(config_file))
        status = _status(seen, cluster=spec.cluster, sizing=sizing, healed=healed)
        status.update(scaling.status_fields(seen))
        if hub_model and model_cache.cached_on(model.cache, spec.cluster):
            status["model_cache"] = dict(model_cache.cached_on(model.cache, spec.cluster) or {})
        if found_adapters:
            status["adapters"] = [adapter.name for adapter in found_adapters]
        url = _public_url(seen.endpoint_url, cluster, name)
        status["endpoint_url"] = url
        return outcomes.Done(
            {"endpoint_url": url, "workers": seen.workers_desired, "status": status}
        )

    async def _deploy_gateway(
        self, ctx: StepContext, *, name: str, spec: DeploymentSpec, model: ModelFacts
    ) -> outcomes.Outcome:
        """A cloud Model on a Cluster: its gateway there (reconciler.steps.cloud_gateway)."""
        who = f"Deployment/{name}"
        driver = self._driver(spec.cluster, who=who)
        assert spec.cluster is not None
        template_name = spec.template or cloud_gateway.GATEWAY_TEMPLATE
        try:
            built = cloud_gateway.gateway_endpoint(
                ctx,
                name=name,
                spec=spec,
                source=model.source or {},
                template_name=template_name,
                template=self._template(template_name),
                facts=self.facts,
                owner_labels={
                    protocol.MANAGED_BY_LABEL: protocol.MANAGED_BY_VALUE,
                    OWNER_LABEL: name,
                },
            )
        except cloud_gateway.GatewayRefused as refused:
            return refused.outcome
        try:
            healed, seen = await self._roll_out(
                ctx, driver, built.endpoint, who=who, on=spec.cluster
            )
        except protocol.RolloutTimeoutError as exc:
            return outcomes.Retry(f"{who}: {exc}")
        except protocol.RolloutFailedError as exc:
            return outcomes.Stalled(f"RolloutFailed: {who}: {exc}")
        except protocol.ClusterError as exc:
            return _driver_outcome(exc, what=who)
        if not seen.ready:
            return outcomes.Retry(f"{who}: not ready: {seen.message}")
        status = {**_status(seen, cluster=spec.cluster, sizing=None, healed=healed), **built.status}
        return outcomes.Done(
            {"endpoint_url": seen.endpoint_url, "workers": seen.workers_desired, "status": status}
        )

    async def _failed_rollout(
        self,
        driver: protocol.ClusterDriver,
        name: str,
        error: protocol.RolloutFailedError,
        spec: DeploymentSpec,
        sizing: roofline.SizingResult,
        cluster: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A rolled-back rollout's outputs: the endpoint as the old revision serves it (at
        the URL callers use, as a ready one), and the gate's measurements."""
        outputs = scaling.failed_rollout_outputs(error)
        try:
            seen = await driver.observe_endpoint(name)
        except protocol.ClusterError:
            return outputs
        if not seen.exists:
            return outputs
        status = _status(seen, cluster=spec.cluster or "", sizing=sizing)
        status.update(scaling.status_fields(seen))
        status.update(outputs.get("status") or {})
        status["endpoint_url"] = _public_url(seen.endpoint_url, cluster, name)
        return {"status": status}

    def _with_manifests(
        self,
        endpoint: protocol.EndpointSpec,
        *,
        spec: DeploymentSpec,
        template: DeploymentTemplateSpec,
        cluster: Mapping[str, Any],
        model_path: str,
        sizing: roofline.SizingResult,
        gpu_product: str | None,
        adapters: tuple[llm_server.AdapterFiles, ...] = (),
        from_cache: bool = False,
    ) -> protocol.EndpointSpec:
        assert spec.template is not None
        namespace = str(cluster.get("namespace") or DEFAULT_NAMESPACE)
        try:
            manifests = render_k8s.render_kubernetes(
                template_name=spec.template,
                template=template,
                deployment_name=endpoint.name,
                deployment=spec,
                namespace=namespace,
                model_path=model_path,
                workers=sizing.workers,
                gpus_per_worker=sizing.gpus_per_worker,
                gpu_product=gpu_product,
                adapters=adapters,
            )
        except RenderError as exc:
            raise _Stop(outcomes.Stalled(str(exc))) from exc
        deployment = manifests.deployment
        if from_cache:  # the Model's files are on every node (core.render.cache)
            deployment = render_cache.mount_cache(deployment)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        rendered = {"Deployment": deployment, "Service": manifests.service}
        ingress_url = cluster.get("ingress_url")
        if isinstance(ingress_url, str):
            rendered["Ingress"] = render_k8s.render_ingress(
                deployment_name=endpoint.name, namespace=namespace, ingress_url=ingress_url
            )
        if spec.autoscaling is not None:
            try:
                scaler = render_autoscaling.render_autoscaler(
                    autoscaling=spec.autoscaling,
                    metrics=template.runtime.metrics,
                    target_name=endpoint.name,  # the driver aims it at the serving revision
                    namespace=namespace,
                    labels=render_k8s.owner_labels(endpoint.name),
                    where=f"Deployment/{endpoint.name}",
                )
            except RenderError as exc:
                raise _Stop(outcomes.Stalled(str(exc))) from exc
            rendered[str(scaler["kind"])] = scaler
        return dataclasses.replace(
            endpoint,
            owner_labels=render_k8s.owner_labels(endpoint.name),
            args=tuple(container.get("args") or ()),
            env={item["name"]: item["value"] for item in container.get("env") or ()},
            manifests=rendered,
        )

    async def _roll_out(
        self,
        ctx: StepContext,
        driver: protocol.ClusterDriver,
        endpoint: protocol.EndpointSpec,
        *,
        who: str,
        on: str,
    ) -> tuple[tuple[protocol.Drift, ...], protocol.EndpointObservation]:
        """(drift found on the live endpoint and re-applied, the endpoint once rolled out)."""
        if isinstance(driver, protocol.RolloutDriver):
            ctx.log.info(f"{who}: rolling out on Cluster/{on} ({endpoint.strategy})")
            seen = await driver.rollout(endpoint, timeout_s=_ready_timeout(ctx))
            return seen.healed, seen
        before = await driver.observe_endpoint(endpoint.name)
        seen = await driver.apply_endpoint(endpoint)
        ctx.log.info(f"{who}: applied on Cluster/{on}: {seen.message}")
        return before.drift, await _wait_ready(ctx, driver, endpoint.name)

    async def undeploy_model(self, ctx: StepContext) -> outcomes.Outcome:
        try:
            name, spec = self._deployment(ctx)
            if spec.cluster is None:
                ctx.log.info(f"Deployment/{name}: a cloud endpoint; nothing runs to remove")
                return outcomes.Done({"removed": False})
            driver = self._driver(spec.cluster, who=f"Deployment/{name}")
            removed = await driver.delete_endpoint(name)
            if self.configs is not None:
                self.configs.prune(name)
        except _Stop as stop:
            return stop.outcome
        except protocol.ClusterError as exc:
            return _driver_outcome(exc, what=f"Deployment/{name}")
        ctx.log.info(f"Deployment/{name}: {'removed' if removed else 'nothing to remove'}")
        return outcomes.Done({"removed": removed})

    async def scale_deployment(self, ctx: StepContext) -> outcomes.Outcome:
        try:
            name, spec = self._deployment(ctx)
            if spec.cluster is None:
                return outcomes.Stalled(
                    f"Deployment/{name}: a cloud endpoint has no workers to scale; "
                    "its provider scales it"
                )
            driver = self._driver(spec.cluster, who=f"Deployment/{name}")
            if spec.workers is None:
                return outcomes.Stalled(f"Deployment/{name}: scale needs spec.workers")
            await driver.scale_endpoint(name, spec.workers)
            seen = await _wait_ready(ctx, driver, name)
        except _Stop as stop:
            return stop.outcome
        except protocol.ClusterError as exc:
            return _driver_outcome(exc, what=f"Deployment/{name}")
        if not seen.ready:
            return outcomes.Retry(f"Deployment/{name}: not ready: {seen.message}")
        status = _status(seen, cluster=spec.cluster or "", sizing=None)
        cluster = self.facts.cluster(spec.cluster or "") or {}
        status["endpoint_url"] = _public_url(seen.endpoint_url, cluster, name)
        status.update(scaling.status_fields(seen))
        return outcomes.Done({"workers": seen.workers_desired, "status": status})

    async def check_cluster(self, ctx: StepContext) -> outcomes.Outcome:
        name = str(ctx.inputs.get("cluster") or "")
        try:
            driver = self._driver(name, who=f"Cluster/{name}")
            checked = await driver.check()
            if not checked.reachable:
                return outcomes.Retry(f"Cluster/{name} is unreachable: {checked.message}")
            found = await driver.inventory()
        except _Stop as stop:
            return stop.outcome
        except protocol.ClusterError as exc:
            return _driver_outcome(exc, what=f"Cluster/{name}")
        gpu_counts = {
            gpu_type: {"total": count.total, "free": count.free}
            for gpu_type, count in found.gpus.items()
        }
        status = {"reachable": True, "version": checked.version, "gpus": gpu_counts}
        return outcomes.Done({"reachable": True, "gpus": gpu_counts, "status": status})

    async def release_cluster(self, ctx: StepContext) -> outcomes.Outcome:
        name = str(ctx.inputs.get("cluster") or "")
        ctx.log.info(f"Cluster/{name} released; nothing on it was touched")
        return outcomes.Done({"released": name})


def _public_url(url: str | None, cluster: Mapping[str, Any], name: str) -> str | None:
    """A ready kubernetes endpoint's URL through its Cluster's ``ingress_url``, when the
    Cluster has one (the driver's own is the in-cluster Service address)."""
    ingress_url = cluster.get("ingress_url")
    if url is None or cluster.get("driver") != "kubernetes" or not isinstance(ingress_url, str):
        return url
    namespace = str(cluster.get("namespace") or DEFAULT_NAMESPACE)
    return render_k8s.ingress_endpoint_url(ingress_url, namespace=namespace, deployment_name=name)


def _declared_gpus(cluster: Mapping[str, Any]) -> int | None:
    """The Cluster spec's ``gpu.count``, when it declares one."""
    count = (cluster.get("gpu") or {}).get("count")
    return count if isinstance(count, int) else None


def _model_file(path: str, *, template_name: str) -> str:
    """llama.cpp takes one GGUF file: a Model folder holding exactly one is narrowed to it."""
    folder = Path(path)
    if template_name == "llama-cpp" and folder.is_dir():
        found = sorted(folder.rglob("*.gguf"))
        if len(found) == 1:
            return str(found[0])
    return path


def _cluster_model_path(model: ModelFacts) -> str:
    """What a pod is told to serve: a Hugging Face repo id (the server fetches it in the
    pod), else the Model's path, which the cluster's nodes must hold at the same place."""
    source = model.source or {}
    if model.provider_type == HUGGING_FACE and isinstance(source.get("uri"), str):
        return str(source["uri"])
    return str(model.path)


def _ready_timeout(ctx: StepContext) -> float:
    timeout = ctx.inputs.get("ready_timeout_s")
    return float(timeout) if isinstance(timeout, int | float) else DEFAULT_READY_TIMEOUT_S


async def _wait_ready(
    ctx: StepContext, driver: protocol.ClusterDriver, name: str
) -> protocol.EndpointObservation:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _ready_timeout(ctx)
    interval = max(ctx.services.readiness_poll_interval_s, 0.01)
    while True:
        seen = await driver.observe_endpoint(name)
        if seen.ready or loop.time() >= deadline:
            return seen
        await asyncio.sleep(interval)


def _status(
    seen: protocol.EndpointObservation,
    *,
    cluster: str,
    sizing: roofline.SizingResult | None,
    healed: tuple[protocol.Drift, ...] = (),
) -> dict[str, Any]:
    """The Deployment's status fields; ``drift`` lists what was found changed out of band
    (``healed``: re-applied by this step) and what still differs after it."""
    status: dict[str, Any] = {
        "endpoint_url": seen.endpoint_url,
        "workers": seen.workers_desired,
        "ready_workers": seen.workers_ready,
        "cluster": cluster,
    }
    if sizing is not None:
        status["sizing"] = sizing.as_status()
    if seen.applied:
        status["resources"] = [dataclasses.asdict(item) for item in seen.applied]
    drifts = [dict(dataclasses.asdict(drift), reapplied=True) for drift in healed]
    drifts += [dict(dataclasses.asdict(drift), reapplied=False) for drift in seen.drift]
    if drifts:
        status["drift"] = drifts
    return status
