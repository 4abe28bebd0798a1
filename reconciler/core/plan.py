"""From a diff to a plan: what runs, in which order, and what is held back and why.

Items follow the reference graph: creates and updates run dependencies first (a
Deployment after its Model, Cluster and template), deletes run after them in reverse (a
Deployment goes before its Model). A Deployment is redeployed when its Model or
DeploymentTemplate changed; an object still referenced is never pruned, nor one that
carries ``reconciler/prune: disabled``. Pure: plain values in, a plain Plan out, so the
``plan`` command and the daemon share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # imported where a graph is built: ~0.3 s of CPU a command may not need
    import networkx as nx

from reconciler.core.chain_builders import (
    SUSPENDED_NOTE,
    BuiltChain,
    ChainRequest,
    ChainRequestAction,
    build_chain,
    literal_name,
)
from reconciler.core.chains import Chain
from reconciler.core.diff import Change, ChangeAction, ObjectState
from reconciler.core.sizing.plan_sizing import size_from_specs
from reconciler.core.sizing.roofline import SizingResult
from reconciler.specs.registry import KINDS

ItemStatus = Literal["run", "noop", "blocked", "kept", "suspended"]
"""run: its chain will run; noop: nothing to run; blocked: a delete that other objects
still need; kept: a delete that ``reconciler/prune: disabled`` stops; suspended: the
object has ``spec.suspend: true``."""

ACTIONS: tuple[ChangeAction, ...] = ("create", "update", "delete", "unchanged")
_TRIGGERING_KINDS = ("Model", "DeploymentTemplate")


@dataclasses.dataclass(frozen=True)
class PlanItem:
    """One object's change, the chain that closes it, and why.

    ``reason`` says why an object changes when another one caused it ("Model x changed").
    ``waits_for`` lists the ``kind/name`` of items whose chains must finish first.
    """

    change: Change
    chain: Chain | None
    status: ItemStatus
    reason: str | None = None
    notes: tuple[str, ...] = ()
    waits_for: tuple[str, ...] = ()
    sizing: SizingResult | str | None = None
    """A self-hosted Deployment's proposed shape (or why none is estimated)."""

    @property
    def key(self) -> str:
        return self.change.key


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every object's item in running order: applies by dependency, then deletes."""

    items: tuple[PlanItem, ...]
    revision: str

    @property
    def has_changes(self) -> bool:
        return any(item.change.action != "unchanged" for item in self.items)

    @property
    def counts(self) -> dict[ChangeAction, int]:
        counts: dict[ChangeAction, int] = dict.fromkeys(ACTIONS, 0)
        for item in self.items:
            counts[item.change.action] += 1
        return counts

    def chains(self) -> tuple[Chain, ...]:
        """The chains to run, in plan order."""
        return tuple(item.chain for item in self.items if item.chain is not None)


# --- the reference graph -------------------------------------------------------------


def references_of(state: ObjectState) -> list[str]:
    """``kind/name`` of every object ``state`` refers to (whether it exists or not)."""
    spec = state.spec
    found: list[str] = []
    if state.kind == "Deployment":
        for field, kind in (
            ("model", "Model"),
            ("cluster", "Cluster"),
            ("template", "DeploymentTemplate"),
            ("credential", "Credential"),
            ("project", "Project"),
        ):
            value = spec.get(field)
            if isinstance(value, str):
                found.append(f"{kind}/{value}")
        for adapter in spec.get("adapters") or ():
            model = adapter.get("model") if isinstance(adapter, Mapping) else None
            if isinstance(model, str):
                found.append(f"Model/{model}")
    elif state.kind == "Model":
        source = spec.get("source")
        credential = source.get("credential") if isinstance(source, Mapping) else None
        if isinstance(credential, str):
            found.append(f"Credential/{credential}")
    elif state.kind == "Workflow":
        if isinstance(spec.get("project"), str):
            found.append(f"Project/{spec['project']}")
        found.extend(_workflow_references(spec))
    return list(dict.fromkeys(found))


_NODE_TARGETS = {"wait_ready": ("deployment", "Deployment"), "k8s_job": ("cluster", "Cluster")}


def _workflow_references(spec: Mapping[str, Any]) -> Iterable[str]:
    params = spec.get("user_params") or {}
    for graph in (spec.get("workflows") or {}).values():
        if not isinstance(graph, Mapping):
            continue
        for node in graph.get("nodes") or []:
            target = _NODE_TARGETS.get(str(node.get("type")))
            if target is None:
                continue
            field, kind = target
            name = literal_name((node.get("user_inputs") or {}).get(field), params)
            if name is not None:
                yield f"{kind}/{name}"


_KIND_RANK: dict[str, int] = {kind: rank for rank, kind in enumerate(KINDS)}


def _sort_key(key: str) -> tuple[int, str]:
    kind, _, name = key.partition("/")
    return _KIND_RANK.get(kind, len(_KIND_RANK)), name


def reference_graph(
    desired: Mapping[str, ObjectState],
    current: Mapping[str, ObjectState],
    *,
    references: Callable[[ObjectState], Sequence[str]] = references_of,
) -> nx.DiGraph:
    """Edges from each object to those that refer to it (desired state wins)."""
    import networkx as nx

    graph = nx.DiGraph()
    keys = set(desired) | set(current)
    graph.add_nodes_from(keys)
    for key in keys:
        state = desired.get(key) or current[key]
        for target in references(state):
            if target in keys and target != key:
                graph.add_edge(target, key)
    return graph


def dependency_order(graph: nx.DiGraph) -> list[str]:
    """Dependencies before dependants; ties by kind order, then name."""
    import networkx as nx

    try:
        return list(nx.lexicographical_topological_sort(graph, key=_sort_key))
    except nx.NetworkXUnfeasible:  # a cycle: validation reports it; keep kind order
        return sorted(graph.nodes, key=_sort_key)


# --- planning ------------------------------------------------------------------------


def _triggers(state: ObjectState, changed: set[str]) -> list[str]:
    """Why a Deployment must redeploy because something it uses changed."""
    if state.kind != "Deployment":
        return []
    return [
        f"{ref.replace('/', ' ', 1)} changed"
        for ref in references_of(state)
        if ref.split("/", 1)[0] in _TRIGGERING_KINDS and ref in changed
    ]


def _status(chain: Chain | None, note: str | None) -> ItemStatus:
    if chain is not None:
        return "run"
    return "suspended" if note == SUSPENDED_NOTE else "noop"


@dataclasses.dataclass
class PlanMemo:
    """What one plan can lend the next, for a caller that plans the same repo again and
    again (the daemon, once per cycle): the reference graph and its order while no object
    came, went or changed, and each object's chain while its spec and change are the
    same. A plan made with a memo equals one made without; the memo only saves work.
    """

    fingerprint: int | None = None
    refs: dict[str, tuple[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    graph: nx.DiGraph | None = None
    order: list[str] = dataclasses.field(default_factory=list)
    chains: dict[tuple[Any, ...], BuiltChain] = dataclasses.field(default_factory=dict)
    used: set[tuple[Any, ...]] = dataclasses.field(default_factory=set)

    def build(self, request: ChainRequest) -> BuiltChain:
        key = (request.action, request.state.key, request.state.spec_hash, request.changed)
        self.used.add(key)
        found = self.chains.get(key)
        if found is None:
            found = self.chains[key] = build_chain(request)
        elif found.chain is not None and found.chain.revision != request.revision:
            # The same chain for another revision: a shallow copy with the revision set
            # (dataclasses.replace re-runs __init__ and copy.copy goes through
            # __reduce_ex__; 10,000 of either a cycle show).
            found = self.chains[key] = BuiltChain(
                _restamped(found.chain, request.revision), found.note
            )
        return found

    def references(self, state: ObjectState) -> tuple[str, ...]:
        known = self.refs.get(state.key)
        if known is not None and known[0] == state.spec_hash:
            return known[1]
        found = tuple(references_of(state))
        self.refs[state.key] = (state.spec_hash, found)
        return found

    def graph_of(
        self, desired: Mapping[str, ObjectState], current: Mapping[str, ObjectState]
    ) -> tuple[nx.DiGraph, list[str]]:
        """The reference graph and its order, rebuilt only when an object came, went or
        changed what it refers to (a changed spec that refers to the same objects, as a
        workflow's new parameters, keeps both)."""
        keys = desired.keys() | current.keys()
        fingerprint = hash(
            frozenset((key, self.references(desired.get(key) or current[key])) for key in keys)
        )
        if self.graph is None or fingerprint != self.fingerprint:
            self.graph = reference_graph(desired, current, references=self.references)
            self.order = dependency_order(self.graph)
            self.fingerprint = fingerprint
            self.refs = {key: self.refs[key] for key in keys if key in self.refs}
        return self.graph, self.order

    def forget_unused(self) -> None:
        """Keep only the chains the last plan used."""
        self.chains = {key: self.chains[key] for key in self.used if key in self.chains}
        self.used = set()


def _restamped(chain: Chain, revision: str) -> Chain:
    """``chain`` at another revision: its fields shared, only ``revision`` new."""
    copied: Chain = object.__new__(Chain)
    copied.__dict__.update(chain.__dict__)
    copied.__dict__["revision"] = revision
    return copied


def _apply_item(
    change: Change,
    state: ObjectState,
    *,
    changed: set[str],
    revision: str,
    build: Callable[[ChainRequest], BuiltChain] = build_chain,
) -> PlanItem:
    # A create applies everything anyway: another object's change is no cause of it.
    reasons = _triggers(state, changed) if change.action != "create" else []
    if change.action == "unchanged" and not reasons:
        return PlanItem(change, None, "noop")
    if change.action == "unchanged":
        change = dataclasses.replace(change, action="update")
    action: ChainRequestAction = "create" if change.action == "create" else "update"
    # Caused by another object: apply it all, not just the fields that changed here.
    fields = frozenset() if reasons else change.field_paths
    request = ChainRequest(action, state, revision, changed=fields)
    built = build(request)
    notes = (built.note,) if built.note else ()
    return PlanItem(
        change,
        built.chain,
        _status(built.chain, built.note),
        reason="; ".join(reasons) or None,
        notes=notes,
    )


def _delete_item(
    change: Change,
    state: ObjectState,
    *,
    referrers: Sequence[str],
    revision: str,
    build: Callable[[ChainRequest], BuiltChain] = build_chain,
) -> PlanItem:
    if referrers:
        note = f"blocked: still referenced by {', '.join(referrers)}"
        return PlanItem(change, None, "blocked", notes=(note,))
    if state.prune_disabled:
        return PlanItem(change, None, "kept", notes=("kept: prune disabled",))
    built = build(ChainRequest("delete", state, revision))
    notes = (built.note,) if built.note else ()
    return PlanItem(change, built.chain, _status(built.chain, built.note), notes=notes)


def plan_changes(
    changes: Iterable[Change],
    *,
    desired: Mapping[str, ObjectState],
    current: Mapping[str, ObjectState],
    revision: str,
    memo: PlanMemo | None = None,
    size: bool = False,
) -> Plan:
    """Order ``changes`` by the reference graph and attach each one's chain.

    ``desired`` and ``current`` are keyed by ``kind/name`` (what diff_states compared);
    ``revision`` is the desired side's revision, recorded in every chain. ``memo`` (kept
    by the caller between plans) saves rebuilding what did not change. ``size`` adds each
    self-hosted Deployment's proposed shape (``reconciler plan`` shows it).
    """
    by_key = {change.key: change for change in changes}
    build: Callable[[ChainRequest], BuiltChain] = build_chain
    if memo is None:
        graph = reference_graph(desired, current)
        full_order = dependency_order(graph)
    else:
        build = memo.build
        graph, full_order = memo.graph_of(desired, current)
    order = [key for key in full_order if key in by_key]
    changed = {
        key
        for key, change in by_key.items()
        if change.action in ("create", "update") and not desired[key].suspended
    }
    applies: list[PlanItem] = []
    for key in order:
        change = by_key[key]
        if change.action != "delete":
            applies.append(
                _apply_item(change, desired[key], changed=changed, revision=revision, build=build)
            )
    deletes: list[PlanItem] = []
    for key in reversed(order):
        change = by_key[key]
        if change.action == "delete":
            referrers = sorted((k for k in graph.successors(key) if k in desired), key=_sort_key)
            deletes.append(
                _delete_item(
                    change, current[key], referrers=referrers, revision=revision, build=build
                )
            )
    if memo is not None:
        memo.forget_unused()
    if size:
        applies = [_sized(item, desired) for item in applies]
    return Plan(_with_waits(applies, deletes, graph), revision)


def _sized(item: PlanItem, desired: Mapping[str, ObjectState]) -> PlanItem:
    if item.change.kind != "Deployment" or item.chain is None:
        return item
    sizing = size_from_specs(desired[item.key], desired)
    return item if sizing is None else dataclasses.replace(item, sizing=sizing)


def _with_waits(
    applies: list[PlanItem], deletes: list[PlanItem], graph: nx.DiGraph
) -> tuple[PlanItem, ...]:
    """Fill ``waits_for``: applies wait for their dependencies' chains, deletes for their
    dependants' deletions."""
    running_applies = {item.key for item in applies if item.status == "run"}
    running_deletes = {item.key for item in deletes if item.status == "run"}
    items: list[PlanItem] = []
    for item in applies:
        waits = [k for k in graph.predecessors(item.key) if k in running_applies]
        items.append(_waiting(item, waits))
    for item in deletes:
        waits = [k for k in graph.successors(item.key) if k in running_deletes]
        items.append(_waiting(item, waits))
    return tuple(items)


def _waiting(item: PlanItem, waits: list[str]) -> PlanItem:
    if item.chain is None or not waits:
        return item
    # A shallow copy with waits_for set: dataclasses.replace re-runs __init__, and
    # thousands of Deployments wait for their Models in one plan.
    copied: PlanItem = object.__new__(PlanItem)
    copied.__dict__.update(item.__dict__)
    copied.__dict__["waits_for"] = (
        tuple(sorted(waits, key=_sort_key)) if len(waits) > 1 else (waits[0],)
    )
    return copied
