"""What the deployment steps read of the daemon's knowledge: Models, templates, Clusters.

A Deployment is served from its Model's files once that Model is Ready; its shape for
sizing (parameters, dtype, layers, KV heads, head dim) comes from the Model's status
fields, which the model steps derived from safetensors headers and config.json. A Model
whose scan blocked it is reported as blocked, so every Deployment of it stalls with the
same reason instead of waiting forever. A Credential is one of Git's or, failing that, a
flow-framework connector the state store holds (reconciler.steps.flow_framework), so a
remote model's Model and Deployment steps find the connector as they find any Credential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from reconciler.core.diff import ObjectState
from reconciler.drivers.models import records
from reconciler.steps.endpoints import ModelFacts


class DaemonEndpointFacts:
    """EndpointFacts over the applied specs and the status documents of the daemon."""

    def __init__(
        self,
        *,
        desired: Callable[[], Mapping[str, ObjectState]],
        status_of: Callable[[str], Mapping[str, Any] | None],
        model_cache: Path,
        connectors: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self._desired = desired
        self._status_of = status_of
        self._model_cache = model_cache
        self._connectors = connectors

    def _spec(self, kind: str, name: str) -> Mapping[str, Any] | None:
        state = self._desired().get(f"{kind}/{name}")
        return state.spec if state is not None else None

    def model(self, name: str) -> ModelFacts | None:
        status = self._status_of(f"Model/{name}") or {}
        if status.get("phase") == "Stalled" and status.get("reason") == "ScanFailed":
            return ModelFacts(path=None, blocked=f"ScanFailed: Model/{name}: {status['message']}")
        if status.get("phase") != "Ready":
            return None
        record = records.read_record(cache_dir=self._model_cache, model=name) or {}
        root = record.get("root")
        config = status.get("config") if isinstance(status.get("config"), Mapping) else {}
        assert isinstance(config, Mapping)
        heads = _int(config.get("num_attention_heads"))
        hidden = _int(config.get("hidden_size"))
        head_dim = _int(config.get("head_dim")) or (hidden // heads if hidden and heads else None)
        source = (self._spec("Model", name) or {}).get("source")
        cache = status.get("cache")
        return ModelFacts(
            source=source if isinstance(source, Mapping) else None,
            cache=cache if isinstance(cache, Mapping) else None,
            path=str(root) if isinstance(root, str) else None,
            parameters=status.get("parameters"),
            dtype=status.get("dtype"),
            layers=_int(config.get("num_hidden_layers")),
            kv_heads=_int(config.get("num_key_value_heads")) or heads,
            head_dim=head_dim,
        )

    def template(self, name: str) -> Mapping[str, Any] | None:
        return self._spec("DeploymentTemplate", name)

    def cluster(self, name: str) -> Mapping[str, Any] | None:
        return self._spec("Cluster", name)

    def credential(self, name: str) -> Mapping[str, Any] | None:
        found = self._spec("Credential", name)
        if found is None and self._connectors is not None:
            return self._connectors(name)
        return found

    def secret_name(self, credential: str) -> str | None:
        """The secret Credential ``credential`` names (None: no such Credential)."""
        secret = (self.credential(credential) or {}).get("secret")
        return secret if isinstance(secret, str) else None

    def clusters(self) -> Mapping[str, Mapping[str, Any]]:
        """The Cluster specs by name, as a view (a driver is asked for on every step)."""
        return ClusterSpecs(self._desired())


class ClusterSpecs(Mapping[str, Mapping[str, Any]]):
    """The Cluster specs of the applied objects by name: one is found by its object key,
    not by a scan of every object (with 1,000 Deployments that scan ran on each step)."""

    def __init__(self, desired: Mapping[str, ObjectState]) -> None:
        self._desired = desired

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        state = self._desired.get(f"Cluster/{name}")
        if state is None or state.kind != "Cluster":
            raise KeyError(name)
        return state.spec

    def __iter__(self) -> Iterator[str]:
        return (state.name for state in self._desired.values() if state.kind == "Cluster")

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
