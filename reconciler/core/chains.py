"""Step chains: the DAGs that plan() produces and the executor runs.

Plain frozen values, so plan stays pure and the engine can persist and resume them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # imported by graph(): ~0.3 s of CPU that most importers never need
    import networkx as nx

ChainAction = Literal["apply", "delete", "execute", "deprovision"]
"""``deprovision``: a Workflow's deprovision (its graph, or the undo of its last provision)
run on request while its spec stays in Git."""


@dataclasses.dataclass(frozen=True)
class StepNode:
    """One node of a chain: a typed step with its inputs and upstream nodes.

    ``inputs`` may hold ``${{ }}`` placeholders, filled at run time from the chain's
    params and upstream outputs. ``pass_outputs`` maps an upstream node id to the output
    key handed to this node as an input of the same name (``previous_node_inputs``).
    """

    id: str
    type: str
    inputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    after: tuple[str, ...] = ()
    pass_outputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None

    def as_dict(self, *, with_inputs: bool = True) -> dict[str, Any]:
        """JSON values: the stored plan of record, or (without inputs) a plan's display."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if with_inputs:
            data["inputs"] = dict(self.inputs)
        data.update(
            after=list(self.after),
            pass_outputs=dict(self.pass_outputs),
            retries=self.retries,
            retry_delay=self.retry_delay,
            timeout=self.timeout,
        )
        return data


@dataclasses.dataclass(frozen=True)
class Chain:
    """The steps that close the difference for one object at one revision."""

    kind: str
    name: str
    action: ChainAction
    revision: str
    spec_hash: str
    steps: tuple[StepNode, ...]
    cluster: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timeout: float | None = None
    """Seconds the whole execution may take (a Workflow's config.timeout); None: no limit."""

    @property
    def object_key(self) -> str:
        return f"{self.kind}/{self.name}"

    def graph(self) -> nx.DiGraph:
        """The DAG of this chain: an edge from every upstream node to its dependant."""
        import networkx as nx

        graph = nx.DiGraph()
        for step in self.steps:
            graph.add_node(step.id)
        for step in self.steps:
            for upstream in (*step.after, *step.pass_outputs):
                graph.add_edge(upstream, step.id)
        return graph

    def step_types(self) -> tuple[str, ...]:
        return tuple(step.type for step in self.steps)
