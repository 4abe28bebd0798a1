"""A new revision of a local endpoint, rolled out beside the serving one.

``recreate`` stops the serving workers, then starts the new ones. Otherwise the new
revision is a candidate that moves through phases, one step per supervision round (so a
restarted daemon goes on from where the registry says it was):

- ``starting``: its first workers start without traffic (one worker when gated, all of
  them otherwise); it is rolled back if they do not all answer their health path within
  the startup timeout, or fail to start ``candidate_start_failures`` times in a row;
- ``measuring`` (gated only): the proxy gives it ``traffic_percent`` of the requests for
  the gate's window (longer, up to WINDOW_STRETCH times, while fewer than
  ``min_requests`` were answered); then rollout_gate.judge compares what the proxy
  measured of it (error rate, p90 time to first token and end-to-end latency) with the
  SLOs;
- ``promoting``: its other workers start (still with its share of the traffic); once all
  answer, it becomes the serving revision and the old workers are retired (drained,
  then stopped).

A rollback retires the candidate's workers the same way, keeps the old revision serving,
records the measurements (``last_rollout``) and remembers the revision and gate as
rejected: the same spec is not tried again, a changed one is.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import aiohttp

from reconciler.drivers.clusters import local_pool, local_registry, rollout_gate
from reconciler.drivers.clusters.protocol import GateReport, RolloutGate

if TYPE_CHECKING:
    from reconciler.drivers.clusters.local_endpoint import EndpointRunner

_log = logging.getLogger("reconciler.drivers.local")
STARTING, MEASURING, PROMOTING = "starting", "measuring", "promoting"
CANDIDATE_START_FAILURES = 3
WINDOW_STRETCH = 4
"""A window that saw fewer than ``min_requests`` answers grows up to this many times."""


def _gate(candidate: local_registry.Candidate) -> RolloutGate | None:
    return RolloutGate(**candidate.gate) if candidate.gate else None


def begin(
    runner: EndpointRunner, revision: local_registry.Revision, *, gate: RolloutGate | None
) -> None:
    """Start rolling ``revision`` out beside the serving one (replacing another candidate)."""
    record = runner.record
    old = record.candidate
    if old is not None:
        for worker in runner.workers_of(old.revision.digest):
            runner.retire(worker)
    record.candidate = local_registry.Candidate(
        revision=revision,
        phase=STARTING,
        started_at=time.time(),
        gate=dataclasses.asdict(gate) if gate is not None else None,
    )
    runner.host.save()
    _log.info("endpoint %s: rolling out revision %s", runner.name, revision.digest[:12])


def cancel(runner: EndpointRunner) -> None:
    """Drop the candidate (the spec went back to the serving revision)."""
    record = runner.record
    if record.candidate is None:
        return
    for worker in runner.workers_of(record.candidate.revision.digest):
        runner.retire(worker)
    _log.info(
        "endpoint %s: rollout of %s cancelled", runner.name, record.candidate.revision.digest[:12]
    )
    record.candidate = None
    runner.host.save()


def candidate_workers(runner: EndpointRunner) -> int:
    """How many workers the candidate should have in its phase."""
    candidate = runner.record.candidate
    if candidate is None:
        return 0
    if candidate.phase == PROMOTING or (candidate.phase == STARTING and not candidate.gate):
        return max(runner.record.workers_desired, 1)
    return 1


def candidate_share(runner: EndpointRunner) -> int:
    """The candidate's share of the requests now, in percent."""
    candidate = runner.record.candidate
    if candidate is None or candidate.phase not in (MEASURING, PROMOTING):
        return 0
    gate = _gate(candidate)
    return gate.traffic_percent if gate is not None else 0


def describe(runner: EndpointRunner) -> str:
    candidate = runner.record.candidate
    if candidate is None:
        return ""
    digest = candidate.revision.digest[:12]
    mine = runner.workers_of(candidate.revision.digest)
    ready = len(runner.healthy(mine))
    text = f"rolling out {digest}: {candidate.phase}, {ready} of {len(mine)} new worker(s) ready"
    if candidate.phase == MEASURING and candidate.measuring_since is not None:
        gate = _gate(candidate)
        elapsed = time.time() - candidate.measuring_since
        if gate is not None:
            text += f", measured {elapsed:.0f}s of {gate.window_s:g}s at {gate.traffic_percent}%"
    for worker in mine:
        unit = runner.units.get(worker.id)
        if unit is not None and not unit.healthy:
            text += f"; new worker {worker.id} {unit.describe()}"
    return text


async def advance(runner: EndpointRunner, session: aiohttp.ClientSession) -> None:
    """Move the candidate one phase on when its conditions hold."""
    record = runner.record
    candidate = record.candidate
    if candidate is None:
        return
    gate = _gate(candidate)
    mine = runner.workers_of(candidate.revision.digest)
    units = [runner.units[w.id] for w in mine if w.id in runner.units]
    all_ready = bool(mine) and len(mine) >= candidate_workers(runner)
    all_ready = all_ready and all(unit.healthy for unit in units)
    if candidate.phase == STARTING:
        if all_ready:
            candidate.phase = MEASURING if gate is not None else PROMOTING
            candidate.measuring_since = time.time() if gate is not None else None
            runner.host.save()
            return
        failing = [u for u in units if u.failures >= CANDIDATE_START_FAILURES]
        late = time.time() - candidate.started_at > runner.settings.startup_timeout_s
        if failing or late:
            why = "; ".join(f"{u.spec.key} {u.describe()}" for u in failing or units)
            why = why or "no worker started"
            roll_back(
                runner,
                rollout_gate.never_ready(gate, revision=candidate.revision.digest, why=why),
            )
        return
    if candidate.phase == MEASURING and gate is not None:
        assert candidate.measuring_since is not None
        elapsed = time.time() - candidate.measuring_since
        if elapsed < gate.window_s:
            return
        stats = await local_pool.fetch_stats(
            session, record.port, window_s=elapsed, timeout_s=runner.settings.health_timeout_s
        )
        if stats is None:
            return  # the proxy did not answer: measure again next round
        answered = int(stats.window(candidate.revision.digest).get("requests") or 0)
        if answered < gate.min_requests and elapsed < gate.window_s * WINDOW_STRETCH:
            return  # too few answers yet to judge: the window grows, up to its stretch
        report = rollout_gate.judge(
            gate,
            revision=candidate.revision.digest,
            measured=stats.window(candidate.revision.digest),
            window_s=elapsed,
        )
        if report.verdict == "rolled_back":
            roll_back(runner, report, measured=True)
            return
        candidate.measured = dataclasses.asdict(report)
        candidate.phase = PROMOTING
        runner.host.save()
        reasons = "; ".join(report.reasons)
        _log.info("endpoint %s: %s passed its gate: %s", runner.name, report.revision[:12], reasons)
        return
    if candidate.phase == PROMOTING and all_ready:
        promote(runner)


def promote(runner: EndpointRunner) -> None:
    record = runner.record
    candidate = record.candidate
    assert candidate is not None
    old = record.revision
    for worker in runner.workers_of(old.digest):
        runner.retire(worker)
    record.revision = candidate.revision
    if candidate.measured is not None:
        record.last_rollout = candidate.measured
    record.candidate = None
    runner.host.save()
    _log.info("endpoint %s: revision %s serves now", runner.name, candidate.revision.digest[:12])


def roll_back(runner: EndpointRunner, report: GateReport, *, measured: bool = False) -> None:
    """Retire the candidate; one that failed its gate (``measured``) is not tried again."""
    record = runner.record
    candidate = record.candidate
    assert candidate is not None
    for worker in runner.workers_of(candidate.revision.digest):
        runner.retire(worker)
    record.last_rollout = dataclasses.asdict(report)
    if measured:
        record.rejected = rollout_gate.rollout_key(candidate.revision.digest, _gate(candidate))
    record.candidate = None
    runner.host.save()
    _log.warning(
        "endpoint %s: revision %s rolled back: %s; revision %s keeps serving",
        runner.name,
        candidate.revision.digest[:12],
        "; ".join(report.reasons),
        record.revision.digest[:12],
    )
