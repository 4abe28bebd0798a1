"""A Deployment's rollout gate: a new revision is measured on live traffic before it serves.

The SLOs it is held to are the Deployment's own: ``deploy_config.ttft`` (its max, ms,
against the p90 time to first token) and ``deploy_config.e2e_latency`` (its max, s,
against the p90 end-to-end latency), the template's ``defaults`` where the Deployment
sets none, and ``max_error_rate`` here. Only the shape is checked here; which clusters
can gate a rollout is the validator's.
"""

from __future__ import annotations

from pydantic import Field

from reconciler.specs.common import SpecModel


class RolloutGate(SpecModel):
    """A share of the traffic for a window, then promote or roll back."""

    traffic_percent: int = Field(
        default=10,
        ge=1,
        le=100,
        description="share of the requests the new revision takes while it is measured, %",
    )
    window_s: int = Field(
        default=60, ge=1, description="how long the new revision is measured, seconds"
    )
    max_error_rate: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="the error-rate SLO: answers with a 5xx status, or none, as a fraction",
    )
    min_requests: int = Field(
        default=10,
        ge=0,
        description="fewer requests answered in the window: promoted on health alone "
        "(the status says so)",
    )
