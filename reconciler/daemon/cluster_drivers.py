"""Cluster drivers by Cluster name, made from the Cluster specs of the applied revision.

The deployment steps ask for a driver by the Cluster's name. A ``local`` Cluster gets the
one process supervisor of this daemon (its endpoints live under the state dir and outlive
a daemon restart); a ``kubernetes`` Cluster gets a client built from the kubeconfig its
spec names in the host's secret store, rebuilt when the spec or the secret changes, and
its watch reports drift to ``on_drift`` and the cluster autoscaler's moves to ``on_scale``.

A rebuilt Cluster's old driver stops watching at once: its connection may reach a server
that is no longer the Cluster's, whose events must not count as drift, and a rollout
waiting on it fails so that its step is retried on the new one. Calls in flight finish on
the old client; ``close`` (at the daemon's shutdown) closes every driver made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from reconciler.drivers.clusters import protocol
from reconciler.drivers.clusters.local import LocalClusterDriver
from reconciler.drivers.secrets import SecretError, SecretResolver

if TYPE_CHECKING:
    from reconciler.drivers.clusters.kubernetes import KubernetesDriver


class ClusterDrivers(Mapping[str, protocol.ClusterDriver]):
    """A read-only mapping Cluster name -> driver, over the live Cluster specs."""

    def __init__(
        self,
        *,
        local: LocalClusterDriver,
        cluster_specs: Callable[[], Mapping[str, Mapping[str, Any]]],
        resolver: SecretResolver,
        on_drift: protocol.DriftListener | None = None,
        on_scale: protocol.ScaleListener | None = None,
    ) -> None:
        self._local = local
        self._specs = cluster_specs
        self._resolver = resolver
        self._on_drift = on_drift
        self._on_scale = on_scale
        self._kube: dict[str, tuple[str, KubernetesDriver]] = {}
        self._retired: list[KubernetesDriver] = []

    def __getitem__(self, name: str) -> protocol.ClusterDriver:
        spec = self._specs().get(name)
        if spec is None:
            raise KeyError(name)
        driver = spec.get("driver", "local")
        if driver == "local":
            return self._local
        if driver == "kubernetes":
            return self._kubernetes(name, spec)
        raise KeyError(name)

    def _kubernetes(self, name: str, spec: Mapping[str, Any]) -> KubernetesDriver:
        kubeconfig = spec.get("kubeconfig") or {}
        secret = kubeconfig.get("secret") if isinstance(kubeconfig, Mapping) else None
        if not isinstance(secret, str):
            raise protocol.ClusterError(f"Cluster {name} names no kubeconfig.secret")
        try:
            text = self._resolver.resolve(secret)
        except SecretError as exc:
            raise protocol.ClusterError(f"SecretNotFound: Cluster {name}: {exc}") from None
        context = kubeconfig.get("context") if isinstance(kubeconfig, Mapping) else None
        namespace = spec.get("namespace") or "reconciler"
        fingerprint = hashlib.sha256(
            json.dumps([text, context, namespace], sort_keys=True).encode()
        ).hexdigest()
        known = self._kube.get(name)
        if known is not None and known[0] == fingerprint:
            return known[1]
        if known is not None:
            known[1].retire(f"Cluster {name}'s kubeconfig, context or namespace changed")
            self._retired.append(known[1])
        # the client is loaded with the first kubernetes Cluster, not at every start
        from reconciler.drivers.clusters.kubernetes import KubernetesDriver

        made = KubernetesDriver(
            kubeconfig=text,
            context=context if isinstance(context, str) else None,
            namespace=str(namespace),
        )
        if self._on_drift is not None:
            made.watch_drift(self._on_drift)  # drift is seen as it happens, not at resync
        if self._on_scale is not None:
            made.add_scale_listener(self._on_scale)  # the cluster autoscaler's moves
        self._kube[name] = (fingerprint, made)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs())

    def __len__(self) -> int:
        return len(self._specs())

    async def close(self) -> None:
        """Close every driver made, replaced ones included."""
        made = [*self._retired, *(driver for _, driver in self._kube.values())]
        self._retired.clear()
        self._kube.clear()
        for driver in made:
            await driver.close()
