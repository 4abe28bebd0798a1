"""Which steps a change runs, one builder per kind, picked from a registry dict.

A builder turns the plain state of one object (and which of its fields changed) into the
:class:`~reconciler.core.chains.Chain` the executor runs: a Model is added then scanned,
a Deployment deployed then waited for, a Workflow runs its own graph. Pure: builders see
plain values only, so the plan can be computed and tested anywhere.

Built-in chains give each step the object's spec fields plus its name under the kind's
own key (``add_model`` gets ``{"model": name, **spec}``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from reconciler.core.chains import Chain, ChainAction, StepNode
from reconciler.core.diff import ObjectState
from reconciler.core.durations import DurationError, parse_duration
from reconciler.core.step_types import CATALOGUE, NODE_TIMEOUT
from reconciler.core.substitution import PLACEHOLDER, references_in

ChainRequestAction = Literal["create", "update", "delete"]

SELF_HOSTED_SOURCES = frozenset({"hugging_face", "url", "disk"})
WAIT_FOR_MODEL_RETRIES = 60
SUSPENDED_NOTE = "suspended: nothing runs while spec.suspend is true"
UNDO_PROVISION = "undo_provision"
"""A Workflow delete chain's one step before the daemon expands it into the undo of
every finished step of the last provision (it needs the state store, which plan lacks)."""


@dataclasses.dataclass(frozen=True)
class ChainRequest:
    """What to build a chain for.

    ``state`` is the desired state for create and update, the last known one for delete.
    ``changed`` holds the dotted paths of the fields that changed (empty: apply it all).
    """

    action: ChainRequestAction
    state: ObjectState
    revision: str
    changed: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class BuiltChain:
    """The chain a change runs (None: nothing to run) and a note saying why, if useful."""

    chain: Chain | None
    note: str | None = None


ChainBuilder = Callable[[ChainRequest], BuiltChain]


def _inputs(state: ObjectState, name_key: str) -> dict[str, Any]:
    return {**_plain(state.spec), name_key: state.name}


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): item for key, item in value.items()}


def _chain(
    request: ChainRequest,
    steps: Iterable[StepNode],
    *,
    action: ChainAction | None = None,
    cluster: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> BuiltChain:
    return BuiltChain(
        _make_chain(
            request, steps, action=action, cluster=cluster, params=params, timeout=timeout
        )
    )


def _make_chain(
    request: ChainRequest,
    steps: Iterable[StepNode],
    *,
    action: ChainAction | None = None,
    cluster: str | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Chain:
    chosen: ChainAction = action or ("delete" if request.action == "delete" else "apply")
    return Chain(
        kind=request.state.kind,
        name=request.state.name,
        action=chosen,
        revision=request.revision,
        spec_hash=request.state.spec_hash,
        steps=tuple(steps),
        cluster=cluster,
        params=dict(params or {}),
        timeout=timeout,
    )


def _sequence(*steps: tuple[str, dict[str, Any]]) -> list[StepNode]:
    """Steps that run one after the other; each node's id is its step type."""
    nodes: list[StepNode] = []
    for step_type, inputs in steps:
        after = (nodes[-1].id,) if nodes else ()
        nodes.append(StepNode(id=step_type, type=step_type, inputs=inputs, after=after))
    return nodes


# --- kinds without outside effects ---------------------------------------------------


def build_record_spec(request: ChainRequest) -> BuiltChain:
    """Project, DeploymentTemplate, manual Workflow: record the spec, nothing else.

    A Workflow's spec is not passed along: its node inputs hold ``${{ }}`` placeholders
    that only an execution's parameters fill, and recording it needs none of them.
    """
    state = request.state
    spec = {} if state.kind == "Workflow" else _plain(state.spec)
    inputs = {**spec, "kind": state.kind, "name": state.name}
    return _chain(request, _sequence(("record_spec", inputs)))


def build_credential(request: ChainRequest) -> BuiltChain:
    if request.action == "delete":
        return BuiltChain(None, "nothing to run: the secret stays in the host's store")
    return _chain(request, _sequence(("check_secret", _inputs(request.state, "credential"))))


def build_cluster(request: ChainRequest) -> BuiltChain:
    step = "release_cluster" if request.action == "delete" else "check_cluster"
    name = request.state.name
    return _chain(request, _sequence((step, _inputs(request.state, "cluster"))), cluster=name)


# --- models and deployments ----------------------------------------------------------


def needs_scan(state: ObjectState) -> bool:
    """A self-hosted model (files we serve) is scanned unless security_scan is skip."""
    source = state.spec.get("source")
    provider = source.get("provider_type") if isinstance(source, Mapping) else None
    return provider in SELF_HOSTED_SOURCES and state.spec.get("security_scan") != "skip"


def build_model(request: ChainRequest) -> BuiltChain:
    inputs = _inputs(request.state, "model")
    cached = isinstance(request.state.spec.get("cache"), Mapping)
    if request.action == "delete":
        removal = [("uncache_model", inputs)] if cached else []
        return _chain(request, _sequence(*removal, ("remove_model", inputs)))
    steps = [("add_model", inputs)]
    if needs_scan(request.state):
        steps.append(("scan_model", inputs))
    dropped = any(path.split(".")[:2] == ["spec", "cache"] for path in request.changed)
    if cached or dropped:
        steps.append(("cache_model", inputs))  # also once the cache is dropped: it empties
    return _chain(request, _sequence(*steps))


def build_deployment(request: ChainRequest) -> BuiltChain:
    state = request.state
    inputs = _inputs(state, "deployment")
    cluster = state.spec.get("cluster")
    cluster = cluster if isinstance(cluster, str) else None
    if request.action == "delete":
        return _chain(request, _sequence(("undeploy_model", inputs)), cluster=cluster)
    only_workers = request.changed == {"spec.workers"}
    if request.action == "update" and only_workers and isinstance(state.spec.get("workers"), int):
        return _chain(request, _sequence(("scale_deployment", inputs)), cluster=cluster)
    # deploy_model applies, waits until the driver says the endpoint serves, and records
    # it: a wait_ready on the Deployment's own status could only wait for itself. It
    # retries while its Model is not Ready yet (WaitingForModel), for up to ~10 minutes.
    (deploy,) = _sequence(("deploy_model", inputs))
    deploy = dataclasses.replace(deploy, retries=WAIT_FOR_MODEL_RETRIES, retry_delay=10.0)
    return _chain(request, [deploy], cluster=cluster)


# --- workflows -----------------------------------------------------------------------


def _literal_duration(value: Any) -> float | None:
    if not isinstance(value, str) or "${{" in value:
        return None
    try:
        return parse_duration(value)
    except DurationError:
        return None


def _timeout_seconds(value: Any) -> float | None:
    """A literal timeout: a duration or a positive number of seconds; else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    return _literal_duration(value)


def _node_timeout(node: Mapping[str, Any]) -> float | None:
    """A node's literal timeout. A ``node_timeout`` given as a ``${{ }}`` placeholder
    leaves it to the executor, which bounds the step once the placeholder resolves
    (reconciler.engine.node_inputs.step_timeout)."""
    own = _timeout_seconds(node.get("timeout"))
    if own is not None:
        return own
    inputs = node.get("user_inputs") or {}
    for key in (NODE_TIMEOUT, "timeout"):
        value = inputs.get(key)
        if isinstance(value, str) and "${{" in value:
            if key == NODE_TIMEOUT:
                return None
            continue
        found = _timeout_seconds(value)
        if found is not None:
            return found
    return None


def _retry_policy(config: Mapping[str, Any], own: Any = None) -> tuple[int, float]:
    """A step's retries and first retry delay from ``config`` (``retries``,
    ``retry_delay``, ``retry_enabled``) and the node's own ``retries`` (None: config's)."""
    delay = _literal_duration(config.get("retry_delay")) or 30.0
    if config.get("retry_enabled") is False:
        return 0, delay
    retries = int(config.get("retries") or 0) if own is None else int(own)
    return retries, delay


def graph_steps(spec: Mapping[str, Any], graph: Mapping[str, Any]) -> tuple[StepNode, ...]:
    """The StepNodes of one workflow graph (``provision`` or ``deprovision``).

    A node runs after the sources of its edges, the nodes of its ``previous_node_inputs``
    and the nodes its ``${{ node.output }}`` placeholders name. Its retries are the
    node's own or ``config.retries``, none at all with ``config.retry_enabled: false``.
    """
    config = spec.get("config") or {}
    nodes = [node for node in graph.get("nodes") or [] if isinstance(node, Mapping)]
    ids = {str(node.get("id")) for node in nodes}
    edges = [edge for edge in graph.get("edges") or [] if isinstance(edge, Mapping)]
    steps: list[StepNode] = []
    for node in nodes:
        node_id = str(node.get("id"))
        inputs = _plain(node.get("user_inputs") or {})
        upstream = [str(e.get("source")) for e in edges if str(e.get("dest")) == node_id]
        upstream += [ref.name for ref in references_in(inputs) if ref.is_output and ref.name in ids]
        retries, retry_delay = _retry_policy(config, node.get("retries"))
        steps.append(
            StepNode(
                id=node_id,
                type=str(node.get("type")),
                inputs=inputs,
                after=tuple(dict.fromkeys(u for u in upstream if u != node_id)),
                pass_outputs={
                    str(k): str(v) for k, v in (node.get("previous_node_inputs") or {}).items()
                },
                retries=retries,
                retry_delay=retry_delay,
                timeout=_node_timeout(node),
            )
        )
    return tuple(steps)


def literal_name(value: Any, params: Mapping[str, Any] | None = None) -> str | None:
    """The name a step input gives before execution: a literal or, with ``params``, a
    ``${{ param }}`` that spec.user_params fills with a string; else None."""
    if not isinstance(value, str):
        return None
    if "${{" not in value:
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if params is None or whole is None or whole.group(2) is not None:
        return None
    found = params.get(whole.group(1))
    return found if isinstance(found, str) else None


def _job_cluster(steps: Iterable[StepNode]) -> str | None:
    for step in steps:
        if step.type == "k8s_job":
            name = literal_name(step.inputs.get("cluster"))
            if name is not None:
                return name
    return None


def _graph_chain(request: ChainRequest, graph_name: str, action: ChainAction) -> BuiltChain:
    spec = request.state.spec
    graph = (spec.get("workflows") or {}).get(graph_name)
    if not isinstance(graph, Mapping):
        return BuiltChain(None, f"nothing to run: the workflow has no {graph_name} graph")
    steps = graph_steps(spec, graph)
    params = spec.get("user_params") or {}
    timeout = _literal_duration((spec.get("config") or {}).get("timeout"))
    return _chain(
        request, steps, action=action, cluster=_job_cluster(steps), params=params, timeout=timeout
    )


def _undo_types(spec: Mapping[str, Any]) -> list[str]:
    """The step types of the provision graph that declare an undo, in graph order."""
    graph = (spec.get("workflows") or {}).get("provision")
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    found: list[str] = []
    for node in nodes if isinstance(nodes, list) else []:
        kind = node.get("type") if isinstance(node, Mapping) else None
        signature = CATALOGUE.get(kind) if isinstance(kind, str) else None
        if signature is not None and signature.undo is not None:
            found.append(signature.name)
    return found


def build_workflow(request: ChainRequest) -> BuiltChain:
    """A change runs the provision graph (on_change) or records the spec (manual); a
    removal runs the deprovision graph or, without one, undoes what the last provision
    made (when its graph has steps with an undo)."""
    if request.action == "delete":
        workflows = request.state.spec.get("workflows") or {}
        if isinstance(workflows.get("deprovision"), Mapping) or not _undo_types(request.state.spec):
            return _graph_chain(request, "deprovision", "delete")
        return BuiltChain(_undo_chain(request, "delete"))
    if request.state.spec.get("trigger") == "on_change":
        return _graph_chain(request, "provision", "execute")
    return build_record_spec(request)


def _undo_chain(request: ChainRequest, action: ChainAction) -> Chain:
    """One ``undo_provision`` step, which the daemon spells out from the state store."""
    retries, retry_delay = _retry_policy(request.state.spec.get("config") or {})
    (undo,) = _sequence((UNDO_PROVISION, {"workflow": request.state.name}))
    undo = dataclasses.replace(undo, retries=retries, retry_delay=retry_delay)
    return _make_chain(request, [undo], action=action)


PRIORITY_RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}
"""A Workflow's ``priority`` as the rank its runs wait with (lower goes first)."""


def workflow_rank(spec: Mapping[str, Any]) -> int:
    """The rank of a Workflow's runs for the work queue and a busy cluster's slots."""
    return PRIORITY_RANKS.get(str(spec.get("priority") or "medium"), 2)


def workflow_run_chain(state: ObjectState, revision: str) -> Chain | None:
    """One run of a Workflow's provision graph (a schedule's tick, a manual start)."""
    return _graph_chain(ChainRequest("update", state, revision), "provision", "execute").chain


def workflow_deprovision_chain(state: ObjectState, revision: str) -> Chain:
    """A deprovision on request of a Workflow that stays in Git (action ``deprovision``):
    its ``deprovision`` graph, or else one ``undo_provision`` step for the daemon to
    expand into the undo of what the last provision made."""
    request = ChainRequest("update", state, revision)
    graph = _graph_chain(request, "deprovision", "deprovision").chain
    return graph if graph is not None else _undo_chain(request, "deprovision")


BUILDERS: dict[str, ChainBuilder] = {
    "Credential": build_credential,
    "Project": build_record_spec,
    "Cluster": build_cluster,
    "DeploymentTemplate": build_record_spec,
    "Model": build_model,
    "Deployment": build_deployment,
    "Workflow": build_workflow,
}


def build_chain(request: ChainRequest) -> BuiltChain:
    """The chain for one change; a suspended object (as last known, for a delete) runs
    nothing, and a kind without a builder runs nothing, with a note saying so."""
    if request.state.suspended:
        return BuiltChain(None, SUSPENDED_NOTE)
    builder = BUILDERS.get(request.state.kind)
    if builder is None:
        return BuiltChain(None, f"nothing to run: no chain builder for kind {request.state.kind}")
    return builder(request)
