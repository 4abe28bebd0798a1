"""diff_states and diff_values: which objects changed, and which fields, by dotted path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from plan_fixtures import (
    CREATE_ORDER,
    REPO,
    edit,
    load_cases,
    repo_documents,
    repo_sources,
    states,
    states_of,
)

from reconciler.core.diff import (
    Change,
    FieldChange,
    ObjectState,
    diff_states,
    diff_values,
    state_from_document,
)

CASES = load_cases("diff_cases.yaml")


def _field(row: list[Any]) -> FieldChange:
    path, old, new, *op = row
    return FieldChange(path, old, new, op[0] if op else "change")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fixture_edits_give_these_changes(case: dict[str, Any]) -> None:
    base = repo_documents()
    current, desired = states(base), states(edit(base, case["edits"]))

    changes = diff_states(desired, current)

    found = {c.key: (c.action, list(c.fields)) for c in changes if c.action != "unchanged"}
    expected = {
        key: (want["action"], [_field(row) for row in want["fields"]])
        for key, want in case["changes"].items()
    }
    assert found == expected
    everything = set(desired) | set(current)
    assert {c.key for c in changes} == everything


def test_formatting_comments_and_spelled_out_defaults_are_not_changes(tmp_path: Path) -> None:
    reformatted = tmp_path / "repo"
    shutil.copytree(REPO, reformatted)
    shutil.copy(REPO.parent / "reformatted" / "models.yaml", reformatted / "models.yaml")
    before, after = states_of(repo_sources()), states_of(repo_sources(reformatted))

    changes = diff_states(after, before)

    assert [c for c in changes if c.action != "unchanged"] == []
    assert {k: s.spec_hash for k, s in after.items()} == {k: s.spec_hash for k, s in before.items()}


def test_changes_come_in_kind_order_then_name() -> None:
    current = states(repo_documents())
    changes = diff_states({}, current)
    assert [c.key for c in changes] == CREATE_ORDER
    assert {c.action for c in changes} == {"delete"}


VALUE_CASES: list[tuple[str, Any, Any, list[FieldChange]]] = [
    ("equal scalars", 1, 1, []),
    ("int and float differ as JSON does", 1, 1.0, [FieldChange("", 1, 1.0)]),
    ("bool is not an int", 1, True, [FieldChange("", 1, True)]),
    ("null to value", None, "x", [FieldChange("", None, "x")]),
    (
        "nested key added and removed",
        {"a": {"b": 1}},
        {"a": {"c": 2}},
        [FieldChange("a.b", 1, None, "remove"), FieldChange("a.c", None, 2, "add")],
    ),
    ("list shrinks", {"l": [1, 2]}, {"l": [1]}, [FieldChange("l", [1, 2], [1])]),
    (
        "list same length, nested mapping",
        {"l": [{"x": 1}, {"x": 2}]},
        {"l": [{"x": 1}, {"x": 3}]},
        [FieldChange("l[1].x", 2, 3)],
    ),
    ("mapping to list", {"a": {"b": 1}}, {"a": [1]}, [FieldChange("a", {"b": 1}, [1])]),
    (
        "keys that are not identifiers are quoted",
        {"env": {"HF_HOME": "/a", "app.io/x": "1"}},
        {"env": {"HF_HOME": "/b", "app.io/x": "2"}},
        [FieldChange("env.HF_HOME", "/a", "/b"), FieldChange('env["app.io/x"]', "1", "2")],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in VALUE_CASES],
    ids=[case[0] for case in VALUE_CASES],
)
def test_diff_values(old: Any, new: Any, expected: list[FieldChange]) -> None:
    assert diff_values(old, new) == expected


def _document(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Project",
        "metadata": {"name": "p"},
        "spec": spec,
    }


def test_spec_hash_ignores_key_order_and_sees_values() -> None:
    first = state_from_document(_document(description="a", permissions=[]))
    reordered = state_from_document(
        dict(reversed(list(_document(permissions=[], description="a").items())))
    )
    other = state_from_document(_document(description="b", permissions=[]))

    assert first.spec_hash == reordered.spec_hash
    assert first.spec_hash != other.spec_hash
    assert len(first.spec_hash) == 64


def test_same_hash_is_unchanged_and_a_state_never_compares_to_itself_as_update() -> None:
    state = state_from_document(_document(description="a"))
    assert diff_states({state.key: state}, {state.key: state}) == [
        Change("unchanged", "Project", "p")
    ]


def test_state_from_document_rejects_a_document_without_identity() -> None:
    with pytest.raises(ValueError, match=r"kind and metadata\.name"):
        state_from_document({"kind": "Project", "spec": {}})


def test_object_state_reads_suspend_and_prune_annotation() -> None:
    document = _document(suspend=True)
    document["metadata"]["annotations"] = {"reconciler/prune": "disabled"}
    state: ObjectState = state_from_document(document)
    assert state.suspended and state.prune_disabled
    assert not state_from_document(_document()).prune_disabled
