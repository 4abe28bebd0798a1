"""The cluster each Workflow run targets, picked when the run is submitted.

Every way a run starts goes through :meth:`RunTargets.target` before the executor gets
its chain: a change in Git (the reconciler's submit hook), a schedule's tick, a start
through the API (which may name one ``environment``). The choice itself is pure
(:mod:`reconciler.core.run_targets`); this gathers the facts it needs from the daemon:
the Clusters of the last valid revision, which of them are Ready (their recorded phase),
how many executions are queued or running on each, and the cluster the Workflow's
previous run targeted.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Collection, Mapping

from reconciler.core import run_targets
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState
from reconciler.engine.store import Store

log = logging.getLogger("reconciler.daemon.workflow_targets")


class RunTargets:
    """Aims Workflow runs at a cluster of their environments."""

    def __init__(self, *, store: Store, desired: Callable[[], Mapping[str, ObjectState]]) -> None:
        self._store = store
        self._desired = desired

    def target(
        self,
        chain: Chain,
        *,
        environment: str | None = None,
        given: Collection[str] = (),
    ) -> Chain:
        """``chain`` (a Workflow's ``execute`` run) on the cluster its strategy picks;
        any other chain, or a Workflow without environments, as it is. ``given``: the
        params the caller set (the pick does not replace them)."""
        if chain.kind != "Workflow" or chain.action != "execute":
            return chain
        desired = self._desired()
        state = desired.get(chain.object_key)
        if state is None or not run_targets.environments_of(state.spec):
            return chain
        clusters = {s.name: s for s in desired.values() if s.kind == "Cluster"}
        aimed, chosen = run_targets.target_run(
            chain,
            state.spec,
            clusters,
            self._facts(chain.name, clusters),
            environment=environment,
            given=given,
        )
        if chosen is None:
            log.warning(
                "no Cluster is in the workflow's environments; the run goes where its graph says",
                extra={"workflow": chain.name, "environments": state.spec.get("environments")},
            )
        return aimed

    def _facts(
        self, workflow: str, clusters: Mapping[str, ObjectState]
    ) -> run_targets.ClusterFacts:
        ready = frozenset(
            name
            for name in clusters
            if (record := self._store.get_object("Cluster", name)) is not None
            and record.phase == "Ready"
        )
        busy: collections.Counter[str] = collections.Counter(
            record.chain.cluster
            for record in self._store.unfinished_executions()
            if record.chain.cluster is not None
        )
        previous = self._store.list_executions(kind="Workflow", name=workflow, limit=10)
        last = next((r.chain.cluster for r in previous if r.action == "execute"), None)
        return run_targets.ClusterFacts(ready=ready, busy=dict(busy), previous=last)
