"""The inputs a node runs with, and the checks a chain must pass before it is stored.

Inputs are filled at run time from the chain's params and the outputs of finished
upstream nodes (``${{ }}``), then ``pass_outputs`` hands named upstream outputs over as
inputs of the same name. A ``node_timeout`` given as a placeholder bounds the step once
it is resolved (:func:`step_timeout`). Kept apart from the executor so these rules are
tested alone.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Mapping
from typing import Any

from reconciler.core import chains, step_types
from reconciler.core.durations import DurationError, parse_duration
from reconciler.core.substitution import substitute


class InvalidChainError(ValueError):
    """A chain the executor refuses: duplicate ids, dangling references or a cycle."""


class MissingInputError(ValueError):
    """A node lacks an input its step type requires."""


class InvalidNodeTimeoutError(ValueError):
    """A ``node_timeout`` placeholder that resolved to something that is not a duration."""


def check_chain(chain: chains.Chain) -> None:
    """Raise InvalidChainError unless ``chain`` is a well-formed DAG (linear in its size)."""
    counts = collections.Counter(step.id for step in chain.steps)
    duplicates = sorted(node for node, count in counts.items() if count > 1)
    if duplicates:
        raise InvalidChainError(
            f"chain for {chain.object_key} repeats node id(s): {', '.join(duplicates)}"
        )
    waiting_on = dict.fromkeys(counts, 0)
    successors: dict[str, list[str]] = {node: [] for node in counts}
    for step in chain.steps:
        for upstream in {*step.after, *step.pass_outputs}:
            if upstream not in counts:
                raise InvalidChainError(
                    f"chain for {chain.object_key}: node '{step.id}' depends on unknown "
                    f"node '{upstream}'"
                )
            successors[upstream].append(step.id)
            waiting_on[step.id] += 1
    # Kahn's algorithm: every node comes free in a DAG; nodes left over lie on or behind
    # a cycle, which networkx then names (only on this error path).
    free = [node for node, count in waiting_on.items() if count == 0]
    seen = 0
    while free:
        node = free.pop()
        seen += 1
        for downstream in successors[node]:
            waiting_on[downstream] -= 1
            if waiting_on[downstream] == 0:
                free.append(downstream)
    if seen < len(waiting_on):
        import networkx as nx  # only on this error path: ~0.3 s of CPU to import

        cycle = " -> ".join(str(edge[0]) for edge in nx.find_cycle(chain.graph()))
        raise InvalidChainError(f"chain for {chain.object_key} has a cycle: {cycle}")


def resolve_inputs(
    node: chains.StepNode,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any]],
    signature: step_types.StepSignature | None,
) -> dict[str, Any]:
    """The node's inputs with placeholders filled and passed outputs added.

    Raises SubstitutionError for a placeholder naming nothing known and MissingInputError
    when a required input is absent. An explicit input wins over a passed output of the
    same name; a passed output the step type does not declare is left out.
    """
    resolved: dict[str, Any] = substitute(dict(node.inputs), params=params, outputs=outputs)
    for upstream, key in node.pass_outputs.items():
        if key in resolved:
            continue
        if signature is not None and not signature.open_inputs and key not in signature.inputs:
            continue
        upstream_outputs = outputs.get(upstream, {})
        if key in upstream_outputs:
            resolved[key] = upstream_outputs[key]
    if signature is not None:
        missing = sorted(signature.required - resolved.keys())
        if missing:
            raise MissingInputError(
                f"step type '{signature.name}' requires input(s) {', '.join(missing)},"
                f" which node '{node.id}' does not give"
            )
    step_timeout(node, resolved)  # a bad resolved node_timeout stops here, named
    return resolved


def step_timeout(node: chains.StepNode, resolved: Mapping[str, Any]) -> float | None:
    """Seconds one attempt of ``node`` may take: its own timeout (a literal, set when the
    chain was built) or else its ``node_timeout`` input given as a ``${{ }}``
    placeholder, as resolved for this attempt (a duration such as ``30s`` or a number of
    seconds). Raises InvalidNodeTimeoutError, naming the node, for anything else."""
    if node.timeout is not None:
        return node.timeout
    given = node.inputs.get(step_types.NODE_TIMEOUT)
    if not isinstance(given, str) or "${{" not in given:
        return None
    value = resolved.get(step_types.NODE_TIMEOUT)
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise DurationError(f"expected a duration such as '30s' or seconds, got {value!r}")
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
        if not seconds > 0:
            raise DurationError(f"must be more than 0 seconds, got {value!r}")
    except DurationError as e:
        raise InvalidNodeTimeoutError(
            f"node '{node.id}': node_timeout {given.strip()} resolved to {value!r}, which "
            f"cannot bound the step: {e}"
        ) from None
    return seconds


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter after failed attempt number ``attempt``.

    The delay doubles from ``base_s`` (a node's ``retry_delay``) up to ``cap_s``; the wait
    is uniform between half that delay and all of it, so it never falls below half the
    configured delay while retries of many steps still spread out.
    """
    ceiling = max(min(cap_s, base_s * (2.0 ** min(max(attempt - 1, 0), 60))), 0.0)
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)
