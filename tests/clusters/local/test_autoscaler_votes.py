"""The local autoscaler's arithmetic: each target's vote, the bounds, the scale-down delay.

Pure: signals in, a decision out, with the clock passed in.
"""

from __future__ import annotations

from reconciler.drivers.clusters.local_autoscaler import Autoscaler, Signals
from reconciler.drivers.clusters.protocol import ScalingPolicy

QUIET = Signals(in_flight=0, waiting=0, ttft_p90_ms=None)


def test_the_queue_target_counts_slots_and_waiting_requests_per_worker() -> None:
    scaler = Autoscaler(ScalingPolicy(min_workers=1, max_workers=8, queue_depth=2), slots=4)
    busy = Signals(in_flight=4, waiting=14, ttft_p90_ms=None)
    decision = scaler.decide(now=0.0, current=1, signals=busy)
    assert decision is not None and decision.to_workers == 3  # ceil(18 / (4 + 2))
    assert "18 request(s) in flight or waiting (14 waiting)" in decision.why


def test_the_ttft_target_scales_like_the_hpa_and_an_idle_window_votes_for_min() -> None:
    scaler = Autoscaler(ScalingPolicy(min_workers=2, max_workers=10, ttft_ms=200), slots=1)
    slow = Signals(in_flight=3, waiting=0, ttft_p90_ms=700.0)
    decision = scaler.decide(now=0.0, current=2, signals=slow)
    assert decision is not None and decision.to_workers == 7  # ceil(2 * 700 / 200)
    assert "p90 time to first token 700 ms, target 200 ms" in decision.why
    assert [vote for vote, _ in scaler.votes(7, QUIET)] == [2]


def test_bounds_hold_and_the_largest_vote_wins() -> None:
    policy = ScalingPolicy(min_workers=1, max_workers=3, queue_depth=1, ttft_ms=100)
    scaler = Autoscaler(policy, slots=1)
    decision = scaler.decide(
        now=0.0, current=1, signals=Signals(in_flight=1, waiting=1, ttft_p90_ms=900.0)
    )
    assert decision is not None and decision.to_workers == 3
    assert "-> 9, kept within 1..3" in decision.why


def test_a_lower_count_waits_until_every_vote_of_the_delay_was_that_low() -> None:
    policy = ScalingPolicy(min_workers=1, max_workers=4, queue_depth=1, scale_down_delay_s=10)
    scaler = Autoscaler(policy, slots=1)
    assert scaler.decide(now=0.0, current=1, signals=Signals(4, 4, None)) is not None
    assert scaler.decide(now=1.0, current=4, signals=QUIET) is None, "within the delay"
    assert scaler.decide(now=9.0, current=4, signals=Signals(2, 0, None)) is None
    decision = scaler.decide(now=11.5, current=4, signals=QUIET)
    assert decision is not None and decision.to_workers == 1
    assert "at most 1 for the last 10s" in decision.why
    assert scaler.decide(now=12.0, current=1, signals=QUIET) is None
