"""cache_model and uncache_model: a Model's files pre-pulled to clusters before rollout.

A Model with ``cache: {clusters: [...]}`` (a hugging_face source) gets ``cache_model``
after its scan. It first makes sure the daemon holds the scanned files (the same
download and scan a local endpoint uses, steps.models.hub_files_for_endpoint: a blocking
finding stalls the Model, so no cache holds an unscanned commit), then per Cluster:

- local: that download is the cache (``<state_dir>/models/hf``); a local Deployment of
  the Model finds it there and starts without downloading;
- kubernetes: the node cache DaemonSet (reconciler.core.render.cache) pulls that commit
  onto every node, and the step waits until every node holds it; a Deployment of the
  Model on that Cluster then mounts the node folder and its server loads offline. A
  gated or private repo's token (the Model's credential, from the daemon's secret store)
  goes to the nodes in a Secret of the cache's own, which the DaemonSet's puller reads.

Kubernetes Clusters the cache no longer names lose their DaemonSet; ``uncache_model``
(the Model's delete chain) removes them all; the daemon's own copy goes with the Model
(steps.models.remove_model), unless another Model holds the same commit. The Model's status
says, per Cluster, where the files are and of which commit (``cache``); Deployments wait
for the Model to be Ready, so for its cache.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from reconciler.core.render import cache as render_cache
from reconciler.core.render.placeholders import RenderError
from reconciler.drivers.clusters import protocol
from reconciler.drivers.models import records
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext, StepImpl
from reconciler.steps import models

DEFAULT_NAMESPACE = "reconciler"
DEFAULT_FILL_TIMEOUT_S = 1800.0
HUGGING_FACE = "hugging_face"


class ClusterFacts(Protocol):
    def cluster(self, name: str) -> Mapping[str, Any] | None: ...


class StepRegistryLike(Protocol):
    def register(self, step_type: str, impl: StepImpl) -> None: ...


def register_cache_steps(
    registry: StepRegistryLike,
    *,
    drivers: Mapping[str, protocol.ClusterDriver],
    facts: ClusterFacts,
) -> None:
    steps = _CacheSteps(drivers=drivers, facts=facts)
    registry.register("cache_model", steps.cache_model)
    registry.register("uncache_model", steps.uncache_model)


def cached_on(status: Mapping[str, Any] | None, cluster: str) -> Mapping[str, Any] | None:
    """A Model's cache entry for ``cluster`` when its files are there (from its status)."""
    entry = (status or {}).get(cluster)
    if isinstance(entry, Mapping) and entry.get("state") == "ready":
        return entry
    return None


class _CacheSteps:
    def __init__(
        self, *, drivers: Mapping[str, protocol.ClusterDriver], facts: ClusterFacts
    ) -> None:
        self.drivers = drivers
        self.facts = facts

    def _kubernetes_clusters(self) -> list[str]:
        found = []
        for name in self.drivers:
            spec = self.facts.cluster(name) or {}
            if spec.get("driver") == "kubernetes":
                found.append(name)
        return found

    async def _drop(self, ctx: StepContext, model: str, clusters: list[str]) -> None:
        for name in clusters:
            try:
                driver = self.drivers.get(name)
            except protocol.ClusterError:
                continue
            if isinstance(driver, protocol.CacheDriver):
                removed = await driver.drop_cache(render_cache.cache_name(model))
                if removed:
                    ctx.log.info(f"Model/{model}: its cache on Cluster/{name} removed")

    async def cache_model(self, ctx: StepContext) -> outcomes.Outcome:
        model = str(ctx.inputs.get("model") or "")
        source = ctx.inputs.get("source")
        cache = ctx.inputs.get("cache")
        wanted = list(cache.get("clusters") or []) if isinstance(cache, Mapping) else []
        try:
            unlisted = [c for c in self._kubernetes_clusters() if c not in wanted]
            await self._drop(ctx, model, unlisted)
        except protocol.ClusterError as exc:
            return outcomes.Retry(f"Model/{model}: removing a cache: {exc}")
        if not wanted:
            return outcomes.Done({"status": {"cache": {}}})
        if not isinstance(source, Mapping) or source.get("provider_type") != HUGGING_FACE:
            return outcomes.Stalled(
                f"Model/{model}: cache takes hugging_face sources (the others are read "
                "from the daemon's host already)"
            )
        started = time.monotonic()
        files = await models.hub_files_for_endpoint(ctx, model=model, source=source)
        if not isinstance(files, Path):
            return files
        services = ctx.services.extra.get(models.MODEL_SERVICE)
        assert isinstance(services, models.ModelServices)  # hub_files_for_endpoint checked
        record = records.read_record(cache_dir=services.cache_dir, model=model) or {}
        commit = str(record.get("revision") or "")
        pulled = round(time.monotonic() - started, 3)
        status: dict[str, Any] = {}
        for name in wanted:
            entry = await self._fill(
                ctx,
                model=model,
                cluster=name,
                source=source,
                commit=commit,
                folder=files,
                hf_endpoint=services.hf_endpoint,
            )
            if not isinstance(entry, dict):
                return entry
            status[name] = {**entry, "revision": commit}
        ctx.log.info(f"Model/{model}: cached on {', '.join(wanted)} (daemon copy in {pulled}s)")
        return outcomes.Done({"status": {"cache": status}})

    async def _fill(
        self,
        ctx: StepContext,
        *,
        model: str,
        cluster: str,
        source: Mapping[str, Any],
        commit: str,
        folder: Path,
        hf_endpoint: str | None,
    ) -> dict[str, Any] | outcomes.Outcome:
        spec = self.facts.cluster(cluster)
        if spec is None:
            return outcomes.Stalled(
                f"Model/{model}: cache names Cluster/{cluster}, which does not exist"
            )
        kind = spec.get("driver", "local")
        if kind == "local":
            return {"driver": "local", "state": "ready", "path": str(folder)}
        try:
            driver = self.drivers.get(cluster)
        except protocol.ClusterError as exc:
            return outcomes.Retry(f"Model/{model}: Cluster/{cluster}: {exc}")
        if not isinstance(driver, protocol.CacheDriver):
            return outcomes.Stalled(
                f"Model/{model}: Cluster/{cluster} ({kind}) cannot hold a model cache"
            )
        namespace = str(spec.get("namespace") or DEFAULT_NAMESPACE)
        services = ctx.services.extra.get(models.MODEL_SERVICE)
        assert isinstance(services, models.ModelServices)  # cache_model checked it
        try:
            token = models.credential_token(services, source)
        except outcomes.StalledStepError as exc:  # SecretNotFound / SecretUnreadable
            return outcomes.Stalled(f"Model/{model}: caching on Cluster/{cluster}: {exc}")
        try:
            manifest = render_cache.render_cache_daemonset(
                model=model,
                repo_id=str(source.get("uri")),
                commit=commit,
                ref=str(source.get("revision") or "main"),
                namespace=namespace,
                hf_endpoint=hf_endpoint,
                token_secret=token is not None,
            )
        except RenderError as exc:
            return outcomes.Stalled(str(exc))
        secret = (
            render_cache.render_token_secret(model=model, namespace=namespace, token=token)
            if token is not None
            else None
        )
        timeout = ctx.inputs.get("ready_timeout_s")
        timeout_s = float(timeout) if isinstance(timeout, int | float) else DEFAULT_FILL_TIMEOUT_S
        started = time.monotonic()
        try:
            seen = await driver.fill_cache(manifest, timeout_s=timeout_s, secret=secret)
        except protocol.ClusterError as exc:
            return outcomes.Retry(f"Model/{model}: filling the cache on Cluster/{cluster}: {exc}")
        if not seen.ready:
            return outcomes.Retry(
                f"Model/{model}: the cache on Cluster/{cluster} is not filled yet: {seen.message}"
            )
        return {
            "driver": "kubernetes",
            "state": "ready",
            "daemonset": seen.name,
            "nodes": seen.nodes,
            "path": render_cache.HOST_PATH,
            "seconds": round(time.monotonic() - started, 3),
        }

    async def uncache_model(self, ctx: StepContext) -> outcomes.Outcome:
        model = str(ctx.inputs.get("model") or "")
        try:
            await self._drop(ctx, model, self._kubernetes_clusters())
        except protocol.ClusterError as exc:
            return outcomes.Retry(f"Model/{model}: removing its cache: {exc}")
        return outcomes.Done({})
