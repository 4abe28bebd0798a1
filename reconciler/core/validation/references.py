"""References between objects: every name a spec uses must name an object of the repo.

Dangling references are errors with a did-you-mean suggestion. A Deployment's or
Workflow's project may be missing only when the daemon config creates projects
implicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from reconciler.core.builtin_templates import BUILTIN_TEMPLATES
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.substitution import PLACEHOLDER
from reconciler.core.validation import cloud_serving
from reconciler.core.validation.objects import SpecObject, did_you_mean

Index = Mapping[str, Mapping[str, SpecObject]]
Names = Mapping[str, AbstractSet[str]]
"""Every name per kind in the repo, documents that failed their own checks included, so
one typo does not also report every reference to its object as dangling."""

SELF_HOSTED = frozenset({"hugging_face", "url", "disk"})


def _dangling(
    obj: SpecObject,
    path: tuple[str | int, ...],
    target_kind: str,
    name: str,
    names: Names,
    *,
    extra: tuple[str, ...] = (),
) -> Diagnostic | None:
    known = names.get(target_kind, frozenset())
    if name in known or name in extra:
        return None
    hint = did_you_mean(name, (*sorted(known), *extra))
    return obj.problem(path, f"{target_kind} '{name}' does not exist{hint}")


def deployment_references(
    obj: SpecObject, index: Index, names: Names, *, implicit_projects: bool
) -> list[Diagnostic]:
    spec = obj.spec
    found: list[Diagnostic | None] = []
    model_name = spec.get("model")
    if isinstance(model_name, str):
        found.append(_dangling(obj, ("spec", "model"), "Model", model_name, names))
    for field, kind in (("cluster", "Cluster"), ("credential", "Credential")):
        value = spec.get(field)
        if isinstance(value, str):
            found.append(_dangling(obj, ("spec", field), kind, value, names))
    template = spec.get("template")
    if isinstance(template, str):
        found.append(
            _dangling(
                obj,
                ("spec", "template"),
                "DeploymentTemplate",
                template,
                names,
                extra=tuple(BUILTIN_TEMPLATES),
            )
        )
    found.append(project_reference(obj, names, implicit_projects=implicit_projects))
    model = index.get("Model", {}).get(model_name) if isinstance(model_name, str) else None
    if model is not None:
        provider = (model.spec.get("source") or {}).get("provider_type")
        found.extend(
            cloud_serving.deployment_problems(obj, index, cloud=provider == "cloud_model")
        )
        if provider in SELF_HOSTED and not spec.get("cluster"):
            found.append(
                obj.problem(
                    ("spec", "model"),
                    f"Model '{model_name}' is self-hosted ({provider}): the Deployment needs "
                    "a cluster",
                )
            )
    return [d for d in found if d is not None]


def project_reference(
    obj: SpecObject, names: Names, *, implicit_projects: bool
) -> Diagnostic | None:
    """A Deployment's or Workflow's ``spec.project`` that names no Project."""
    project = obj.spec.get("project")
    projects = names.get("Project", frozenset())
    if not isinstance(project, str) or implicit_projects or project in projects:
        return None
    return obj.problem(
        ("spec", "project"),
        f"Project '{project}' does not exist{did_you_mean(project, sorted(projects))}; "
        "add the Project, or set projects.create_missing in the daemon config",
    )


def model_references(obj: SpecObject, names: Names) -> list[Diagnostic]:
    source = obj.spec.get("source") or {}
    credential = source.get("credential") if isinstance(source, dict) else None
    if isinstance(credential, str):
        problem = _dangling(obj, ("spec", "source", "credential"), "Credential", credential, names)
        return [problem] if problem else []
    return []


def _literal(value: Any, params: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The name a step input resolves to before execution, and whether it was a literal."""
    if not isinstance(value, str):
        return None, False
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole is None:
        return (value, True) if "${{" not in value else (None, False)
    if whole.group(2) is None and isinstance(params.get(whole.group(1)), str):
        return str(params[whole.group(1)]), False
    return None, False


_NODE_REFERENCES = {"wait_ready": ("deployment", "Deployment"), "k8s_job": ("cluster", "Cluster")}


def workflow_references(
    obj: SpecObject, names: Names, *, implicit_projects: bool = False
) -> list[Diagnostic]:
    params = obj.spec.get("user_params") or {}
    found: list[Diagnostic] = []
    project = project_reference(obj, names, implicit_projects=implicit_projects)
    if project is not None:
        found.append(project)
    for graph_name, graph in (obj.spec.get("workflows") or {}).items():
        for n_index, node in enumerate((graph or {}).get("nodes") or []):
            target = _NODE_REFERENCES.get(str(node.get("type")))
            if target is None:
                continue
            field, kind = target
            name, literal = _literal((node.get("user_inputs") or {}).get(field), params)
            known = names.get(kind, frozenset())
            if name is None or name in known:
                continue
            path = ("spec", "workflows", graph_name, "nodes", n_index, "user_inputs", field)
            hint = did_you_mean(name, sorted(known))
            if literal:
                found.append(obj.problem(path, f"{kind} '{name}' does not exist{hint}"))
            else:
                found.append(
                    obj.problem(
                        path,
                        f"{kind} '{name}' (from spec.user_params) does not exist{hint}; "
                        "it must be given at execution time",
                        severity="warning",
                    )
                )
    return found
