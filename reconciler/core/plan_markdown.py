"""A plan as a pull-request comment: what a reviewer needs, long parts folded away.

The comment opens with the revisions compared and one summary line (``N to create, M to
update, K to delete``), then a table of the changes, then one block per changed object:
its field diff, the step chain it will run, a self-hosted Deployment's proposed shape
with the prediction against each SLO, and the findings that concern it (validation
warnings; the last security scan of its Model when the status branch was read). Long
parts are folded: field tables and lists of findings from :data:`FOLD_ROWS_FROM` rows,
every object's block when more than :data:`OPEN_UP_TO_OBJECTS` objects change, and the
unchanged objects. When no plan can be made (the specs do not validate),
:func:`render_markdown_error` gives the comment that lists the problems instead. Every
value goes through :func:`reconciler.core.plan_render.guard`; HTML and pipes are escaped.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.diff import ObjectState
from reconciler.core.plan import Plan, PlanItem
from reconciler.core.plan_render import (
    chain_outline,
    field_key,
    show_value,
    summary_line,
)
from reconciler.core.sizing import plan_sizing, roofline

OPEN_UP_TO_OBJECTS = 10
"""With at most this many changed objects every object's block is open; with more, each
is folded under its summary line (the table of changes lists them all)."""
FOLD_ROWS_FROM = 11
"""A field table or list of findings this long is folded inside its object's block."""
SHORT_SHA = 12
TITLE = "### reconciler plan"
_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}


@dataclasses.dataclass(frozen=True)
class ScanSummary:
    """A Model's last security scan as its status file states it."""

    result: str
    findings: tuple[Mapping[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class PlanContext:
    """What the comment shows besides the plan itself.

    ``desired`` (the head's states) gives each Deployment its SLO targets and its Model;
    ``findings`` are the head's validation warnings; ``scans`` each Model's last scan by
    ``Model/name``, read from ``status_source`` (e.g. ``origin/reconciler/status at
    0a1b2c3d4e5f``).
    """

    desired: Mapping[str, ObjectState] = dataclasses.field(default_factory=dict)
    findings: Sequence[Diagnostic] = ()
    scans: Mapping[str, ScanSummary] = dataclasses.field(default_factory=dict)
    status_source: str | None = None


# --- text pieces ---------------------------------------------------------------------


def code(text: str) -> str:
    """Inline code that survives tables: HTML-escaped, pipes escaped."""
    return "<code>" + html.escape(text, quote=False).replace("|", "&#124;") + "</code>"


def cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "&#124;")


def _revision(label: str | None, commit: str | None) -> str:
    """``<code>HEAD~7</code> (<code>0a1b2c3d4e5f</code>)``: what was asked, what it was."""
    shown = code(label or "?")
    if commit and commit != label:
        shown += f" ({code(commit[:SHORT_SHA])})"
    return shown


def _fold(summary: str, body: list[str], *, open_: bool) -> list[str]:
    return [
        f"<details{' open' if open_ else ''}><summary>{summary}</summary>",
        "",
        *body,
        "</details>",
        "",
    ]


# --- SLO ------------------------------------------------------------------------------


def slo_targets(
    deployment: ObjectState, desired: Mapping[str, ObjectState]
) -> roofline.Load | None:
    """The load and SLO ranges a Deployment is sized for: its ``deploy_config`` over its
    template's defaults (a template of the repo, else a built-in one)."""
    spec = deployment.spec
    config = spec.get("deploy_config")
    if not isinstance(config, Mapping):
        return None
    name = spec.get("template")
    template_state = desired.get(f"DeploymentTemplate/{name}")
    template = template_state.spec if template_state else BUILTIN_TEMPLATES.get(str(name))
    defaults = template.get("defaults") if isinstance(template, Mapping) else None
    try:
        return roofline.Load.from_deploy_config(
            config, defaults=defaults if isinstance(defaults, Mapping) else None
        )
    except (KeyError, TypeError, ValueError, roofline.SizingError):
        return None


_SLO_ROWS = (
    ("TTFT", "ttft_ms", "ms", "max"),
    ("tokens/s per session", "tokens_per_sec", "tokens/s", "min"),
    ("end-to-end latency", "e2e_latency_s", "s", "max"),
)


def slo_table(result: roofline.SizingResult, load: roofline.Load | None) -> list[str]:
    """One row per SLO the Deployment sets: the target range, the prediction, met or not."""
    predicted = result.predicted
    if predicted is None or load is None:
        return []
    rows = []
    for label, attribute, unit, bound in _SLO_ROWS:
        target = getattr(load, attribute)
        if target is None:
            continue
        value = float(getattr(predicted, attribute))
        limit = target[1] if bound == "max" else target[0]
        met = value <= limit if bound == "max" else value >= limit
        rows.append(
            f"| {label} | {target[0]:g} to {target[1]:g} {unit} | {value:.3g} {unit} | "
            f"{'✅ met' if met else f'❌ {bound} {limit:g}'} |"
        )
    if not rows:
        return []
    return ["| SLO | target | predicted | |", "|---|---|---|---|", *rows, ""]


def _sizing(item: PlanItem, context: PlanContext) -> list[str]:
    sizing = item.sizing
    if sizing is None:
        return []
    if isinstance(sizing, str):
        return [f"Sizing: {cell(sizing)}", ""]
    desired = context.desired.get(item.key)
    load = slo_targets(desired, context.desired) if desired is not None else None
    shown = cell(plan_sizing.describe(sizing))
    lines = [f"Sizing: {shown if sizing.feasible else f'**{shown}**'}", ""]
    return lines + slo_table(sizing, load)


# --- findings -------------------------------------------------------------------------


def _scan_lines(item: PlanItem, context: PlanContext) -> list[str]:
    state = context.desired.get(item.key)
    model = None
    if item.change.kind == "Model":
        model = item.key
    elif item.change.kind == "Deployment" and state is not None:
        model = f"Model/{state.spec.get('model')}"
    scan = context.scans.get(model) if model else None
    if scan is None or model is None:
        return []
    where = f" ({cell(context.status_source)})" if context.status_source else ""
    if not scan.findings:
        return [f"Last security scan of {code(model)}{where}: {cell(scan.result)}", ""]
    lines = [f"Last security scan of {code(model)}{where}: {len(scan.findings)} finding(s)", ""]
    for finding in scan.findings:
        lines.append(
            f"- {cell(str(finding.get('severity', '?')))}: {code(str(finding.get('path', '?')))} "
            f"{cell(str(finding.get('reason', '')))}"
        )
    return [*lines, ""]


def _finding_line(diagnostic: Diagnostic) -> str:
    where = f"{diagnostic.path}:{diagnostic.line}:{diagnostic.col}"
    return f"- {diagnostic.severity}: {code(where)} {cell(diagnostic.message)}"


def _object_findings(item: PlanItem, context: PlanContext) -> list[str]:
    mine = [d for d in context.findings if d.object_ref == item.key]
    if not mine:
        return []
    lines = [*(_finding_line(d) for d in mine), ""]
    if len(mine) >= FOLD_ROWS_FROM:
        return _fold(f"Validation findings ({len(mine)})", lines, open_=False)
    return ["Validation findings:", "", *lines]


# --- the comment ----------------------------------------------------------------------


def _field_table(item: PlanItem) -> list[str]:
    fields = item.change.fields
    if not fields:
        return []
    lines = ["| Field | Before | After |", "|---|---|---|"]
    for field in fields:
        key = field_key(field.path)
        old = "(absent)" if field.op == "add" else code(show_value(field.old, key=key))
        new = "(absent)" if field.op == "remove" else code(show_value(field.new, key=key))
        lines.append(f"| {code(field.path)} | {old} | {new} |")
    if len(fields) >= FOLD_ROWS_FROM:
        return _fold(f"{len(fields)} changed fields", [*lines, ""], open_=False)
    return [*lines, ""]


def _object_block(item: PlanItem, context: PlanContext, *, open_: bool) -> list[str]:
    action = item.change.action
    body: list[str] = []
    if item.reason:
        body += [f"Reason: {cell(item.reason)}", ""]
    body += _field_table(item)
    if item.chain is not None:
        body += [f"Steps ({item.chain.action}): {code(chain_outline(item.chain))}", ""]
    body += _sizing(item, context)
    if item.waits_for:
        body += [f"After: {', '.join(code(k) for k in item.waits_for)}", ""]
    body += [f"- {cell(note)}" for note in item.notes]
    if item.notes:
        body.append("")
    body += _scan_lines(item, context)
    body += _object_findings(item, context)
    count = len(item.change.fields)
    detail = f" ({count} field(s))" if count else ""
    summary = f"{_SYMBOLS[action]} {code(item.key)}: {action}{detail}"
    return _fold(summary, body, open_=open_)


def render_markdown(
    plan: Plan,
    *,
    base: str | None = None,
    head: str | None = None,
    base_commit: str | None = None,
    head_commit: str | None = None,
    warnings: Sequence[str] = (),
    context: PlanContext | None = None,
) -> str:
    """A ready PR comment: heading, summary, a table of changes, one block each."""
    context = context or PlanContext()
    lines = [TITLE, ""]
    if base is not None or head is not None:
        lines += [f"Base {_revision(base, base_commit)} → head {_revision(head, head_commit)}", ""]
    lines += [f"**{summary_line(plan)}**", ""]
    changed = [item for item in plan.items if item.change.action != "unchanged"]
    if not changed:
        lines += ["No changes.", ""]
    else:
        lines += ["| | Object | Action | Steps | Notes |", "|---|---|---|---|---|"]
        for item in changed:
            action = item.change.action
            steps = code(chain_outline(item.chain)) if item.chain is not None else ""
            notes = "; ".join(([item.reason] if item.reason else []) + list(item.notes))
            lines.append(
                f"| {_SYMBOLS[action]} | {code(item.key)} | {action} | {steps} | {cell(notes)} |"
            )
        lines.append("")
        open_ = len(changed) <= OPEN_UP_TO_OBJECTS
        for item in changed:
            lines += _object_block(item, context, open_=open_)
    unchanged = [item.key for item in plan.items if item.change.action == "unchanged"]
    if unchanged:
        lines += _fold(
            f"{len(unchanged)} unchanged",
            [", ".join(code(key) for key in unchanged), ""],
            open_=False,
        )
    changed_keys = {item.key for item in changed}
    other = [d for d in context.findings if d.object_ref not in changed_keys]
    if other:
        body = [*(_finding_line(d) for d in other), ""]
        lines += _fold(
            f"Findings in unchanged objects ({len(other)})",
            body,
            open_=len(other) < FOLD_ROWS_FROM,
        )
    if warnings:
        lines += ["#### Warnings", ""]
        lines += [f"- {cell(text)}" for text in warnings]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_markdown_error(
    message: str,
    diagnostics: Sequence[Diagnostic] = (),
    *,
    base: str | None = None,
    head: str | None = None,
) -> str:
    """The comment when no plan can be made: why, and each problem with its place."""
    lines = [TITLE, ""]
    if base is not None or head is not None:
        lines += [f"Base {code(base or '?')} → head {code(head or '?')}", ""]
    lines += [f"**No plan: {cell(message)}**", ""]
    errors = [d for d in diagnostics if d.severity == "error"]
    rest = [d for d in diagnostics if d.severity != "error"]
    if errors:
        lines += ["| File | Problem | Object |", "|---|---|---|"]
        for d in errors:
            lines.append(
                f"| {code(f'{d.path}:{d.line}:{d.col}')} | {cell(d.message)} | "
                f"{code(d.object_ref) if d.object_ref else ''} |"
            )
        lines.append("")
    if rest:
        lines += _fold(
            f"Warnings ({len(rest)})",
            [*(_finding_line(d) for d in rest), ""],
            open_=len(rest) < FOLD_ROWS_FROM,
        )
    lines += ["Run `reconciler validate` in a clone of this branch for the same list.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
