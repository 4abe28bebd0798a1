"""What a cancel does to a running chain, and what it tells the one who asked.

A cancel (by the API, or by a newer chain of the same object superseding this one) does
not wait for the running step to end: every step of the chain that is running is
interrupted at its next await (an HTTP wait, a Kubernetes wait, a subprocess: steps that
run one terminate it, then kill it after :data:`SUBPROCESS_GRACE_S`), recorded as
cancelled with the log it had written so far, and, for a cancel on request, undone where
its step type declares an undo (``deploy_model`` -> ``undeploy_model``): the undo runs as
one more step of the same execution, fed the interrupted step's inputs that the undo
takes. A superseded chain is not undone: the newer chain applies the object anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from reconciler.core import chains
from reconciler.core.step_types import CATALOGUE
from reconciler.drivers import child_processes

SUBPROCESS_GRACE_S = child_processes.GRACE_S
"""How long a step's subprocess has to exit after SIGTERM before it is killed."""
UNDO_PREFIX = "undo:"

CancelState = Literal["cancelled", "cancelling", "finished"]


@dataclasses.dataclass(frozen=True)
class CancelReport:
    """The answer to a cancel: what happens now."""

    execution_id: str
    state: CancelState
    """``cancelled``: it never started; ``cancelling``: running steps are being
    interrupted; ``finished``: it had already ended (nothing was done)."""
    interrupting: tuple[str, ...] = ()
    """``node (type)`` of each step interrupted."""
    undo: tuple[str, ...] = ()
    """``undo_type for node`` of each undo that will run."""
    grace_s: float = SUBPROCESS_GRACE_S

    @property
    def accepted(self) -> bool:
        return self.state != "finished"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.execution_id,
            "state": self.state,
            "cancelling": self.state == "cancelling",
            "interrupting": list(self.interrupting),
            "undo": list(self.undo),
            "subprocess_grace_s": self.grace_s,
            "message": self.message(),
        }

    def message(self) -> str:
        if self.state == "finished":
            return f"execution {self.execution_id} has already finished"
        if self.state == "cancelled":
            return f"execution {self.execution_id} had not started; it never will"
        parts = [f"interrupting {', '.join(self.interrupting) or 'no running step'}"]
        parts.append(
            f"subprocesses get {self.grace_s:g}s after SIGTERM before they are killed"
        )
        if self.undo:
            parts.append(f"then undoing: {', '.join(self.undo)}")
        return "; ".join(parts)


def undo_type(step_type: str) -> str | None:
    """The step type that reverses ``step_type`` (None: it has none)."""
    signature = CATALOGUE.get(step_type)
    return signature.undo if signature is not None else None


def undo_node(node: chains.StepNode, inputs: Mapping[str, Any]) -> chains.StepNode | None:
    """The step that undoes an interrupted ``node`` run with ``inputs``, or None."""
    undo = undo_type(node.type)
    if undo is None:
        return None
    signature = CATALOGUE[undo]
    given = {k: v for k, v in inputs.items() if signature.open_inputs or k in signature.inputs}
    return chains.StepNode(
        id=f"{UNDO_PREFIX}{node.id}",
        type=undo,
        inputs=given,
        retries=node.retries,
        retry_delay=node.retry_delay,
    )
