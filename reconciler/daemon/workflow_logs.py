"""Step logs a Workflow does not keep are taken out of the store when its runs end.

Steps write their log as they run and the executor stores it with each step's end; a
Workflow's ``config.logs`` (``enabled: false``, or a ``level`` above info) says how much
of it is kept. When an execution of a Workflow ends, the text of each of its steps is
replaced by what the policy keeps (:mod:`reconciler.engine.step_logs`), so the store and
every API serve only that. The policy is the Workflow's as it is in Git
when the run ends; a Workflow no longer in Git keeps its last run's logs whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from reconciler.core.diff import ObjectState
from reconciler.engine.records import ExecutionRecord
from reconciler.engine.step_logs import policy_of
from reconciler.engine.store import Store

log = logging.getLogger("reconciler.daemon.workflow_logs")


class StepLogKeeper:
    """Applies each Workflow's log policy to the steps of its finished executions."""

    def __init__(self, *, store: Store, desired: Callable[[], Mapping[str, ObjectState]]) -> None:
        self._store = store
        self._desired = desired

    def on_finished(self, record: ExecutionRecord) -> None:
        if record.kind != "Workflow":
            return
        state = self._desired().get(record.object_key)
        if state is None:
            return
        policy = policy_of(state.spec)
        if policy.keeps_everything:
            return
        changed = {
            step.node_id: kept
            for step in self._store.get_steps(record.id)
            if (kept := policy.apply(step.logs)) != step.logs
        }
        try:
            self._store.replace_step_logs(record.id, changed)
        except Exception:  # the run's result stands; the logs stay as written
            log.exception("could not trim the step logs of execution %s", record.id)
