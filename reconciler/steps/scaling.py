"""What a Deployment's autoscaling and rollout gate become for its driver, and its status.

The deploy step hands a driver plain values (reconciler.drivers.clusters.protocol): the
autoscaling bounds and targets as a ScalingPolicy, the gate as a RolloutGate holding the
SLOs it is measured against (the Deployment's ``deploy_config`` ttft and e2e_latency
maxima, else its template's defaults, and the gate's error rate). Back from the driver
come the status fields: ``autoscaling`` (bounds, desired workers, last signals),
``scale_events`` and ``rollout`` (the last gate's measurements and verdict), also when a
rollout was rolled back.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.drivers.clusters import protocol
from reconciler.specs.common import SloTargets
from reconciler.specs.deployment import DeploymentSpec


def policy_of(spec: DeploymentSpec) -> protocol.ScalingPolicy | None:
    autoscaling = spec.autoscaling
    if autoscaling is None:
        return None
    targets = autoscaling.targets
    return protocol.ScalingPolicy(
        min_workers=autoscaling.min_workers,
        max_workers=autoscaling.max_workers,
        queue_depth=targets.queue_depth,
        ttft_ms=targets.ttft_ms,
        kv_cache_usage=targets.kv_cache_usage,
        scale_down_delay_s=float(autoscaling.scale_down_delay_s),
    )


def gate_of(spec: DeploymentSpec, *, defaults: SloTargets) -> protocol.RolloutGate | None:
    gate = spec.rollout_gate
    if gate is None:
        return None
    ttft = spec.deploy_config.ttft or defaults.ttft
    e2e = spec.deploy_config.e2e_latency or defaults.e2e_latency
    return protocol.RolloutGate(
        traffic_percent=gate.traffic_percent,
        window_s=float(gate.window_s),
        max_error_rate=gate.max_error_rate,
        max_ttft_ms=None if ttft is None else float(ttft[1]),
        max_e2e_s=None if e2e is None else float(e2e[1]),
        min_requests=gate.min_requests,
    )


def _report(report: protocol.GateReport) -> dict[str, Any]:
    found = dataclasses.asdict(report)
    found["reasons"] = list(report.reasons)
    found["slo"] = dict(report.slo)
    return found


def status_fields(seen: protocol.EndpointObservation) -> dict[str, Any]:
    """``autoscaling``, ``scale_events`` and ``rollout``, where the driver has them."""
    found: dict[str, Any] = {}
    if seen.autoscaler is not None:
        found["autoscaling"] = dict(seen.autoscaler)
    if seen.scale_events:
        found["scale_events"] = [dataclasses.asdict(event) for event in seen.scale_events]
    if seen.rollout is not None:
        found["rollout"] = _report(seen.rollout)
    return found


def failed_rollout_outputs(error: protocol.RolloutFailedError) -> dict[str, Any]:
    """The outputs of a deploy step whose rollout was rolled back: the gate's report."""
    if error.report is None:
        return {}
    return {"status": {"rollout": _report(error.report)}}
