"""Rendering a plan: terraform-like text, a PR comment, stable JSON; never a secret value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plan_fixtures import edit, plan_between, repo_documents

from reconciler.core.diff import diff_states, state_from_document
from reconciler.core.plan import Plan, plan_changes
from reconciler.core.plan_markdown import render_markdown
from reconciler.core.plan_render import (
    MASK,
    chain_outline,
    guard,
    render_json,
    render_text,
)

ANTHROPIC = {
    "apiVersion": "reconciler/v1",
    "kind": "Credential",
    "metadata": {"name": "anthropic-prod"},
    "spec": {"provider": "anthropic", "secret": "anthropic-api-key"},
}


@pytest.fixture(scope="module")
def mixed_plan() -> Plan:
    base = edit(
        repo_documents(),
        [
            {
                "object": "Model/minilm",
                "set": {"metadata.annotations": {"reconciler/prune": "disabled"}},
            }
        ],
    )
    head = edit(
        base,
        [
            {"object": "Model/minilm", "delete": True},
            {"object": "Model/tiny-gguf", "delete": True},
            {"object": "Model/phi-3-5-mini", "set": {"spec.source.revision": "v2"}},
            {"object": "Deployment/gpt-mini-endpoint", "set": {"spec.workers": 2}},
            {"add": ANTHROPIC},
            {
                "object": "Workflow/nightly-eval",
                "set": {"spec.user_params.dataset": "s3://datasets/eval/v2.jsonl"},
            },
        ],
    )
    return plan_between(base, head)


def test_text_lists_each_change_with_fields_steps_and_a_summary(mixed_plan: Plan) -> None:
    assert render_text(mixed_plan).splitlines() == [
        "+ create Credential/anthropic-prod",
        "    steps: check_secret",
        "~ update Model/phi-3-5-mini",
        '    spec.source.revision: "main" -> "v2"',
        "    steps: add_model -> scan_model",
        "~ update Deployment/gpt-mini-endpoint",
        "    spec.workers: null -> 2",
        "    steps: scale_deployment",
        "~ update Deployment/phi-chat (Model phi-3-5-mini changed)",
        "    steps: deploy_model",
        "    after: Model/phi-3-5-mini",
        "~ update Workflow/nightly-eval",
        '    spec.user_params.dataset: "s3://datasets/eval/chat.jsonl"'
        ' -> "s3://datasets/eval/v2.jsonl"',
        "    steps: wait_endpoint (wait_ready) -> eval_job (k8s_job) -> report (http_request)",
        "    after: Deployment/phi-chat",
        "- delete Model/tiny-gguf",
        "    steps: remove_model",
        "- delete Model/minilm",
        "    kept: prune disabled",
        "= unchanged: Credential/hf-token, Credential/openai-prod, Project/research, "
        "Cluster/local, Cluster/xeon-dev, DeploymentTemplate/chat-low-latency, Model/gpt-4o-mini",
        "",
        "Plan: 1 to create, 4 to update, 2 to delete, 7 unchanged.",
    ]


def test_text_of_no_changes_says_so() -> None:
    plan = plan_between(repo_documents(), repo_documents())
    lines = render_text(plan).splitlines()
    assert lines[-2:] == [
        "No changes.",
        "Plan: 0 to create, 0 to update, 0 to delete, 13 unchanged.",
    ]
    assert lines[0].startswith("= unchanged: Credential/hf-token, ")


def test_text_shows_added_and_removed_fields_as_absent() -> None:
    plan = plan_between(
        repo_documents(),
        edit(
            repo_documents(),
            [{"object": "Cluster/local", "set": {"metadata.labels": {"team": "infra"}}}],
        ),
    )
    assert '    metadata.labels.team: (absent) -> "infra"' in render_text(plan).splitlines()


def test_markdown_is_a_pr_comment(mixed_plan: Plan) -> None:
    text = render_markdown(
        mixed_plan, base="main", head="work tree", warnings=["a.yaml:3:5: warning: w (Model/x)"]
    )
    lines = text.splitlines()

    assert lines[0] == "### reconciler plan"
    assert "Base <code>main</code> → head <code>work tree</code>" in lines
    assert "**Plan: 1 to create, 4 to update, 2 to delete, 7 unchanged.**" in lines
    assert "| | Object | Action | Steps | Notes |" in lines
    assert (
        "| ~ | <code>Deployment/phi-chat</code> | update | "
        "<code>deploy_model</code> | Model phi-3-5-mini changed |"
    ) in lines
    assert "| - | <code>Model/minilm</code> | delete |  | kept: prune disabled |" in lines
    assert (
        '| <code>spec.source.revision</code> | <code>"main"</code> | <code>"v2"</code> |'
    ) in lines
    assert (
        "Steps (execute): <code>wait_endpoint (wait_ready) -&gt; eval_job (k8s_job) -&gt; "
        "report (http_request)</code>" in lines
    )
    assert "<details><summary>7 unchanged</summary>" in lines
    assert lines[-3:] == ["#### Warnings", "", "- a.yaml:3:5: warning: w (Model/x)"]
    assert text.count("<details") == text.count("</details>") == 8


def test_json_has_the_documented_keys(mixed_plan: Plan) -> None:
    document = json.loads(render_json(mixed_plan, base="main", head="work tree", warnings=["w"]))

    assert set(document) == {
        "format_version",
        "base",
        "head",
        "base_commit",
        "head_commit",
        "has_changes",
        "summary",
        "items",
        "warnings",
    }
    assert (document["format_version"], document["base"], document["head"]) == (
        1,
        "main",
        "work tree",
    )
    assert document["has_changes"] is True
    assert document["summary"] == {"create": 1, "update": 4, "delete": 2, "unchanged": 7}
    assert document["warnings"] == ["w"]
    items = {item["object"]: item for item in document["items"]}
    assert len(items) == 14
    deployment = items["Deployment/gpt-mini-endpoint"]
    assert set(deployment) == {
        "object",
        "kind",
        "name",
        "action",
        "status",
        "reason",
        "notes",
        "fields",
        "chain",
        "waits_for",
        "sizing",
    }
    assert deployment["sizing"] is None  # a cloud model is not sized
    assert deployment["fields"] == [{"path": "spec.workers", "op": "change", "old": None, "new": 2}]
    assert deployment["chain"]["action"] == "apply"
    assert deployment["chain"]["steps"] == [
        {
            "id": "scale_deployment",
            "type": "scale_deployment",
            "after": [],
            "pass_outputs": {},
            "retries": 0,
            "retry_delay": 1.0,
            "timeout": None,
        }
    ]
    assert items["Model/minilm"]["status"] == "kept"
    assert items["Model/minilm"]["chain"] is None
    assert items["Deployment/phi-chat"]["reason"] == "Model phi-3-5-mini changed"


SECRET_VALUES = [
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "https://user:pa55word@example.com/x",
]


@pytest.mark.parametrize("secret", SECRET_VALUES)
def test_no_format_prints_a_secret_value(secret: str) -> None:
    def project(description: str, env: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "reconciler/v1",
            "kind": "Project",
            "metadata": {"name": "p"},
            "spec": {"description": description, "permissions": [], "env": env},
        }

    old = state_from_document(project("plain", {"password": "hunter2-hunter2"}))
    new = state_from_document(project(f"key is {secret}", {"password": "correct-horse"}))
    desired, current = {new.key: new}, {old.key: old}
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="r"
    )

    for text in (render_text(plan), render_markdown(plan), render_json(plan)):
        assert secret not in text
        assert "hunter2" not in text and "correct-horse" not in text
        assert "plain" in text
        assert "looks like a secret" in text


def test_guard_masks_by_shape_and_by_key_and_keeps_secret_names() -> None:
    value = {
        "secret": "openai-api-key",
        "token": "abc",
        "args": ["--key", SECRET_VALUES[0]],
        "count": 3,
    }
    assert guard(value) == {
        "secret": "openai-api-key",
        "token": MASK,
        "args": ["--key", MASK],
        "count": 3,
    }


def test_chain_outline_braces_steps_that_may_run_together() -> None:
    from plan_fixtures import fixture_states

    from reconciler.core.chain_builders import ChainRequest, build_chain

    state = fixture_states("workflows_extra.yaml")["Workflow/smoke-test"]
    chain = build_chain(ChainRequest("create", state, "r")).chain
    assert chain is not None
    assert chain_outline(chain) == (
        "ready (wait_ready) -> {ping (http_request), warm (http_request)} -> done (noop)"
    )
