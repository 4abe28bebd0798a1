"""Validating a whole spec repository: per-file checks, then checks across objects.

Split in two so the daemon can cache the first half by blob id: :func:`parse_file` turns
one loaded file into typed objects and the problems local to them (schema, names, inline
secrets, workflow graphs); :func:`check_objects` runs what needs every object at once
(duplicates, references, SLO with templates). :func:`validate_sources` does both.

Every problem in one run: a document that fails its schema (a bad ``metadata.name``, say)
still gets the checks that read the raw values, its workflow graphs and references, so a
second problem is not hidden until the first is fixed. Only the parts the schema found
malformed are skipped, since their checks would repeat the same problem in other words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from pydantic import ValidationError

from reconciler.core import cloud_providers
from reconciler.core.diagnostics import Diagnostic, sort_diagnostics
from reconciler.core.validation import (
    cloud_serving,
    cluster_fit,
    inline_secrets,
    llm_features,
    model_cache,
    references,
    slo,
    workflow_graph,
)
from reconciler.core.validation.check_memo import CheckMemo
from reconciler.core.validation.objects import SpecObject, did_you_mean, document_problem
from reconciler.core.validation.schema_errors import diagnostics_from_validation_error
from reconciler.load.documents import FileLoad, RawDocument, SourceFile, load_file
from reconciler.load.limits import DEFAULT_LIMITS, LoadLimits
from reconciler.load.nodes import ParserName
from reconciler.specs import registry


@dataclasses.dataclass(frozen=True)
class ValidateOptions:
    """What the repo alone cannot decide: choices of the daemon config."""

    implicit_projects: bool = False


class HostFacts(Protocol):
    """What only the daemon's host can tell; validate reports these as warnings."""

    def secret_exists(self, name: str) -> bool: ...

    def path_exists(self, path: str) -> bool: ...


@dataclasses.dataclass(frozen=True)
class ParsedFile:
    """One file's typed objects and the problems found in it alone.

    ``secret_values`` are the inline secret values found in the file: no message of the
    whole run may repeat them (a reference check elsewhere could echo one as a name).
    """

    path: str
    blob: str | None
    objects: tuple[SpecObject, ...]
    diagnostics: tuple[Diagnostic, ...]
    secret_values: frozenset[str] = frozenset()
    unparsed: tuple[tuple[str, str], ...] = ()
    """``(kind, name)`` of documents whose own checks failed: they still exist for references."""
    partial: tuple[SpecObject, ...] = ()
    """Documents that failed their schema but whose references can still be checked."""


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    objects: tuple[SpecObject, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def _envelope(doc: RawDocument) -> tuple[str | None, str | None, list[Diagnostic]]:
    value = doc.value
    if not isinstance(value, dict):
        return (
            None,
            None,
            [
                document_problem(
                    doc, (), "a document must be a mapping with apiVersion, kind, metadata and spec"
                )
            ],
        )
    kind = value.get("kind")
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    name = name if isinstance(name, str) else None
    if not isinstance(kind, str):
        where = ("kind",) if "kind" in value else ()
        message = "missing required field 'kind'" if not where else "kind must be a string"
        return (
            None,
            name,
            [document_problem(doc, where, f"{message}; one of {', '.join(registry.KINDS)}")],
        )
    if kind not in registry.KINDS:
        return (
            None,
            name,
            [
                document_problem(
                    doc,
                    ("kind",),
                    f"unknown kind '{kind}'{did_you_mean(kind, registry.KINDS)}; "
                    f"one of {', '.join(registry.KINDS)}",
                    name=name,
                )
            ],
        )
    return kind, name, []


def parse_file(load: FileLoad, *, blob: str | None = None) -> ParsedFile:
    """Typed objects of one loaded file and every problem local to them."""
    problems = list(load.diagnostics)
    objects: list[SpecObject] = []
    secrets: set[str] = set()
    unparsed: list[tuple[str, str]] = []
    partial: list[SpecObject] = []
    scan = bool(load.documents) and inline_secrets.could_hold_secrets(load.documents[0].file.text)
    for doc in load.documents:
        kind, name, envelope_problems = _envelope(doc)
        secret_paths: set[tuple[str | int, ...]] = set()
        found = inline_secrets.find_inline_secrets(doc.value) if scan else iter(())
        for secret_path, message in found:
            secret_paths.add(secret_path)
            problems.append(document_problem(doc, secret_path, message, kind=kind, name=name))
        secrets.update(inline_secrets.values_at(doc.value, secret_paths))
        if envelope_problems or kind is None:
            problems.extend(envelope_problems)
            continue
        try:
            model = registry.parse_document(doc.value)
        except ValidationError as exc:
            schema_problems = diagnostics_from_validation_error(
                doc, exc, kind=kind, name=name, skip=frozenset(secret_paths)
            )
            problems.extend(schema_problems)
            if name is not None:
                unparsed.append((kind, name))
            rest = _despite_schema_errors(doc, exc, kind=kind, name=name)
            if rest is not None:
                partial.append(rest)
                problems.extend(_graph_problems(rest, name=name))
            continue
        obj = SpecObject(kind=kind, name=model.metadata.name, doc=doc, model=model)
        objects.append(obj)
        if kind == "Workflow":
            problems.extend(workflow_graph.check_workflow(obj))
    return ParsedFile(
        load.path,
        blob,
        tuple(objects),
        tuple(problems),
        frozenset(secrets),
        tuple(unparsed),
        tuple(partial),
    )


_CHECKED_DESPITE_SCHEMA: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": tuple(
        ("spec", field) for field in ("model", "cluster", "template", "project", "credential")
    ),
    "Model": (("spec", "source"),),
    "Workflow": (("spec", "workflows"), ("spec", "user_params")),
}
"""Kinds whose raw-value checks still run when their schema failed, and the paths those
checks read: a schema problem at, above or under one of them skips the checks."""


def _despite_schema_errors(
    doc: RawDocument, exc: ValidationError, *, kind: str, name: str | None
) -> SpecObject | None:
    """The document as an object for the raw-value checks, or None when they cannot run."""
    read = _CHECKED_DESPITE_SCHEMA.get(kind)
    if read is None or not isinstance(doc.value.get("spec"), dict):
        return None
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        for path in read:
            if loc[: len(path)] == path or path[: len(loc)] == loc:
                return None
    return SpecObject(kind=kind, name=name or "", doc=doc, model=None)


def _graph_problems(obj: SpecObject, *, name: str | None) -> list[Diagnostic]:
    if obj.kind != "Workflow":
        return []
    return [dataclasses.replace(d, name=name) for d in workflow_graph.check_workflow(obj)]


def _index(
    objects: Sequence[SpecObject],
) -> tuple[dict[str, dict[str, SpecObject]], list[Diagnostic]]:
    index: dict[str, dict[str, SpecObject]] = {}
    problems: list[Diagnostic] = []
    for obj in objects:
        by_name = index.setdefault(obj.kind, {})
        first = by_name.get(obj.name)
        if first is not None:
            line, col = first.doc.locate(("metadata", "name"))
            problems.append(
                obj.problem(
                    ("metadata", "name"),
                    f"duplicate {obj.key}: already defined at {first.path}:{line}:{col}",
                )
            )
            continue
        by_name[obj.name] = obj
    return index, problems


def check_objects(
    objects: Sequence[SpecObject],
    *,
    options: ValidateOptions = ValidateOptions(),
    host: HostFacts | None = None,
    unparsed: Iterable[tuple[str, str]] = (),
    partial: Iterable[SpecObject] = (),
    memo: CheckMemo | None = None,
    ordered: bool = False,
) -> list[Diagnostic]:
    """Problems that need every object: duplicates, references, SLO consistency, what
    a Deployment asks of its Cluster's driver.

    ``ordered`` says ``objects`` are already by path, then place in the file (the first
    of a duplicated name is the one kept).

    ``unparsed`` names the documents that failed their own checks: a reference to one of
    them is not reported again as dangling. ``partial`` are those of them whose references
    can still be checked (see :func:`parse_file`). ``memo`` (kept by a caller that checks
    the same repo again and again, with the same options) reuses each object's result
    while nothing it read changed.
    """
    if not ordered:
        objects = sorted(objects, key=lambda o: (o.path, o.doc.index))
    index, problems = _index(objects)
    names: dict[str, set[str]] = {kind: set(by_name) for kind, by_name in index.items()}
    for kind, name in unparsed:
        names.setdefault(kind, set()).add(name)
    if memo is not None:
        memo.begin(index, names)
    for obj in objects:
        if index.get(obj.kind, {}).get(obj.name) is not obj:
            continue
        if memo is None:
            problems.extend(_across(obj, index, names, options=options))
        else:
            recalled = memo.recall(obj)
            if recalled is None:
                views = memo.views(index, names)
                found = _across(obj, views.index, views.names, options=options)
                memo.remember(obj, views, found)
                problems.extend(found)
            else:
                problems.extend(recalled)
        if host is not None:
            problems.extend(_host_checks(obj, host))
    if memo is not None:
        memo.end()
    for obj in partial:
        problems.extend(
            dataclasses.replace(d, name=obj.name or None)
            for d in _references(obj, index, names, options=options)
        )
    return problems


def _across(
    obj: SpecObject,
    index: references.Index,
    names: references.Names,
    *,
    options: ValidateOptions,
) -> list[Diagnostic]:
    """One object's checks against the others: everything it reads of them comes through
    ``index`` and ``names`` (the memo records those reads)."""
    found = _references(obj, index, names, options=options)
    if obj.kind == "Deployment":
        templates = index.get("DeploymentTemplate", {})
        found.extend(slo.check_slo(obj, slo.template_for(obj, templates)))
        found.extend(cluster_fit.deployment_fit(obj, index))
        found.extend(cluster_fit.check_cluster_fit(obj, index.get("Cluster", {})))
        found.extend(llm_features.check_adapters(obj, index, names))
        found.extend(llm_features.check_autoscaling(obj, index))
        found.extend(llm_features.check_rollout_gate(obj, index))
    if obj.kind == "Workflow":
        found.extend(cluster_fit.job_fit(obj, index))
    if obj.kind == "Model":
        found.extend(_cloud_uri(obj))
        found.extend(model_cache.check_model_cache(obj, index, names))
    return found


def _references(
    obj: SpecObject,
    index: references.Index,
    names: references.Names,
    *,
    options: ValidateOptions,
) -> list[Diagnostic]:
    if obj.kind == "Deployment":
        return references.deployment_references(
            obj, index, names, implicit_projects=options.implicit_projects
        )
    if obj.kind == "Model":
        return references.model_references(obj, names)
    if obj.kind == "Credential":
        return cloud_serving.credential_problems(obj)
    if obj.kind == "Workflow":
        return references.workflow_references(
            obj, names, implicit_projects=options.implicit_projects
        )
    return []


def _cloud_uri(model: SpecObject) -> list[Diagnostic]:
    """A cloud model's URI must have its provider's form (core/cloud_providers.py)."""
    source = model.spec.get("source")
    if not isinstance(source, Mapping) or source.get("provider_type") != "cloud_model":
        return []
    provider, uri = source.get("provider"), source.get("uri")
    if not isinstance(provider, str) or not isinstance(uri, str):
        return []
    try:
        cloud_providers.validate_uri(provider=provider, uri=uri)
    except cloud_providers.CloudUriError as exc:
        return [model.problem(("spec", "source", "uri"), str(exc))]
    return []


def _host_checks(obj: SpecObject, host: HostFacts) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    secret_paths: list[tuple[tuple[str | int, ...], object]] = []
    if obj.kind == "Credential":
        secret_paths.append((("spec", "secret"), obj.spec.get("secret")))
    if obj.kind == "Cluster":
        kubeconfig = obj.spec.get("kubeconfig") or {}
        secret_paths.append((("spec", "kubeconfig", "secret"), kubeconfig.get("secret")))
    for path, name in secret_paths:
        if isinstance(name, str) and not host.secret_exists(name):
            found.append(
                obj.problem(
                    path,
                    f"secret '{name}' is not on this host (looked in $CREDENTIALS_DIRECTORY, "
                    "the secrets directory and RECONCILER_SECRET_*); the daemon will report "
                    "SecretNotFound",
                    severity="warning",
                )
            )
    if obj.kind == "Model":
        source = obj.spec.get("source") or {}
        uri = source.get("uri")
        if (
            source.get("provider_type") == "disk"
            and isinstance(uri, str)
            and not host.path_exists(uri)
        ):
            found.append(
                obj.problem(
                    ("spec", "source", "uri"),
                    f"model path {uri} does not exist on this host",
                    severity="warning",
                )
            )
    return found


def load_and_parse(
    source: SourceFile, *, limits: LoadLimits = DEFAULT_LIMITS, parser: ParserName | None = None
) -> ParsedFile:
    return parse_file(load_file(source, limits=limits, parser=parser), blob=source.blob)


def validate_parsed(
    files: Iterable[ParsedFile],
    *,
    options: ValidateOptions = ValidateOptions(),
    host: HostFacts | None = None,
    memo: CheckMemo | None = None,
) -> ValidationResult:
    objects: list[SpecObject] = []
    problems: list[Diagnostic] = []
    secrets: set[str] = set()
    unparsed: list[tuple[str, str]] = []
    partial: list[SpecObject] = []
    for parsed in sorted(files, key=lambda f: f.path):
        objects.extend(parsed.objects)
        problems.extend(parsed.diagnostics)
        secrets.update(parsed.secret_values)
        unparsed.extend(parsed.unparsed)
        partial.extend(parsed.partial)
    problems.extend(
        check_objects(
            objects,
            options=options,
            host=host,
            unparsed=unparsed,
            partial=partial,
            memo=memo,
            ordered=True,
        )
    )
    if secrets:
        problems = [inline_secrets.redact(problem, secrets) for problem in problems]
    return ValidationResult(tuple(objects), tuple(sort_diagnostics(problems)))


@contextlib.contextmanager
def fewer_collections(*, first_generation: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often while a batch is loaded.

    Loading allocates millions of short-lived, acyclic objects (YAML nodes, values) that
    reference counting frees; with the default threshold (700) the collector still walks
    the growing set of survivors thousands of times, a third of validate's time on a
    large repo. The thresholds are restored afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], first_generation), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def validate_sources(
    sources: Iterable[SourceFile],
    *,
    limits: LoadLimits = DEFAULT_LIMITS,
    parser: ParserName | None = None,
    options: ValidateOptions = ValidateOptions(),
    host: HostFacts | None = None,
) -> ValidationResult:
    """Load, parse and check every source; all problems in one result."""
    with fewer_collections():
        parsed = [load_and_parse(source, limits=limits, parser=parser) for source in sources]
        return validate_parsed(parsed, options=options, host=host)


def objects_by_key(objects: Iterable[SpecObject]) -> Mapping[str, SpecObject]:
    return {obj.key: obj for obj in objects}
