"""A gated rollout's verdict: what was measured of the new revision against its SLOs.

Pure: given the gate (the Deployment's SLOs and the window) and the measurements of the
new revision over that window (requests, errors, p90 time to first token, p90 end-to-end
latency), say whether it is promoted or rolled back, and why, as a GateReport the
Deployment's status shows. A bound the Deployment does not set is not checked; fewer
than ``min_requests`` answered promotes on health alone, and the report says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import Any, Literal

from reconciler.drivers.clusters.protocol import GateReport, RolloutGate


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def judge(
    gate: RolloutGate, *, revision: str, measured: Mapping[str, Any], window_s: float
) -> GateReport:
    """The verdict on ``revision`` from ``measured`` (the proxy's window: requests,
    errors, error_rate, ttft_p90_ms, e2e_p90_s)."""
    requests = int(measured.get("requests") or 0)
    errors = int(measured.get("errors") or 0)
    error_rate = errors / requests if requests else None
    ttft = _number(measured.get("ttft_p90_ms"))
    e2e = _number(measured.get("e2e_p90_s"))
    slo: dict[str, float] = {"error_rate": gate.max_error_rate}
    if gate.max_ttft_ms is not None:
        slo["ttft_p90_ms"] = gate.max_ttft_ms
    if gate.max_e2e_s is not None:
        slo["e2e_p90_s"] = gate.max_e2e_s
    reasons: list[str] = []
    verdict: Literal["promoted", "rolled_back"]
    if requests < gate.min_requests:
        reasons.append(
            f"only {requests} request(s) answered in {window_s:.0f}s (fewer than "
            f"{gate.min_requests}): promoted on health alone"
        )
        verdict = "promoted"
    else:
        if error_rate is not None and error_rate > gate.max_error_rate:
            reasons.append(
                f"error rate {error_rate:.3f} ({errors} of {requests}) is above "
                f"{gate.max_error_rate:g}"
            )
        if gate.max_ttft_ms is not None and (ttft is None or ttft > gate.max_ttft_ms):
            shown = "not measured" if ttft is None else f"{ttft:.0f} ms"
            reasons.append(f"p90 time to first token {shown} is above {gate.max_ttft_ms:g} ms")
        if gate.max_e2e_s is not None and (e2e is None or e2e > gate.max_e2e_s):
            shown = "not measured" if e2e is None else f"{e2e:.2f} s"
            reasons.append(f"p90 end-to-end latency {shown} is above {gate.max_e2e_s:g} s")
        verdict = "rolled_back" if reasons else "promoted"
        if not reasons:
            reasons.append(f"every SLO met over {requests} request(s) in {window_s:.0f}s")
    return GateReport(
        revision=revision,
        verdict=verdict,
        reasons=tuple(reasons),
        requests=requests,
        errors=errors,
        error_rate=None if error_rate is None else round(error_rate, 4),
        ttft_p90_ms=ttft,
        e2e_p90_s=None if e2e is None else round(e2e, 3),
        window_s=round(window_s, 1),
        traffic_percent=gate.traffic_percent,
        slo=slo,
        decided_at=now_iso(),
    )


def never_ready(gate: RolloutGate | None, *, revision: str, why: str) -> GateReport:
    """The report of a new revision that never became ready, so was never measured."""
    return GateReport(
        revision=revision,
        verdict="rolled_back",
        reasons=(f"never became ready: {why}",),
        requests=0,
        errors=0,
        error_rate=None,
        ttft_p90_ms=None,
        e2e_p90_s=None,
        window_s=0.0,
        traffic_percent=gate.traffic_percent if gate is not None else 0,
        decided_at=now_iso(),
    )


def not_measured(gate: RolloutGate, *, revision: str, why: str) -> GateReport:
    """The report of a ready revision whose measurements could not be read: rolled back,
    since nothing says it meets its SLOs."""
    return dataclasses.replace(
        never_ready(gate, revision=revision, why=why),
        reasons=(f"not measured: {why}",),
        window_s=float(gate.window_s),
    )


def rollout_key(digest: str, gate: RolloutGate | None) -> str:
    """What a rollback rejects: the revision with its gate."""
    shown = json.dumps(dataclasses.asdict(gate), sort_keys=True) if gate is not None else "-"
    return f"{digest}:{shown}"


def report_from(raw: Mapping[str, Any]) -> GateReport:
    """A GateReport from its dict form (as status and the stores keep it)."""
    fields = dict(raw)
    fields["reasons"] = tuple(fields.get("reasons") or ())
    return GateReport(**fields)
