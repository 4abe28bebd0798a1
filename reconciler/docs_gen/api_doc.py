"""docs/api.md, the HTTP API reference, from the OpenAPI document the API serves.

Rendered from :func:`reconciler.api.openapi.document` (what ``/api/v1/openapi.json``
returns), never from the route handlers, so the page says what the served document says:
every operation with its role, parameters, request body and answers, then every schema.
Operations are grouped by the surface their path belongs to; one the groups do not know
lands in "Other routes", so none is ever left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.api import openapi

REGENERATE = "python -m reconciler.docs_gen"
METHODS = ("get", "put", "post", "delete", "patch")

Schema = Mapping[str, Any]

GROUPS: tuple[tuple[str, Callable[[str], bool], str], ...] = (
    (
        "Probes and metrics",
        lambda p: p in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"),
        "For load balancers, systemd and Prometheus.",
    ),
    (
        "Native API",
        lambda p: p.startswith("/api/v1/"),
        "The daemon's own API: status, objects, plans, executions, writes, webhooks.",
    ),
    (
        "Deployed-workflow endpoint",
        lambda p: p.startswith("/api/workflows/") and p.endswith("/endpoint"),
        "The compatibility surface of shared/reference/deployed-workflow-endpoint.txt.",
    ),
    (
        "Workflow dashboard",
        lambda p: p.startswith("/api/workflows"),
        "The compatibility surface of shared/reference/workflow-dashboard-api.md "
        "(camelCase, as that API has).",
    ),
    (
        "Inference deployment tasks",
        lambda p: p.split("/")[1] in ("deploy", "deploy-status", "delete", "delete-status"),
        "The compatibility surface of shared/reference/inference-deployment-tasks.md.",
    ),
    (
        "Model wizard",
        lambda p: p.split("/")[1] in ("models", "endpoints", "clusters", "workflows"),
        "The compatibility surface of shared/reference/wizard-api.md: step-by-step "
        "payloads; the triggering step commits.",
    ),
    (
        "Flow framework",
        lambda p: p.startswith("/_plugins/_flow_framework/"),
        "The compatibility surface of shared/reference/flow-framework-create-workflow.txt.",
    ),
)


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", name.lower().replace(" ", "-"))


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(str(text).split()))


def type_text(schema: Any) -> str:
    """A schema in a few words: ``list of [Step](#step)``, ``string or null``."""
    if not isinstance(schema, Mapping) or not schema:
        return "any"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "const" in schema:
        return f"`{schema['const']!r}`".replace("'", '"')
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " \\| ".join(type_text(member) for member in schema[combinator])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    words = []
    for name in kinds:
        if name == "array":
            words.append(f"list of {type_text(schema.get('items'))}")
        elif name == "object" and isinstance(schema.get("additionalProperties"), Mapping):
            if schema.get("properties"):
                words.append("object")
            else:
                words.append(f"map of {type_text(schema['additionalProperties'])}")
        else:
            words.append(str(name))
    return " or ".join(words) if words else "object"


def _constraints(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return ""
    found = []
    if "minimum" in schema and "maximum" in schema:
        found.append(f"{schema['minimum']} to {schema['maximum']}")
    if "pattern" in schema:
        found.append(f"pattern `{schema['pattern']}`")
    items = schema.get("items")
    if isinstance(items, Mapping) and "pattern" in items:
        found.append(f"each: pattern `{items['pattern']}`")
    if "default" in schema:
        found.append(f"default `{schema['default']}`")
    return "; ".join(found)


def _role(operation: Schema) -> str:
    if "x-role" in operation:
        return str(operation["x-role"])
    return "none (public)" if operation.get("security") == [] else "viewer"


def _body_text(content: Any) -> str:
    if not isinstance(content, Mapping) or not content:
        return ""
    parts = []
    for media, entry in content.items():
        schema = entry.get("schema") if isinstance(entry, Mapping) else None
        shown = type_text(schema) if schema else "any"
        parts.append(f"{shown} (`{media}`)")
    return "; ".join(parts)


def _operation(method: str, path: str, op: Schema, errors: dict[str, set[str]]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", f"{op['summary']}.", ""]
    if op.get("description"):
        lines += [str(op["description"]), ""]
    lines += [f"Role: {_role(op)}.", ""]
    parameters = op.get("parameters") or []
    if parameters:
        lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema")
            meaning = "; ".join(
                part for part in (parameter.get("description", ""), _constraints(schema)) if part
            )
            repeat = " (repeatable)" if parameter.get("explode") else ""
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_cell(type_text(schema))} | "
                f"{'yes' if parameter.get('required') else ''} | {_cell(meaning + repeat)} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if isinstance(body, Mapping):
        need = "required" if body.get("required") else "optional"
        lines += [f"Request body ({need}): {_body_text(body.get('content'))}", ""]
    answers = []
    failures = []
    for code, response in sorted(op["responses"].items()):
        description = str(response.get("description", ""))
        if code.startswith(("4", "5")) and _body_text(response.get("content")).startswith(
            "[Problem]"
        ):
            errors.setdefault(code, set()).add(description)
            failures.append(code)
            continue
        shown = _body_text(response.get("content"))
        answers.append(f"- `{code}` {description}" + (f": {shown}" if shown else ""))
    lines += answers
    if failures:
        lines.append(f"- errors (see [Errors](#errors)): {', '.join(f'`{c}`' for c in failures)}")
    lines.append("")
    return lines


def _schema_rows(schema: Schema, prefix: str = "", depth: int = 0) -> list[str]:
    rows = []
    required = set(schema.get("required") or ())
    for name, prop in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        meaning = "; ".join(
            part
            for part in (str(prop.get("description", "")) if isinstance(prop, Mapping) else "",
                         _constraints(prop))
            if part
        )  # fmt: skip
        rows.append(
            f"| `{path}` | {_cell(type_text(prop))} | {'yes' if name in required else ''} | "
            f"{_cell(meaning)} |"
        )
        if isinstance(prop, Mapping) and depth < 3:
            if prop.get("properties"):
                rows += _schema_rows(prop, f"{path}.", depth + 1)
            items = prop.get("items")
            if isinstance(items, Mapping) and items.get("properties"):
                rows += _schema_rows(items, f"{path}[].", depth + 1)
    return rows


def _schema_section(name: str, schema: Schema) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [str(schema["description"]), ""]
    rows = _schema_rows(schema)
    if rows:
        lines += ["| field | type | required | meaning |", "|---|---|---|---|", *rows]
    else:
        lines.append(f"{type_text(schema)}.")
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema and not rows:
            break
    lines.append("")
    return lines


def render(document: Mapping[str, Any] | None = None) -> str:
    """The page for ``document`` (default: the one the API serves)."""
    document = openapi.document() if document is None else document
    info = document["info"]
    placed: dict[str, list[tuple[str, str, Schema]]] = {title: [] for title, _, _ in GROUPS}
    placed["Other routes"] = []
    for path, item in document["paths"].items():
        group = next((title for title, match, _ in GROUPS if match(path)), "Other routes")
        for method in METHODS:
            if method in item:
                placed[group].append((method, path, item[method]))
    notes = {title: note for title, _, note in GROUPS}
    lines = [
        "# HTTP API reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from the OpenAPI document the API serves "
        "(/api/v1/openapi.json); do not edit by hand. -->",
        "",
        f"{info['title']} {info['version']}, OpenAPI {document['openapi']}. "
        f"{info.get('description', '')}",
        "",
        "The daemon serves this API when its config has an `api:` section (or `reconciler "
        "run --listen` is given); `GET /api/v1/openapi.json` returns the document this page "
        "is made from. Authenticate with `Authorization: Bearer <token>` (the `reconciler` "
        "CLI sends `$RECONCILER_TOKEN`); with no tokens configured the API is read-only. "
        "Every error is `application/problem+json` ([Problem](#problem)). A query parameter "
        "a route does not take is a 400.",
        "",
        "Sections: [Projects](#projects), "
        + ", ".join(f"[{title}](#{_anchor(title)})" for title, ops in placed.items() if ops)
        + ", [Errors](#errors), [Schemas](#schemas).",
        "",
        PROJECTS,
    ]
    errors: dict[str, set[str]] = {}
    for title, operations in placed.items():
        if not operations:
            continue
        lines += [f"## {title}", ""]
        if title in notes:
            lines += [notes[title], ""]
        for method, path, operation in operations:
            lines += _operation(method, path, operation, errors)
    lines += ["## Errors", "", "| status | when |", "|---|---|"]
    for code in sorted(errors):
        lines.append(f"| `{code}` | {_cell('; '.join(sorted(errors[code])))} |")
    lines += ["", "## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += _schema_section(name, schema)
    return "\n".join(lines).rstrip("\n") + "\n"


PROJECTS = """\
## Projects

A Project's `spec.permissions` say what each of its roles may do; the daemon config says
who holds each role. A token's `name` is its user and its `groups` are that user's
groups; `api.project_roles` grants a Project's roles to users and groups:

```yaml
api:
  tokens:
    - {name: alice, role: editor, sha256: "<hex digest>", groups: [ml-team]}
    - {name: bob, role: editor, sha256: "<hex digest>"}
  project_roles:
    research:                              # a Project's metadata.name
      data-scientist: {groups: [ml-team]}  # a role its spec.permissions names
      admin: {users: [bob]}
```

An object belongs to a Project through `spec.project` (Deployments and Workflows); a
Project's own document belongs to itself. Every other object (Models, Clusters,
Credentials, DeploymentTemplates), and one that names no project, follows the token role
alone. The token role stays the ceiling everywhere: an action still needs `operator` and
a write `editor`. Inside a Project whose `spec.permissions` lists roles, the caller must
also hold a role there whose `access` grants the action:

- `execute`: start, cancel and deprovision runs of the Project's Workflows (native,
  dashboard, flow framework `_provision`/`_deprovision`, deployed-workflow `kickoff`),
  and cancel any run of its objects;
- `deploy`: create a Deployment in the Project (native PUT, `POST /deploy`, the deploy
  wizard);
- `edit`: change an object of the Project (a Deployment's fields, the add-worker wizard,
  a Workflow's update), or create a Workflow in it;
- `delete`: remove an object of the Project (native DELETE, `POST /delete`, dashboard
  and flow framework delete); moving an object to another Project is a delete here and a
  create there;
- `view`: no change; reads are not narrowed per Project (the status branch is not
  either);
- `full`: all of the above, and changing or deleting the Project's own document.

A Project with no `permissions`, or one the repo does not hold
(`projects.create_missing`), narrows nothing. A token of role `admin` may do everything
in every Project. Creating a Project is a plain write (`editor`), and `POST /api/v1/sync`
stays a token-role action (`operator`): it makes the daemon look at everything again and
changes nothing. Writes are judged
against the branch tip the commit is built on; actions against the last revision the
daemon loaded. A refusal is a `403` whose `detail` names the Project, the action, the
roles the caller holds there and the roles that would grant it, with the same in
`project`, `action`, `roles_held` and `roles_granting`. `api.tokens` and
`api.project_roles` apply at a reload (SIGHUP) from the next request on.
"""


def pages() -> dict[str, str]:
    return {"docs/api.md": render()}
