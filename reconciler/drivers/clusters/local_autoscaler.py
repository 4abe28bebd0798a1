"""The local driver's autoscaler: a worker count from the proxy's signals, within bounds.

The one place where reconciler runs its own scaling loop (on Kubernetes the cluster's
HPA or KEDA does it). Each target votes for a worker count, the largest vote wins, and
the result is kept within ``min_workers``..``max_workers``:

- ``queue_depth`` q: every request the proxy holds (answered now or waiting) is spread
  over workers that each answer ``slots`` at once and hold q more waiting, so the vote is
  ``ceil((in_flight + waiting) / (slots + q))``: at that count each worker has about q
  requests waiting, and an idle endpoint votes for ``min_workers``.
- ``ttft_ms`` t: as Kubernetes' HPA does for a per-pod metric, ``ceil(current * p90 / t)``
  with the p90 time to first token the proxy measured over its signal window (queueing
  included); no request in the window votes for ``min_workers``.

A higher count is used at once; a lower one only once every vote of the last
``scale_down_delay_s`` seconds was at most that low (the HPA's scale-down stabilization),
so a short lull does not stop workers that a burst needs again.
"""

from __future__ import annotations

import collections
import dataclasses
import math

from reconciler.drivers.clusters.protocol import ScalingPolicy


@dataclasses.dataclass(frozen=True)
class Signals:
    """What the proxy measured: requests answered now and waiting, p90 TTFT (ms)."""

    in_flight: int
    waiting: int
    ttft_p90_ms: float | None


@dataclasses.dataclass(frozen=True)
class Decision:
    to_workers: int
    why: str


class Autoscaler:
    """Recommends a worker count; keeps the recent votes for scale-down stabilization."""

    def __init__(self, policy: ScalingPolicy, *, slots: int) -> None:
        self.policy = policy
        self.slots = max(slots, 1)
        self._votes: collections.deque[tuple[float, int]] = collections.deque()

    def _clamp(self, count: int) -> int:
        return min(max(count, self.policy.min_workers), self.policy.max_workers)

    def votes(self, current: int, signals: Signals) -> list[tuple[int, str]]:
        """(count, why) per target."""
        policy = self.policy
        found: list[tuple[int, str]] = []
        load = signals.in_flight + signals.waiting
        if policy.queue_depth is not None:
            per_worker = self.slots + policy.queue_depth
            wanted = math.ceil(load / per_worker) if load else policy.min_workers
            found.append(
                (
                    wanted,
                    f"{load} request(s) in flight or waiting ({signals.waiting} waiting) for "
                    f"{self.slots} slot(s) + {policy.queue_depth:g} waiting per worker",
                )
            )
        if policy.ttft_ms is not None:
            p90 = signals.ttft_p90_ms
            if p90 is None:
                found.append((policy.min_workers, "no request measured in the window"))
            else:
                wanted = math.ceil(max(current, 1) * p90 / policy.ttft_ms)
                found.append(
                    (wanted, f"p90 time to first token {p90:.0f} ms, target {policy.ttft_ms:g} ms")
                )
        return found

    def decide(self, *, now: float, current: int, signals: Signals) -> Decision | None:
        """The new worker count and why, or None to stay at ``current``."""
        votes = self.votes(current, signals)
        if not votes:
            return None
        count, why = max(votes, key=lambda vote: vote[0])
        wanted = self._clamp(count)
        if wanted != count:
            why += f" -> {count}, kept within {self.policy.min_workers}..{self.policy.max_workers}"
        self._votes.append((now, wanted))
        horizon = now - self.policy.scale_down_delay_s
        while self._votes and self._votes[0][0] < horizon:
            self._votes.popleft()
        if wanted > current:
            return Decision(wanted, why)
        if wanted < current:
            held = max(vote for _, vote in self._votes)
            if held < current:
                delay = self.policy.scale_down_delay_s
                return Decision(held, f"{why}; at most {held} for the last {delay:g}s")
        return None
