"""Every spec field and config key is read somewhere outside the model that declares it.

A field that validates and is then read by nothing is a promise the daemon does not keep
(``Cluster.spec.gpu.count`` was one). This walks every field of every spec kind's model
and of the daemon config, and searches the package's source (its syntax trees, not its
text) for a read of each outside the module that defines it:

- an attribute read, ``spec.gpu.count`` (a method call ``x.count()`` is not a read);
- a string key, ``spec["gpu"]``, ``spec.get("gpu")``, ``.pop``/``.setdefault``, or
  ``"gpu" in spec``;
- through the model's own members: a property or method of the model that reads
  ``self.<field>`` (``poll_interval_seconds`` reads ``poll_interval``) counts when that
  member is read outside.

A field whose type is one fixed value (``apiVersion``, ``kind``, a source's
``provider_type``) is honoured by its schema alone. The search is by name, so it is a
net with holes (a same-named key read for another purpose hides a gap); it catches a
field that nothing reads at all, which is what the fixed defects were.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from reconciler.daemon.config import Config
from reconciler.specs.registry import DOCUMENT_MODELS

PACKAGE = Path(__file__).parents[2] / "reconciler"
_KEY_METHODS = frozenset({"get", "pop", "setdefault", "seconds"})
"""Methods whose first argument names a field (``config.seconds("lease_duration")``)."""

KNOWN_GAPS: dict[str, str] = {}
"""Fields known to be read by nothing, each with why it is still accepted. A gap that is
closed must leave this table (the test fails on a stale entry)."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of one model, and the path to it from a document or the config."""

    model: type[BaseModel]
    name: str
    attribute: str
    path: str


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def _fixed(annotation: object) -> bool:
    """A type of exactly one value: ``Literal["Cluster"]``."""
    return typing.get_origin(annotation) is typing.Literal and len(typing.get_args(annotation)) == 1


def _fields(model: type[BaseModel], path: str, seen: frozenset[type[BaseModel]]) -> Iterator[Field]:
    for attribute, info in model.model_fields.items():
        name = info.alias or attribute
        if _fixed(info.annotation):
            continue
        yield Field(model, name, attribute, f"{path}.{name}")
        for inner in _models_in(info.annotation):
            if inner not in seen:
                yield from _fields(inner, f"{path}.{name}", seen | {inner})


def every_field() -> list[Field]:
    found = [
        field
        for kind, model in DOCUMENT_MODELS.items()
        for field in _fields(model, kind, frozenset({model}))
    ]
    found += _fields(Config, "config", frozenset({Config}))
    return found


@dataclasses.dataclass(frozen=True)
class ModuleReads:
    """The names one module reads, and what each class's members read of ``self``."""

    names: frozenset[str]
    called: frozenset[str]
    self_reads: dict[str, dict[str, frozenset[str]]]


def _reads(tree: ast.AST) -> ModuleReads:
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names: set[str] = set()
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            (called if id(node) in calls else names).add(node.attr)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if isinstance(node.slice.value, str):
                names.add(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _KEY_METHODS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
        ):
            names.add(node.left.value)
    self_reads: dict[str, dict[str, frozenset[str]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        members: dict[str, frozenset[str]] = {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                members[item.name] = frozenset(
                    inner.attr
                    for inner in ast.walk(item)
                    if isinstance(inner, ast.Attribute)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id in {"self", "cls"}
                )
        self_reads[node.name] = members
    return ModuleReads(frozenset(names), frozenset(called), self_reads)


@functools.cache
def package_reads() -> dict[Path, ModuleReads]:
    return {
        path.resolve(): _reads(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _home(model: type[BaseModel]) -> Path:
    module = inspect.getmodule(model)
    assert isinstance(module, types.ModuleType) and module.__file__ is not None
    return Path(module.__file__).resolve()


def readers(field: Field) -> list[Path]:
    """The modules outside the field's own that read it (directly or through a member)."""
    reads = package_reads()
    home = _home(field.model)
    members = reads[home].self_reads.get(field.model.__name__, {})
    via = {name for name, used in members.items() if field.attribute in used}
    found = []
    for path, module in reads.items():
        if path == home:
            continue
        if {field.name, field.attribute} & module.names or via & (module.names | module.called):
            found.append(path)
    return found


def test_every_spec_field_and_config_key_is_read_somewhere() -> None:
    unread = [field.path for field in every_field() if not readers(field)]
    unexplained = sorted(set(unread) - set(KNOWN_GAPS))
    assert unexplained == [], (
        "read by nothing outside their models: honour them, or make validate refuse them "
        f"('not supported yet') until they are: {unexplained}"
    )
    stale = sorted(set(KNOWN_GAPS) - set(unread))
    assert stale == [], f"KNOWN_GAPS lists fields that are read now; remove them: {stale}"


def test_the_walk_reaches_nested_models_and_config_sections() -> None:
    paths = {field.path for field in every_field()}
    assert {
        "Cluster.spec.gpu.count",
        "Cluster.spec.ingress_url",
        "Workflow.spec.config.schedule.timezone",
        "Workflow.spec.workflows.provision.nodes.user_inputs",
        "Deployment.spec.deploy_config.ttft",
        "config.repo.poll_interval",
        "config.api.tokens.sha256",
    } <= paths
    assert "Cluster.apiVersion" not in paths  # one fixed value: its schema honours it


def test_the_search_tells_a_read_from_a_method_call_and_a_member() -> None:
    tree = ast.parse(
        "class Settings:\n"
        "    @property\n"
        "    def wait_seconds(self):\n"
        "        return parse(self.wait)\n"
        "def use(spec, items):\n"
        "    items.count(3)\n"
        "    return spec['gpu'], spec.get('kind'), 'name' in spec, spec.port\n"
    )
    found = _reads(tree)
    assert {"gpu", "kind", "name", "port"} <= found.names
    assert "count" not in found.names and "count" in found.called
    assert found.self_reads["Settings"]["wait_seconds"] == {"wait"}
