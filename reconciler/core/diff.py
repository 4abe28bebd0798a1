"""Comparing two sets of objects as plain values: what to create, update or delete.

Objects are compared in their canonical form (the typed model dumped to JSON values), so
formatting, comments, key order and defaults spelled out never count as changes. The
result names every changed field by a dotted path (``spec.deploy_config.ttft``) so that
a plan can say what it will change and a chain builder can pick a cheaper chain.
Pure: no I/O, plain values in and out; the daemon builds :class:`ObjectState` values for
what it observes the same way the CLI builds them from Git.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from reconciler.core.validation.objects import SpecObject
from reconciler.specs.envelope import PRUNE_ANNOTATION
from reconciler.specs.registry import KINDS

ChangeAction = Literal["create", "update", "delete", "unchanged"]
FieldOp = Literal["add", "remove", "change"]

_KIND_ORDER: tuple[str, ...] = KINDS
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def canonical_json(value: Any) -> str:
    """The one spelling of a JSON value used for hashing: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_document(document: Mapping[str, Any]) -> str:
    """sha256 (hex) of a document's canonical JSON."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class ObjectState:
    """One object as plain values: its whole canonical document and that document's hash.

    ``document`` holds ``apiVersion``, ``kind``, ``metadata`` and ``spec`` as JSON values
    (what ``model_dump(mode="json")`` gives); ``spec_hash`` is :func:`hash_document` of it.
    """

    kind: str
    name: str
    document: Mapping[str, Any]
    spec_hash: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> Mapping[str, Any]:
        """The ``spec`` part of the document (empty if it has none)."""
        spec = self.document.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    @property
    def annotations(self) -> Mapping[str, str]:
        metadata = self.document.get("metadata")
        found = metadata.get("annotations") if isinstance(metadata, Mapping) else None
        return found if isinstance(found, Mapping) else {}

    @property
    def prune_disabled(self) -> bool:
        """True when ``reconciler/prune: disabled``: leaving Git does not delete it."""
        return self.annotations.get(PRUNE_ANNOTATION) == "disabled"

    @property
    def suspended(self) -> bool:
        """True when ``spec.suspend: true``: the daemon leaves the object as it is."""
        return self.spec.get("suspend") is True


def state_from_document(document: Mapping[str, Any]) -> ObjectState:
    """An ObjectState from a canonical document (``kind`` and ``metadata.name`` inside)."""
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    kind = document.get("kind")
    if not isinstance(kind, str) or not isinstance(name, str):
        raise ValueError("a document needs a string kind and metadata.name")
    # One encoding serves the hash; the document is kept as given (JSON values already:
    # model_dump(mode="json") or a stored copy), which halves the cost per object.
    digest = hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
    return ObjectState(kind=kind, name=name, document=document, spec_hash=digest)


def state_from(obj: SpecObject) -> ObjectState:
    """The canonical state of a validated spec object."""
    return state_from_document(obj.model.model_dump(mode="json"))


def states_by_key(objects: Iterable[SpecObject]) -> dict[str, ObjectState]:
    """States keyed by ``kind/name``; of duplicates, the first by file and position wins."""
    ordered = sorted(objects, key=lambda o: (o.path, o.doc.index))
    states: dict[str, ObjectState] = {}
    for obj in ordered:
        states.setdefault(obj.key, state_from(obj))
    return states


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """One field that differs; ``old`` is None for ``add``, ``new`` is None for ``remove``."""

    path: str
    old: Any
    new: Any
    op: FieldOp = "change"


@dataclasses.dataclass(frozen=True)
class Change:
    """What differs for one object between desired and current state."""

    action: ChangeAction
    kind: str
    name: str
    fields: tuple[FieldChange, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def field_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields)


def _child_path(path: str, key: str) -> str:
    part = key if _PLAIN_KEY.fullmatch(key) else f"[{json.dumps(key)}]"
    if not path:
        return part
    return f"{path}{part}" if part.startswith("[") else f"{path}.{part}"


def diff_values(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Field-level differences between two JSON values.

    Mappings are compared key by key, lists of equal length index by index (``args[1]``),
    anything else (and lists whose length changed) as a whole value.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            child = _child_path(path, str(key))
            if key not in new:
                found.append(FieldChange(child, old[key], None, "remove"))
            elif key not in old:
                found.append(FieldChange(child, None, new[key], "add"))
            else:
                found.extend(diff_values(old[key], new[key], child))
        return found
    if _is_list(old) and _is_list(new) and len(old) == len(new):
        found = []
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            found.extend(diff_values(before, after, f"{path}[{index}]"))
        return found
    if _same(old, new):
        return []
    return [FieldChange(path, old, new)]


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python; JSON spells them apart, and so does a spec.
    return type(old) is type(new) and bool(old == new)


def _order_key(key: str) -> tuple[int, str]:
    kind, _, name = key.partition("/")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, f"{kind}/{name}"


def diff_states(
    desired: Mapping[str, ObjectState], current: Mapping[str, ObjectState]
) -> list[Change]:
    """One Change per object in either mapping (keyed by ``kind/name``).

    Sorted by kind (dependency order) then name; plan_changes orders them for running.
    """
    changes: list[Change] = []
    for key in sorted(set(desired) | set(current), key=_order_key):
        want, have = desired.get(key), current.get(key)
        if want is not None and have is None:
            changes.append(Change("create", want.kind, want.name))
        elif want is None and have is not None:
            changes.append(Change("delete", have.kind, have.name))
        elif want is not None and have is not None:
            if want.spec_hash == have.spec_hash:
                changes.append(Change("unchanged", want.kind, want.name))
                continue
            fields = tuple(diff_values(have.document, want.document))
            action: ChangeAction = "update" if fields else "unchanged"
            changes.append(Change(action, want.kind, want.name, fields))
    return changes
