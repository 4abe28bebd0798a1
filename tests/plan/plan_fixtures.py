"""Spec sets for plan tests: the fixture repo, edited per case, loaded by the real loader.

Cases edit plain documents (set a dotted path, drop an object, add one), then every
document goes through YAML and ``validate_sources`` as in production, so the states the
tests compare are the ones the daemon and the CLI would build.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from reconciler.core.diff import ObjectState, diff_states, states_by_key
from reconciler.core.plan import Plan, plan_changes
from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

FIXTURES = Path(__file__).parent / "fixtures"
REPO = FIXTURES / "repo"

Document = dict[str, Any]


def repo_sources(folder: Path = REPO) -> list[SourceFile]:
    return [SourceFile(p.name, p.read_bytes()) for p in sorted(folder.glob("*.yaml"))]


def repo_documents(folder: Path = REPO) -> list[Document]:
    documents: list[Document] = []
    for path in sorted(folder.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return documents


def load_cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((FIXTURES / name).read_text())
    return cases


def _key(document: Mapping[str, Any]) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def _set(target: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def _unset(target: Any, dotted: str) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    del target[parts[-1]]


def edit(documents: Sequence[Document], edits: Iterable[Mapping[str, Any]]) -> list[Document]:
    """Documents after ``edits``: ``{object, set: {path: value}}``, ``{object, unset: [path]}``,
    ``{object, delete: true}`` or ``{add: document}``."""
    result = copy.deepcopy(list(documents))
    for change in edits:
        if "add" in change:
            result.append(copy.deepcopy(dict(change["add"])))
            continue
        matches = [d for d in result if _key(d) == change["object"]]
        assert matches, f"no object {change['object']} in the fixture repo"
        document = matches[0]
        if change.get("delete"):
            result.remove(document)
            continue
        for path, value in (change.get("set") or {}).items():
            _set(document, path, copy.deepcopy(value))
        for path in change.get("unset") or []:
            _unset(document, path)
    return result


def sources_of(documents: Sequence[Document]) -> list[SourceFile]:
    """One YAML file per document, named after the object."""
    return [
        SourceFile(f"{_key(d).replace('/', '-').lower()}.yaml", yaml.safe_dump(d).encode())
        for d in documents
    ]


def states_of(sources: Sequence[SourceFile]) -> dict[str, ObjectState]:
    result = validate_sources(sources)
    errors = [d.format() for d in result.diagnostics if d.severity == "error"]
    assert not errors, errors
    return states_by_key(result.objects)


def states(documents: Sequence[Document]) -> dict[str, ObjectState]:
    return states_of(sources_of(documents))


def plan_between(
    base: Sequence[Document], head: Sequence[Document], *, revision: str = "head"
) -> Plan:
    current, desired = states(base), states(head)
    changes = diff_states(desired, current)
    return plan_changes(changes, desired=desired, current=current, revision=revision)


def plan_edits(edits: Iterable[Mapping[str, Any]]) -> Plan:
    """The plan from the fixture repo to the repo after ``edits``."""
    base = repo_documents()
    return plan_between(base, edit(base, edits))


def fixture_states(*extra: str) -> dict[str, ObjectState]:
    """States of the fixture repo plus the named extra fixture files."""
    more = [SourceFile(name, (FIXTURES / name).read_bytes()) for name in extra]
    return states_of(repo_sources() + more)


# The example objects in dependency order (kind order, then name).
CREATE_ORDER = [
    "Credential/hf-token",
    "Credential/openai-prod",
    "Project/research",
    "Cluster/local",
    "Cluster/xeon-dev",
    "DeploymentTemplate/chat-low-latency",
    "Model/gpt-4o-mini",
    "Model/minilm",
    "Model/phi-3-5-mini",
    "Model/tiny-gguf",
    "Deployment/gpt-mini-endpoint",
    "Deployment/phi-chat",
    "Workflow/nightly-eval",
]
