"""Checks of a Workflow's step graphs: ids, types, inputs, edges and cycles.

The graph is the one the executor will run: explicit edges, plus an edge from every
``previous_node_inputs`` key and every ``${{ node.output }}`` reference. Everything that
would fail at run time for a reason the repo alone decides is reported here instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a graph is built: ~0.3 s of CPU, not needed without one
    import networkx as nx

from reconciler.core import connectors
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.durations import DurationError, parse_duration
from reconciler.core.step_types import (
    CATALOGUE,
    WORKFLOW_STEP_TYPES,
    StepSignature,
    value_problems,
)
from reconciler.core.substitution import (
    PLACEHOLDER,
    malformed_placeholders,
    references_in,
)
from reconciler.core.validation.objects import SpecObject, did_you_mean

_DURATION_INPUTS = {"delay", "timeout", "node_timeout"}


def _graphs(obj: SpecObject) -> Iterator[tuple[str, dict[str, Any]]]:
    workflows = obj.spec.get("workflows")
    if isinstance(workflows, dict):
        for name, graph in workflows.items():
            if isinstance(graph, dict):
                yield str(name), graph


def check_workflow(obj: SpecObject) -> list[Diagnostic]:
    """Every graph problem of one Workflow object."""
    problems: list[Diagnostic] = []
    params = obj.spec.get("user_params") or {}
    for graph_name, graph in _graphs(obj):
        problems.extend(_check_graph(obj, graph_name, graph, params))
    return problems


def _check_graph(
    obj: SpecObject, graph_name: str, graph: dict[str, Any], params: dict[str, Any]
) -> list[Diagnostic]:
    base: tuple[str | int, ...] = ("spec", "workflows", graph_name)
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, dict)]
    problems: list[Diagnostic] = []
    types: dict[str, str] = {}
    index_of: dict[str, int] = {}
    for index, node in enumerate(nodes):
        node_id = str(node.get("id"))
        step_type = str(node.get("type"))
        duplicate = node_id in index_of
        if duplicate:
            problems.append(
                obj.problem(
                    (*base, "nodes", index, "id"),
                    f"duplicate node id '{node_id}' in {graph_name} "
                    f"(first used by node #{index_of[node_id] + 1})",
                )
            )
        else:
            index_of[node_id] = index
            types[node_id] = step_type
        if step_type not in CATALOGUE or not CATALOGUE[step_type].workflow_use:
            problems.append(
                obj.problem(
                    (*base, "nodes", index, "type"),
                    f"unknown step type '{step_type}' for node '{node_id}'"
                    f"{did_you_mean(step_type, WORKFLOW_STEP_TYPES)}; "
                    f"known types: {', '.join(WORKFLOW_STEP_TYPES)}",
                )
            )
        elif duplicate:  # its graph links are ambiguous, but its inputs can be checked
            problems.extend(
                _check_inputs(obj, (*base, "nodes", index), node_id, node, CATALOGUE[step_type])
            )
    import networkx as nx

    graph_dag: nx.DiGraph = nx.DiGraph()
    graph_dag.add_nodes_from(index_of)
    known = list(index_of)
    for e_index, edge in enumerate(graph.get("edges") or []):
        if not isinstance(edge, dict):
            continue
        ends = []
        for end in ("source", "dest"):
            target = str(edge.get(end))
            if target not in index_of:
                problems.append(
                    obj.problem(
                        (*base, "edges", e_index, end),
                        f"edge {end} '{target}' is not a node of {graph_name}"
                        f"{did_you_mean(target, known)}",
                    )
                )
            ends.append(target)
        if all(end in index_of for end in ends):
            graph_dag.add_edge(ends[0], ends[1], where=(*base, "edges", e_index))
    passes: list[_Pass] = []
    for node_id, index in index_of.items():
        problems.extend(
            _check_node(
                obj,
                (*base, "nodes", index),
                node_id,
                nodes[index],
                types,
                params,
                graph_dag,
                passes,
            )
        )
    backwards = _backward_passes(obj, graph_dag, passes)
    problems.extend(problem for _, problem in backwards)
    graph_dag.remove_edges_from(edge for edge, _ in backwards)
    problems.extend(_check_cycles(obj, graph_name, graph_dag))
    return problems


@dataclasses.dataclass(frozen=True)
class _Pass:
    """An output handed from ``upstream`` to ``node``, by previous_node_inputs or ${{ }}."""

    upstream: str
    node: str
    where: tuple[str | int, ...]
    what: str
    at_key: bool


def _backward_passes(
    obj: SpecObject, dag: nx.DiGraph, passes: list[_Pass]
) -> list[tuple[tuple[str, str], Diagnostic]]:
    """Passes whose upstream node in fact runs after the node (through other edges).

    Each is reported where it is written, and its edge is then left out of the cycle
    check, so one mistake gives one message.
    """
    import networkx as nx

    found: list[tuple[tuple[str, str], Diagnostic]] = []
    if nx.is_directed_acyclic_graph(dag):
        return found  # a backward pass would close a cycle
    for item in passes:
        if not nx.has_path(dag, item.node, item.upstream):
            continue
        chain = " -> ".join([*nx.shortest_path(dag, item.node, item.upstream), item.node])
        problem = obj.problem(
            item.where,
            f"{item.what} names '{item.upstream}', which is not upstream of "
            f"'{item.node}' but runs after it: cycle {chain}",
            key=item.at_key,
        )
        found.append(((item.upstream, item.node), problem))
    return found


def _check_node(
    obj: SpecObject,
    where: tuple[str | int, ...],
    node_id: str,
    node: dict[str, Any],
    types: dict[str, str],
    params: dict[str, Any],
    dag: nx.DiGraph,
    passes: list[_Pass],
) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    signature = CATALOGUE.get(types[node_id])
    passed = node.get("previous_node_inputs") or {}
    inputs = node.get("user_inputs") or {}
    for upstream, output in passed.items():
        upstream = str(upstream)
        loc = (*where, "previous_node_inputs", upstream)
        if upstream not in types:
            problems.append(
                obj.problem(
                    loc,
                    f"previous_node_inputs of '{node_id}' names '{upstream}', which is not "
                    f"an upstream node: no node has that id{did_you_mean(upstream, types)}",
                    key=True,
                )
            )
            continue
        if upstream == node_id:
            problems.append(obj.problem(loc, f"node '{node_id}' takes input from itself", key=True))
            continue
        dag.add_edge(upstream, node_id, where=loc)
        passes.append(
            _Pass(upstream, node_id, loc, f"previous_node_inputs of '{node_id}'", at_key=True)
        )
        problems.extend(_check_output(obj, loc, upstream, str(output), types))
    for ref in references_in(inputs, (*where, "user_inputs")):
        if ref.output is None:
            if ref.name not in params:
                problems.append(
                    obj.problem(
                        ref.location,
                        f"unknown parameter '{ref.name}' in {ref.text}: declare it in "
                        f"spec.user_params{did_you_mean(ref.name, params)}",
                    )
                )
            continue
        if ref.name not in types:
            problems.append(
                obj.problem(
                    ref.location,
                    f"{ref.text} names '{ref.name}', which is not a node of this workflow"
                    f"{did_you_mean(ref.name, types)}",
                )
            )
            continue
        if ref.name == node_id:
            problems.append(obj.problem(ref.location, f"node '{node_id}' refers to its own output"))
            continue
        dag.add_edge(ref.name, node_id, where=ref.location)
        passes.append(_Pass(ref.name, node_id, ref.location, ref.text, at_key=False))
        problems.extend(_check_output(obj, ref.location, ref.name, ref.output, types))
    for _ in malformed_placeholders(inputs):
        problems.append(
            obj.problem(
                (*where, "user_inputs"),
                f"malformed ${{{{ }}}} placeholder in the inputs of '{node_id}': use "
                "${{ param }} or ${{ node_id.output }}",
            )
        )
    if signature is None:
        return problems
    problems.extend(_check_inputs(obj, where, node_id, node, signature))
    if signature.name == "create_connector":
        problems.extend(_check_connector(obj, where, node_id, inputs))
    return problems


def _check_connector(
    obj: SpecObject, where: tuple[str | int, ...], node_id: str, inputs: Any
) -> list[Diagnostic]:
    """A connector whose parameters and actions are all written out must call a cloud
    provider this daemon serves, and name at least one secret (its Credential's)."""
    if not isinstance(inputs, dict):
        return []
    problems: list[Diagnostic] = []
    credential = inputs.get("credential")
    if isinstance(credential, dict) and not credential:
        problems.append(
            obj.problem(
                (*where, "user_inputs", "credential"),
                f"connector node '{node_id}' names no secret under credential",
            )
        )
    parameters, actions = inputs.get("parameters"), inputs.get("actions")
    if not isinstance(parameters, dict) or not isinstance(actions, list):
        return problems
    written = {"parameters": parameters, "actions": actions}
    if any(True for _ in references_in(written)) or any(malformed_placeholders(written)):
        return problems  # known at run time only
    try:
        connectors.connector_target(parameters, actions)
    except connectors.ConnectorError as exc:
        problems.append(
            obj.problem((*where, "user_inputs", "actions"), f"connector node '{node_id}': {exc}")
        )
    return problems


def _deferred(value: Any) -> bool:
    """A value known only at run time: exactly one ``${{ }}`` placeholder."""
    return isinstance(value, str) and PLACEHOLDER.fullmatch(value.strip()) is not None


def _input_label(name: str, inner: tuple[str | int, ...]) -> str:
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in inner)


def _check_inputs(
    obj: SpecObject,
    where: tuple[str | int, ...],
    node_id: str,
    node: dict[str, Any],
    signature: StepSignature,
) -> list[Diagnostic]:
    """The node's ``user_inputs`` against its step type's JSON Schema: required inputs,
    unknown ones (a warning: the step ignores them), and each value's type and range."""
    problems: list[Diagnostic] = []
    inputs = node.get("user_inputs") or {}
    if not isinstance(inputs, dict):
        return problems
    passed = node.get("previous_node_inputs") or {}
    provided = set(inputs) | {str(o) for o in passed.values()}
    for missing in sorted(signature.required - provided):
        problems.append(
            obj.problem(
                (*where, "user_inputs"),
                f"node '{node_id}' ({signature.name}) is missing required input '{missing}'",
            )
        )
    if not signature.open_inputs:
        for extra in sorted(set(inputs) - signature.inputs):
            problems.append(
                obj.problem(
                    (*where, "user_inputs", extra),
                    f"input '{extra}' is not used by step type '{signature.name}'"
                    f"{did_you_mean(extra, signature.inputs)}",
                    severity="warning",
                    key=True,
                )
            )
    for name, value in inputs.items():
        schema = signature.input_properties.get(str(name))
        if not schema:
            continue
        for inner, message in value_problems(schema, value, deferred=_deferred):
            problems.append(
                obj.problem(
                    (*where, "user_inputs", name, *inner),
                    f"input '{_input_label(str(name), inner)}' of node '{node_id}' "
                    f"({signature.name}) {message}",
                )
            )
    durations = _DURATION_INPUTS | {
        name
        for name, schema in signature.input_properties.items()
        if schema.get("format") == "duration"
    }
    for name in sorted(durations & set(inputs)):
        value = inputs[name]
        if isinstance(value, str) and "${{" not in value:
            try:
                parse_duration(value)
            except DurationError as exc:
                problems.append(obj.problem((*where, "user_inputs", name), str(exc)))
    return problems


def _check_output(
    obj: SpecObject,
    loc: tuple[str | int, ...],
    upstream: str,
    output: str,
    types: dict[str, str],
) -> list[Diagnostic]:
    signature = CATALOGUE.get(types[upstream])
    if signature is None or output in signature.outputs:
        return []
    gives = ", ".join(sorted(signature.outputs)) or "no outputs"
    return [
        obj.problem(
            loc,
            f"node '{upstream}' ({signature.name}) has no output '{output}'"
            f"{did_you_mean(output, signature.outputs)}; it gives: {gives}",
        )
    ]


def _check_cycles(obj: SpecObject, graph_name: str, dag: nx.DiGraph) -> list[Diagnostic]:
    import networkx as nx

    if nx.is_directed_acyclic_graph(dag):
        return []
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return []
    names = [str(edge[0]) for edge in cycle] + [str(cycle[0][0])]
    where = dag.edges[cycle[-1][0], cycle[-1][1]].get("where", ("spec", "workflows", graph_name))
    return [obj.problem(where, f"cycle in {graph_name} graph: {' -> '.join(names)}")]
