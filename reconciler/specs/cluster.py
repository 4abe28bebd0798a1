"""Cluster: where endpoints and GPU jobs run (a Kubernetes cluster or the daemon's host).

The kubeconfig is a credential, so the spec only names the secret that holds it; it is
required for the ``kubernetes`` driver and meaningless (an error) for ``local``. ``shard``
pins the cluster, and everything on it, to one shard of a sharded daemon
(reconciler.core.shards).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.common import (
    HttpUrl,
    Namespace,
    NonEmptyStr,
    SecretName,
    SpecModel,
)
from reconciler.specs.envelope import Document

ClusterDriver = Literal["kubernetes", "local"]
DEFAULT_NAMESPACE = "reconciler"


class Kubeconfig(SpecModel):
    """Which secret holds the kubeconfig, and which of its contexts to use."""

    secret: SecretName
    context: NonEmptyStr | None = Field(
        default=None, description="default: the kubeconfig's current-context"
    )


class GpuInventory(SpecModel):
    """The GPUs the cluster is declared to have; the observed ones come from its nodes."""

    type: NonEmptyStr = Field(description="e.g. nvidia-a100-80gb")
    count: int = Field(ge=0)


class ClusterSpec(SpecModel):
    """A cluster; ``driver`` decides which other fields apply."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"driver": {"const": "kubernetes"}}},
                    "then": {
                        "required": ["kubeconfig"],
                        "properties": {"kubeconfig": {"type": "object"}},
                    },
                },
                {
                    "if": {"properties": {"driver": {"const": "local"}}},
                    "then": {"properties": {"kubeconfig": {"type": "null"}}},
                },
            ]
        }
    )

    display_name: str | None = None
    driver: ClusterDriver
    ingress_url: HttpUrl | None = None
    icon: str | None = None
    namespace: Namespace = Field(
        default=DEFAULT_NAMESPACE, description="where endpoints are created (a DNS label)"
    )
    kubeconfig: Kubeconfig | None = Field(
        default=None,
        validate_default=True,
        description="required with driver kubernetes, absent with driver local",
    )
    gpu: GpuInventory | None = None
    suspend: bool = Field(default=False, description="true: the daemon leaves it as it is")
    shard: int | None = Field(
        default=None,
        ge=0,
        le=1023,
        description="with a sharded daemon (config sharding:), the shard this cluster and "
        "everything on it belong to; default: a stable hash of the name. A number past "
        "the last shard wraps around (shard mod sharding.shards)",
    )

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_matches_driver(
        cls, value: Kubeconfig | None, info: ValidationInfo
    ) -> Kubeconfig | None:
        driver = info.data.get("driver")
        if driver == "kubernetes" and value is None:
            raise PydanticCustomError(
                "kubeconfig_required",
                "kubeconfig is required when driver is kubernetes: name the secret that "
                "holds it, e.g. kubeconfig: {secret: my-cluster-kubeconfig}",
            )
        if driver == "local" and value is not None:
            raise PydanticCustomError(
                "kubeconfig_not_allowed",
                "kubeconfig is not allowed when driver is local: remove it, or set "
                "driver: kubernetes",
            )
        return value


class ClusterDocument(Document):
    """A Cluster document."""

    kind: Literal["Cluster"]
    spec: ClusterSpec
