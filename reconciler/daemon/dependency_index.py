"""Which objects are parked waiting on which, so a status change wakes exactly them.

An object that cannot go on until another one is settled (a Deployment until its Model is
Ready, a Model's delete until the Deployments using it are gone) is parked here instead
of being retried on a timer: it costs nothing while it waits, says what it waits for once,
and is handed back to the work queue when one of the objects it waits on moves. Parking
again on the same objects (or on fewer of them) is not news, so the caller can tell a new
wait (worth a log line) from the same one found again.
"""

from __future__ import annotations

from collections.abc import Iterable


class DependencyIndex:
    """Parked keys and the keys they wait on, indexed both ways."""

    def __init__(self) -> None:
        self._waits: dict[str, frozenset[str]] = {}
        self._waiters: dict[str, set[str]] = {}

    def park(self, key: str, on: Iterable[str]) -> bool:
        """Park ``key`` until one of ``on`` moves; True when this wait is news: ``key`` was
        not parked, or now waits on something it did not wait on before (waiting on
        fewer of the same is not)."""
        targets = frozenset(on)
        before = self._waits.get(key)
        if before == targets:
            return False
        if before is not None:
            self._unlink(key, before)
        self._waits[key] = targets
        for target in targets:
            self._waiters.setdefault(target, set()).add(key)
        return before is None or not targets <= before

    def release(self, key: str) -> bool:
        """``key`` no longer waits; True if it was parked."""
        before = self._waits.pop(key, None)
        if before is None:
            return False
        self._unlink(key, before)
        return True

    def _unlink(self, key: str, targets: frozenset[str]) -> None:
        for target in targets:
            waiting = self._waiters.get(target)
            if waiting is not None:
                waiting.discard(key)
                if not waiting:
                    del self._waiters[target]

    def waiting_on(self, key: str) -> frozenset[str]:
        """What ``key`` waits for (empty when it is not parked)."""
        return self._waits.get(key, frozenset())

    def waiters(self, target: str) -> frozenset[str]:
        """The keys parked on ``target``."""
        return frozenset(self._waiters.get(target, ()))

    def __contains__(self, key: object) -> bool:
        return key in self._waits

    def __len__(self) -> int:
        return len(self._waits)
