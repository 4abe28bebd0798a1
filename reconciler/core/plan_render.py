"""A plan as people and programs read it: terminal text and stable JSON (the PR comment
is :mod:`reconciler.core.plan_markdown`).

Every value shown passes through :func:`guard`, which masks anything that looks like a
credential (the shapes :mod:`reconciler.core.validation.inline_secrets` knows, and
strings under keys such as ``password``): specs only name secrets, but a plan of a bad
revision must not leak one either.

JSON keys (``format_version`` 1): ``base``, ``head`` (the revisions as given, ``work tree``
for an uncommitted head), ``base_commit``, ``head_commit`` (the commit each resolved to,
null for the work tree), ``has_changes``, ``summary``
(``create``, ``update``, ``delete``, ``unchanged``), ``items`` (each: ``object``,
``kind``, ``name``, ``action``, ``status``, ``reason``, ``notes``, ``fields`` [``path``,
``op``, ``old``, ``new``], ``chain`` [``action``, ``cluster``, ``spec_hash``, ``steps``
[``id``, ``type``, ``after``, ``pass_outputs``, ``retries``, ``retry_delay``,
``timeout``]] or null, ``waits_for``), ``warnings`` (strings). When no plan can be made,
:func:`render_json_error` gives ``format_version``, ``error`` and ``diagnostics`` (the
records of ``reconciler validate --format json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.core.chains import Chain
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.diff import FieldChange
from reconciler.core.plan import Plan, PlanItem
from reconciler.core.sizing import plan_sizing
from reconciler.core.sizing.roofline import SizingResult
from reconciler.core.validation.inline_secrets import find_inline_secrets

MASK = "(hidden: looks like a secret)"
FORMAT_VERSION = 1

_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}


# --- values --------------------------------------------------------------------------


def guard(value: Any, *, key: str | None = None) -> Any:
    """``value`` with every string that looks like a secret replaced by :data:`MASK`."""
    if isinstance(value, dict):
        return {k: guard(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [guard(item, key=key) for item in value]
    if isinstance(value, str):
        probe: Any = {key: value} if key is not None else value
        if next(find_inline_secrets(probe), None) is not None:
            return MASK
    return value


def field_key(path: str) -> str | None:
    """The mapping key a field path ends in (list indexes skipped), or None."""
    while path.endswith("]"):
        start = path.rfind('["') if path.endswith('"]') else path.rfind("[")
        inner = path[start + 1 : -1]
        if inner.startswith('"'):
            try:
                return str(json.loads(inner))
            except ValueError:
                return None
        path = path[:start]
    tail = path.rsplit(".", 1)[-1]
    return tail or None


def show_value(value: Any, *, key: str | None = None) -> str:
    """One value as compact JSON, secrets masked."""
    return json.dumps(guard(value, key=key), sort_keys=True, ensure_ascii=False)


def field_line(field: FieldChange) -> str:
    """``spec.workers: 1 -> 2``; an added field shows ``(absent)`` before, a removed one after."""
    key = field_key(field.path)
    old = "(absent)" if field.op == "add" else show_value(field.old, key=key)
    new = "(absent)" if field.op == "remove" else show_value(field.new, key=key)
    return f"{field.path}: {old} -> {new}"


def chain_outline(chain: Chain) -> str:
    """``add_model -> scan_model``; nodes that may run together are braced: ``a -> {b, c}``."""
    import networkx as nx  # here, as in Chain.graph(): importers that never draw skip it

    labels = {
        step.id: step.id if step.id == step.type else f"{step.id} ({step.type})"
        for step in chain.steps
    }
    order = {step.id: index for index, step in enumerate(chain.steps)}
    graph = chain.graph()
    try:
        generations = [
            sorted(g, key=lambda n: order.get(n, 0)) for g in nx.topological_generations(graph)
        ]
    except nx.NetworkXUnfeasible:
        generations = [[step.id] for step in chain.steps]
    parts = []
    for generation in generations:
        names = [labels.get(node, str(node)) for node in generation]
        parts.append(names[0] if len(names) == 1 else "{" + ", ".join(names) + "}")
    return " -> ".join(parts) if parts else "(none)"


def summary_line(plan: Plan) -> str:
    counts = plan.counts
    return (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['unchanged']} unchanged."
    )


def _changed(plan: Plan) -> list[PlanItem]:
    return [item for item in plan.items if item.change.action != "unchanged"]


def _unchanged(plan: Plan) -> list[str]:
    return [item.key for item in plan.items if item.change.action == "unchanged"]


# --- text ----------------------------------------------------------------------------


def render_text(plan: Plan) -> str:
    """Terraform-like text: one block per change, unchanged objects on one line, a summary."""
    lines: list[str] = []
    for item in _changed(plan):
        action = item.change.action
        head = f"{_SYMBOLS[action]} {action} {item.key}"
        lines.append(f"{head} ({item.reason})" if item.reason else head)
        lines.extend(f"    {field_line(field)}" for field in item.change.fields)
        if item.chain is not None:
            lines.append(f"    steps: {chain_outline(item.chain)}")
        if item.sizing is not None:
            lines.append(f"    sizing: {plan_sizing.describe(item.sizing)}")
        lines.extend(f"    {note}" for note in item.notes)
        if item.waits_for:
            lines.append(f"    after: {', '.join(item.waits_for)}")
    unchanged = _unchanged(plan)
    if unchanged:
        lines.append(f"= unchanged: {', '.join(unchanged)}")
    if lines:
        lines.append("")
    if not plan.has_changes:
        lines.append("No changes.")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


# --- json ----------------------------------------------------------------------------


def _field_json(field: FieldChange) -> dict[str, Any]:
    key = field_key(field.path)
    return {
        "path": field.path,
        "op": field.op,
        "old": guard(field.old, key=key),
        "new": guard(field.new, key=key),
    }


def _chain_json(chain: Chain) -> dict[str, Any]:
    return {
        "action": chain.action,
        "cluster": chain.cluster,
        "spec_hash": chain.spec_hash,
        "steps": [step.as_dict(with_inputs=False) for step in chain.steps],
    }


def _sizing_json(sizing: SizingResult | str | None) -> dict[str, Any] | None:
    if sizing is None:
        return None
    if isinstance(sizing, str):
        return {"note": sizing}
    return sizing.as_status()


def plan_to_json(
    plan: Plan,
    *,
    base: str | None = None,
    head: str | None = None,
    base_commit: str | None = None,
    head_commit: str | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The plan as JSON values with the documented, stable keys."""
    return {
        "format_version": FORMAT_VERSION,
        "base": base,
        "head": head,
        "base_commit": base_commit,
        "head_commit": head_commit,
        "has_changes": plan.has_changes,
        "summary": dict(plan.counts),
        "items": [
            {
                "object": item.key,
                "kind": item.change.kind,
                "name": item.change.name,
                "action": item.change.action,
                "status": item.status,
                "reason": item.reason,
                "notes": list(item.notes),
                "fields": [_field_json(field) for field in item.change.fields],
                "chain": None if item.chain is None else _chain_json(item.chain),
                "waits_for": list(item.waits_for),
                "sizing": _sizing_json(item.sizing),
            }
            for item in plan.items
        ],
        "warnings": list(warnings),
    }


def render_json(
    plan: Plan,
    *,
    base: str | None = None,
    head: str | None = None,
    base_commit: str | None = None,
    head_commit: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    document = plan_to_json(
        plan,
        base=base,
        head=head,
        base_commit=base_commit,
        head_commit=head_commit,
        warnings=warnings,
    )
    return _dumps(document)


def render_json_error(message: str, diagnostics: Sequence[Diagnostic] = ()) -> str:
    """What ``--format json`` prints when there is no plan: a program reading stdout
    always gets one JSON object, with ``error`` set."""
    document = {
        "format_version": FORMAT_VERSION,
        "error": message,
        "diagnostics": [d.to_json() for d in diagnostics],
    }
    return _dumps(document)


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
