"""A Deployment's autoscaling: worker bounds and the LLM signals that move between them.

The signals are the model server's own Prometheus metrics (which the template's
``runtime.metrics`` names): requests waiting per worker, time to first token, KV cache
use. On Kubernetes they are handed to the cluster's own autoscaler (an HPA on custom
metrics, or a KEDA ScaledObject), rendered by reconciler.core.render.autoscaling. Only the
shape is checked here; what a cluster can do with it is the validator's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from reconciler.specs.common import SpecModel

Engine = Literal["hpa", "keda"]


class ScalingTargets(SpecModel):
    """What one worker should carry at most; more than this adds workers."""

    queue_depth: float | None = Field(
        default=None, gt=0, description="requests waiting in the server's queue, per worker"
    )
    ttft_ms: float | None = Field(
        default=None, gt=0, description="time to first token, p90 over the last 2 minutes, ms"
    )
    kv_cache_usage: float | None = Field(
        default=None, gt=0, le=1, description="fraction of the KV cache in use, per worker"
    )

    @model_validator(mode="after")
    def _one_at_least(self) -> ScalingTargets:
        if self.queue_depth is None and self.ttft_ms is None and self.kv_cache_usage is None:
            raise PydanticCustomError(
                "no_target",
                "autoscaling.targets needs at least one of queue_depth, ttft_ms, kv_cache_usage",
            )
        return self


class Autoscaling(SpecModel):
    """Workers between ``min_workers`` and ``max_workers``, moved by ``targets``."""

    min_workers: int = Field(ge=1, description="never fewer workers than this")
    max_workers: int = Field(ge=1, description="never more workers than this")
    targets: ScalingTargets
    engine: Engine = Field(
        default="hpa",
        description="kubernetes: hpa (autoscaling/v2 on custom metrics, served by a metrics "
        "adapter) or keda (a ScaledObject with Prometheus triggers)",
    )
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="keda: the Prometheus its triggers query (http(s)://host:port)",
    )
    scale_down_delay_s: int = Field(
        default=300, ge=0, description="how long a lower worker count must hold before it is used"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_workers > self.max_workers:
            raise PydanticCustomError(
                "bounds",
                f"autoscaling.min_workers ({self.min_workers}) is more than max_workers "
                f"({self.max_workers})",
            )
        if self.engine == "keda" and self.prometheus_url is None:
            raise PydanticCustomError(
                "keda_prometheus",
                "autoscaling.engine keda queries Prometheus: set autoscaling.prometheus_url",
            )
        return self
