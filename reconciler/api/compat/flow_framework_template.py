"""A flow framework template <-> our Workflow document, and the secrets a template carries.

A template (``name``, ``description``, ``use_case``, ``version``, ``workflows``,
``ui_metadata``) becomes one Workflow whose ``metadata.name`` is the workflow_id. The
template's own name is free text there, so it is kept in an annotation beside
``version`` and ``ui_metadata`` (as JSON), and reading the Workflow back gives the
template as it was sent. ``workflows.provision`` (and ``deprovision``, which we also run)
keep their nodes and edges as they are; a graph's ``user_params`` become the spec's.

Secrets: a ``create_connector`` node's ``credential`` holds values in that API, names of
secrets in ours. Each literal value is taken out of the template as an
:class:`InlineSecret` named ``<workflow_id>.<node_id>.<key>.<random>`` (the caller stores
it in the secret store once the write succeeded) and only that name goes to Git; a value
that already is such a name (a template read back and sent again) or a ``${{ param }}``
placeholder stays as it is. A new value gets a new name, so replacing a credential
changes the Workflow's document (a commit) and a refused write leaves the old one live.
A placeholder naming no declared param is declared with an empty value, so the template
validates and the value can be given at provision time.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from reconciler.api.problems import BadRequest, Unprocessable
from reconciler.core.substitution import PLACEHOLDER, references_in
from reconciler.load.documents import SourceFile, load_file

NAME_ANNOTATION = "flow-framework/name"
VERSION_ANNOTATION = "flow-framework/version"
UI_METADATA_ANNOTATION = "flow-framework/ui-metadata"
TEMPLATE_FIELDS = ("name", "description", "use_case", "version", "workflows", "ui_metadata")
SERVED_FIELDS = ("created_time", "last_updated_time", "last_provisioned_time", "user")
"""What GET adds to a template: the server keeps them, so a template read back and sent
again may carry them, and they are dropped (as that API drops them)."""
GRAPHS = ("provision", "deprovision")
GRAPH_FIELDS = ("nodes", "edges", "user_params")
CONNECTOR_STEP = "create_connector"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_SLUG = re.compile(r"[^a-z0-9]+")
_SECRET_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_ID_SUFFIX_BYTES = 3
_SECRET_SUFFIX_BYTES = 4


@dataclasses.dataclass(frozen=True)
class InlineSecret:
    """A credential value taken out of a template: it goes to the secret store as ``name``."""

    name: str
    value: str = dataclasses.field(repr=False)


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The template of a request body: YAML when the Content-Type says so, else JSON."""
    if not raw.strip():
        raise BadRequest("the request body is empty: send a workflow template")
    if content_type in YAML_TYPES:
        loaded = load_file(SourceFile(path="request body", data=raw))
        if loaded.diagnostics:
            raise BadRequest(f"the YAML template does not load: {loaded.diagnostics[0].format()}")
        if len(loaded.documents) != 1:
            raise BadRequest("the YAML body must hold exactly one template document")
        value: Any = loaded.documents[0].value
        _refuse_non_string_keys(value, "")
    else:
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest(
                "the request body is not valid JSON (send YAML with Content-Type: application/yaml)"
            ) from None
    if not isinstance(value, dict):
        raise Unprocessable("the template must be an object")
    return value


def _refuse_non_string_keys(value: Any, where: str) -> None:
    """A template is a JSON object: a YAML key that loads as a number, a boolean or null
    (``1e100:``, ``true:``, ``~:``) has no JSON meaning, so it is refused, not guessed."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                at = f" in {where}" if where else ""
                raise BadRequest(
                    f"the YAML template has a key that is not a string{at}: {key!r} "
                    "(JSON object keys are strings: quote it)"
                )
            _refuse_non_string_keys(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_non_string_keys(item, f"{where}[{index}]")


def new_workflow_id(name: str) -> str:
    """A fresh workflow_id for a template called ``name``: its name as a DNS label, with a
    random suffix (that API generates ids too; two creates never overwrite each other)."""
    suffix = secrets.token_hex(_ID_SUFFIX_BYTES)
    slug = _SLUG.sub("-", name.lower()).strip("-")[: 62 - len(suffix)].strip("-")
    return f"{slug}-{suffix}" if slug else f"workflow-{suffix}"


def secret_prefix(workflow_id: str, node_id: str, key: str) -> str:
    """What the names of a node's credential ``key`` start with."""
    return ".".join(_SECRET_CHARS.sub("-", part) for part in (workflow_id, node_id, key))[:230]


def new_secret_name(prefix: str) -> str:
    """A fresh name for a credential value: a value sent again (a rotation) gets a new name,
    so the Workflow's document changes with it and the old value stays until then."""
    return f"{prefix}.{secrets.token_hex(_SECRET_SUFFIX_BYTES)}"


def is_secret_name(text: str, prefix: str) -> bool:
    """Whether ``text`` is a name :func:`new_secret_name` gave for ``prefix``."""
    suffix = rf"\.[0-9a-f]{{{2 * _SECRET_SUFFIX_BYTES}}}"
    return re.fullmatch(re.escape(prefix) + suffix, text) is not None


def param_secret_name(workflow_id: str, param: str) -> str:
    """The secret a provision-time value of credential placeholder ``param`` is stored under."""
    return ".".join(_SECRET_CHARS.sub("-", part) for part in (workflow_id, "param", param))[:250]


def _text(template: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = template.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise Unprocessable(f"{field}: must be a {'non-empty ' if required else ''}string")
    return value


def _graph(where: str, graph: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """A graph as our spec has it, and its user_params."""
    if not isinstance(graph, Mapping):
        raise Unprocessable(f"{where}: must be an object with nodes and edges")
    unknown = sorted(set(graph) - set(GRAPH_FIELDS))
    if unknown:
        raise Unprocessable(
            f"{where}.{unknown[0]}: not a field of a workflow (it takes {', '.join(GRAPH_FIELDS)})"
        )
    params = graph.get("user_params") or {}
    if not isinstance(params, Mapping):
        raise Unprocessable(f"{where}.user_params: must be an object")
    out = {key: value for key, value in graph.items() if key != "user_params"}
    return out, dict(params)


def take_credentials(
    template: Mapping[str, Any], *, workflow_id: str
) -> tuple[dict[str, Any], list[InlineSecret]]:
    """``template`` with each literal connector credential value replaced by its secret's
    name, and the values taken out; any shape is walked (a draft need not be valid)."""
    found: list[InlineSecret] = []
    workflows = template.get("workflows")
    if not isinstance(workflows, Mapping):
        return dict(template), found
    graphs: dict[str, Any] = {}
    for key, graph in workflows.items():
        nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
        if not isinstance(nodes, list):
            graphs[key] = graph
            continue
        taken = [_node_credentials(workflow_id, f"workflows.{key}.nodes[{i}]", node, found)
                 for i, node in enumerate(nodes)]  # fmt: skip
        graphs[key] = {**graph, "nodes": taken}
    return {**template, "workflows": graphs}, found


def _node_credentials(workflow_id: str, where: str, node: Any, found: list[InlineSecret]) -> Any:
    if not isinstance(node, Mapping) or node.get("type") != CONNECTOR_STEP:
        return node
    inputs = node.get("user_inputs")
    credential = inputs.get("credential") if isinstance(inputs, Mapping) else None
    if not isinstance(credential, Mapping):
        return node
    node_id = str(node.get("id"))
    names: dict[str, Any] = {}
    for key, value in credential.items():
        at = f"{where}.user_inputs.credential.{key}"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Unprocessable(f"{at}: a credential value must be a string")
        text = str(value)
        prefix = secret_prefix(workflow_id, node_id, str(key))
        if is_secret_name(text, prefix) or PLACEHOLDER.fullmatch(text.strip()):
            names[str(key)] = text
            continue
        if not text:
            raise Unprocessable(f"{at}: a credential value must not be empty")
        name = new_secret_name(prefix)
        found.append(InlineSecret(name=name, value=text))
        names[str(key)] = name
    assert isinstance(inputs, Mapping)
    return {**node, "user_inputs": {**inputs, "credential": names}}


def _undeclared_params(graphs: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    node_ids = {
        str(node.get("id"))
        for graph in graphs.values()
        for node in (graph.get("nodes") or [])
        if isinstance(node, Mapping)
    }
    names: list[str] = []
    for reference in references_in(dict(graphs)):
        if (
            reference.output is None
            and reference.name not in params
            and reference.name not in node_ids
        ) and reference.name not in names:
            names.append(reference.name)
    return names


def with_implied_edges(template: Mapping[str, Any]) -> dict[str, Any]:
    """``template`` with the edges its ``previous_node_inputs`` imply added, as that API
    adds them to the stored template: after the given edges, one per upstream node of
    each node (in node order), unless the graph has that edge already. Any shape is
    walked (a draft need not be valid); an upstream that is no node of the graph gets no
    edge (validation reports it)."""
    workflows = template.get("workflows")
    if not isinstance(workflows, Mapping):
        return dict(template)
    graphs: dict[str, Any] = {}
    for key, graph in workflows.items():
        nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
        edges = graph.get("edges", []) if isinstance(graph, Mapping) else None
        if not isinstance(nodes, list) or not isinstance(edges, list):
            graphs[key] = graph
            continue
        assert isinstance(graph, Mapping)
        ids = {str(n.get("id")) for n in nodes if isinstance(n, Mapping)}
        have = {(str(e.get("source")), str(e.get("dest"))) for e in edges if isinstance(e, Mapping)}
        added = list(edges)
        for node in nodes:
            upstream = node.get("previous_node_inputs") if isinstance(node, Mapping) else None
            if not isinstance(upstream, Mapping):
                continue
            for source in upstream:
                edge = (str(source), str(node.get("id")))
                if edge[0] in ids and edge not in have:
                    have.add(edge)
                    added.append({"source": edge[0], "dest": edge[1]})
        graphs[key] = {**graph, "edges": added}
    return {**template, "workflows": graphs}


def own_fields(template: Mapping[str, Any]) -> dict[str, Any]:
    """``template`` without the fields the server keeps (:data:`SERVED_FIELDS`)."""
    return {key: value for key, value in template.items() if key not in SERVED_FIELDS}


def check_shape(template: Mapping[str, Any]) -> None:
    """The template's own fields and their types: what even a draft must get right."""
    unknown = sorted(set(template) - set(TEMPLATE_FIELDS) - set(SERVED_FIELDS))
    if unknown:
        raise Unprocessable(
            f"{unknown[0]}: not a field of a workflow template (it takes "
            f"{', '.join(TEMPLATE_FIELDS)})"
        )
    _text(template, "name", required=True)
    _text(template, "description")
    _text(template, "use_case")
    for field in ("version", "workflows", "ui_metadata"):
        if field in template and not isinstance(template[field], Mapping):
            raise Unprocessable(f"{field}: must be an object")


def to_document(template: Mapping[str, Any], *, workflow_id: str) -> dict[str, Any]:
    """The Workflow document of ``template`` (its credentials taken out already)."""
    check_shape(template)
    name = _text(template, "name", required=True)
    assert name is not None
    annotations = {NAME_ANNOTATION: name}
    for field, annotation in (
        ("version", VERSION_ANNOTATION),
        ("ui_metadata", UI_METADATA_ANNOTATION),
    ):
        value = template.get(field)
        if value is not None:
            if not isinstance(value, Mapping):
                raise Unprocessable(f"{field}: must be an object")
            annotations[annotation] = json.dumps(value, ensure_ascii=False, sort_keys=True)
    workflows = template.get("workflows")
    if not isinstance(workflows, Mapping) or "provision" not in workflows:
        raise Unprocessable("workflows.provision: a template needs a provision workflow to run")
    extra = sorted(set(workflows) - set(GRAPHS))
    if extra:
        raise Unprocessable(
            f"workflows.{extra[0]}: only the provision and deprovision workflows are supported"
        )
    graphs: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key in GRAPHS:
        if key in workflows:
            graph, graph_params = _graph(f"workflows.{key}", workflows[key])
            graphs[key] = graph
            params.update(graph_params)
    for param in _undeclared_params(graphs, params):
        params[param] = ""
    spec: dict[str, Any] = {"trigger": "manual"}
    description = _text(template, "description")
    if description is not None:
        spec["description"] = description
    use_case = _text(template, "use_case")
    if use_case is not None:
        spec["use_case"] = use_case
    if params:
        spec["user_params"] = params
    spec["workflows"] = graphs
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "Workflow",
        "metadata": {"name": workflow_id, "annotations": annotations},
        "spec": spec,
    }
    if take_credentials(spec, workflow_id=workflow_id)[1]:
        raise ValueError("to_document needs a template whose credentials were taken out")
    return document


TEMPLATE_SPEC_FIELDS = ("description", "use_case", "user_params", "workflows")
"""The spec fields a template decides; an update keeps the others (priority, tags,
trigger, config...) as the Workflow has them in Git."""
_TEMPLATE_ANNOTATIONS = (NAME_ANNOTATION, VERSION_ANNOTATION, UI_METADATA_ANNOTATION)


def merged(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` (a Workflow document in Git) updated by ``new`` (a template's document):
    the template's spec fields and annotations replaced, everything else kept."""
    metadata = dict(current.get("metadata") or {})
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key not in _TEMPLATE_ANNOTATIONS
    }
    annotations.update(new["metadata"]["annotations"])
    metadata["annotations"] = annotations
    kept = {
        key: value
        for key, value in (current.get("spec") or {}).items()
        if key not in TEMPLATE_SPEC_FIELDS
    }
    given = {key: value for key, value in new["spec"].items() if key in TEMPLATE_SPEC_FIELDS}
    if "trigger" not in kept:
        kept["trigger"] = new["spec"]["trigger"]
    return {**current, "metadata": metadata, "spec": {**kept, **given}}


def _node(node: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if value not in (None, {}, [])}


def to_template(document: Mapping[str, Any]) -> dict[str, Any]:
    """The template a Workflow document stands for (any Workflow reads as one)."""
    metadata = document.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec = document.get("spec") or {}
    template: dict[str, Any] = {
        "name": annotations.get(NAME_ANNOTATION) or metadata.get("name"),
        "description": spec.get("description") or "",
    }
    if spec.get("use_case"):
        template["use_case"] = spec["use_case"]
    for field, annotation in (
        ("version", VERSION_ANNOTATION),
        ("ui_metadata", UI_METADATA_ANNOTATION),
    ):
        text = annotations.get(annotation)
        if text:
            try:
                template[field] = json.loads(text)
            except ValueError:
                template[field] = text
    workflows: dict[str, Any] = {}
    for key in GRAPHS:
        graph = (spec.get("workflows") or {}).get(key)
        if not isinstance(graph, Mapping):
            continue
        shown: dict[str, Any] = {
            "nodes": [_node(n) for n in graph.get("nodes") or [] if isinstance(n, Mapping)],
            "edges": [dict(e) for e in graph.get("edges") or [] if isinstance(e, Mapping)],
        }
        if key == "provision" and spec.get("user_params"):
            shown["user_params"] = dict(spec["user_params"])
        workflows[key] = shown
    template["workflows"] = workflows
    return template


def credential_params(document: Mapping[str, Any]) -> frozenset[str]:
    """Params whose value fills a connector's credential: given at provision time, such a
    value is a secret and goes to the secret store."""
    names: set[str] = set()
    for graph in ((document.get("spec") or {}).get("workflows") or {}).values():
        for node in (graph or {}).get("nodes") or []:
            if not isinstance(node, Mapping) or node.get("type") != CONNECTOR_STEP:
                continue
            credential = (node.get("user_inputs") or {}).get("credential")
            if isinstance(credential, Mapping):
                for value in credential.values():
                    found = PLACEHOLDER.fullmatch(str(value).strip())
                    if found is not None and found.group(2) is None:
                        names.add(found.group(1))
    return frozenset(names)
