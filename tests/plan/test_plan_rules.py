"""Plan rules: redeploys caused by a Model or template, blocked and disabled pruning, suspend."""

from __future__ import annotations

from plan_fixtures import (
    edit,
    fixture_states,
    plan_between,
    plan_edits,
    repo_documents,
    states,
)

from reconciler.core.chain_builders import SUSPENDED_NOTE
from reconciler.core.diff import diff_states
from reconciler.core.plan import Plan, PlanItem, plan_changes


def _item(plan: Plan, key: str) -> PlanItem:
    return next(item for item in plan.items if item.key == key)


def _steps(item: PlanItem) -> tuple[str, ...] | None:
    return None if item.chain is None else item.chain.step_types()


def test_nothing_changed_is_a_plan_without_changes() -> None:
    plan = plan_edits([])
    assert not plan.has_changes
    assert plan.counts == {"create": 0, "update": 0, "delete": 0, "unchanged": 13}
    assert plan.chains() == ()
    assert {item.status for item in plan.items} == {"noop"}


def test_a_changed_model_redeploys_the_deployments_that_use_it() -> None:
    plan = plan_edits([{"object": "Model/phi-3-5-mini", "set": {"spec.source.revision": "v2"}}])
    item = _item(plan, "Deployment/phi-chat")

    assert item.change.action == "update"
    assert item.change.fields == ()
    assert item.reason == "Model phi-3-5-mini changed"
    assert _steps(item) == ("deploy_model",)
    assert item.waits_for == ("Model/phi-3-5-mini",)
    assert _item(plan, "Deployment/gpt-mini-endpoint").change.action == "unchanged"
    assert plan.counts["update"] == 2


def test_a_changed_template_redeploys_even_when_only_workers_changed_too() -> None:
    plan = plan_edits(
        [
            {"object": "DeploymentTemplate/chat-low-latency", "set": {"spec.runtime.port": 9000}},
            {"object": "Model/phi-3-5-mini", "set": {"spec.author": "msft"}},
            {"object": "Deployment/phi-chat", "set": {"spec.workers": 2}},
        ]
    )
    item = _item(plan, "Deployment/phi-chat")

    assert [f.path for f in item.change.fields] == ["spec.workers"]
    assert item.reason == (
        "Model phi-3-5-mini changed; DeploymentTemplate chat-low-latency changed"
    )
    assert _steps(item) == ("deploy_model",)


def test_only_workers_changed_scales() -> None:
    plan = plan_edits([{"object": "Deployment/phi-chat", "set": {"spec.workers": 2}}])
    item = _item(plan, "Deployment/phi-chat")
    assert item.reason is None
    assert _steps(item) == ("scale_deployment",)


def test_a_suspended_model_does_not_redeploy_its_deployments() -> None:
    plan = plan_edits(
        [{"object": "Model/phi-3-5-mini", "set": {"spec.suspend": True, "spec.author": "x"}}]
    )
    model = _item(plan, "Model/phi-3-5-mini")
    assert (model.change.action, model.status, model.notes) == (
        "update",
        "suspended",
        (SUSPENDED_NOTE,),
    )
    assert model.chain is None
    assert _item(plan, "Deployment/phi-chat").change.action == "unchanged"


def test_a_suspended_deployment_is_reported_and_runs_nothing() -> None:
    plan = plan_edits(
        [{"object": "Deployment/phi-chat", "set": {"spec.suspend": True, "spec.workers": 4}}]
    )
    item = _item(plan, "Deployment/phi-chat")
    assert item.change.action == "update"
    assert (item.status, item.chain, item.notes) == ("suspended", None, (SUSPENDED_NOTE,))
    assert plan.has_changes


def test_a_deleted_model_still_used_by_a_deployment_is_not_pruned() -> None:
    current = fixture_states()
    desired = {k: v for k, v in current.items() if k != "Model/phi-3-5-mini"}
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="r"
    )
    item = _item(plan, "Model/phi-3-5-mini")

    assert item.change.action == "delete"
    assert (item.status, item.chain) == ("blocked", None)
    assert item.notes == ("blocked: still referenced by Deployment/phi-chat",)


def test_a_credential_still_used_by_a_model_and_a_deployment_is_not_pruned() -> None:
    current = fixture_states()
    desired = {
        k: v
        for k, v in current.items()
        if k not in ("Credential/hf-token", "Credential/openai-prod")
    }
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="r"
    )
    assert _item(plan, "Credential/hf-token").notes == (
        "blocked: still referenced by Model/phi-3-5-mini",
    )
    assert _item(plan, "Credential/openai-prod").notes == (
        "blocked: still referenced by Deployment/gpt-mini-endpoint",
    )


def test_objects_deleted_together_are_not_blocked_by_each_other() -> None:
    plan = plan_edits(
        [
            {"object": "Deployment/phi-chat", "delete": True},
            {"object": "Workflow/nightly-eval", "delete": True},
            {"object": "Model/phi-3-5-mini", "delete": True},
        ]
    )
    item = _item(plan, "Model/phi-3-5-mini")
    assert (item.status, _steps(item)) == ("run", ("remove_model",))
    assert item.waits_for == ("Deployment/phi-chat",)


def test_prune_disabled_keeps_an_object_that_left_git() -> None:
    base = edit(
        repo_documents(),
        [
            {
                "object": "Model/minilm",
                "set": {"metadata.annotations": {"reconciler/prune": "disabled"}},
            }
        ],
    )
    head = edit(base, [{"object": "Model/minilm", "delete": True}])
    current, desired = states(base), states(head)
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="r"
    )
    item = _item(plan, "Model/minilm")

    assert item.change.action == "delete"
    assert (item.status, item.chain, item.notes) == ("kept", None, ("kept: prune disabled",))
    assert plan.has_changes
    assert plan.counts["delete"] == 1


def test_a_suspended_object_that_left_git_is_left_as_it_is() -> None:
    base = edit(repo_documents(), [{"object": "Cluster/local", "set": {"spec.suspend": True}}])
    head = edit(base, [{"object": "Cluster/local", "delete": True}])
    current, desired = states(base), states(head)
    plan = plan_changes(
        diff_states(desired, current), desired=desired, current=current, revision="r"
    )
    item = _item(plan, "Cluster/local")
    assert (item.change.action, item.status, item.chain) == ("delete", "suspended", None)


def test_a_create_gives_no_other_object_as_its_cause() -> None:
    """Everything new: the Deployment is created, not "changed because its Model changed"."""
    plan = plan_between([], repo_documents())
    item = _item(plan, "Deployment/phi-chat")

    assert item.change.action == "create"
    assert item.reason is None
    assert _steps(item) == ("deploy_model",)
    assert "Model/phi-3-5-mini" in item.waits_for
    assert [i.reason for i in plan.items] == [None] * len(plan.items)
