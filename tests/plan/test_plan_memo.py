"""A plan made with a PlanMemo equals one made without, cycle after cycle.

The daemon plans the same repo every cycle and lends each plan a memo (the reference
graph while no object changed, each object's chain while its spec and change are the
same). Reusing them must never change a plan: the same edits, planned in sequence with
one memo and fresh each time, give equal plans, with each chain naming its own revision.
"""

from __future__ import annotations

from reconciler.core.diff import diff_states
from reconciler.core.plan import PlanMemo, plan_changes
from tests.plan.plan_fixtures import edit, load_cases, repo_documents, states


def test_plans_with_one_memo_across_revisions_equal_fresh_plans() -> None:
    base = repo_documents()
    current = states(base)
    memo = PlanMemo()
    for number, case in enumerate(load_cases("diff_cases.yaml") * 2):
        desired = states(edit(base, case["edits"]))
        changes = diff_states(desired, current)
        revision = f"rev-{number}"
        fresh = plan_changes(changes, desired=desired, current=current, revision=revision)
        kept = plan_changes(changes, desired=desired, current=current, revision=revision, memo=memo)
        assert kept == fresh, case["name"]
        assert all(item.chain.revision == revision for item in kept.items if item.chain)


def test_the_memo_keeps_only_the_chains_the_last_plan_used() -> None:
    base = repo_documents()
    current = states(base)
    memo = PlanMemo()
    everything = states(base)
    plan_changes(
        diff_states(everything, {}), desired=everything, current={}, revision="a", memo=memo
    )
    many = len(memo.chains)
    assert many > 1
    plan_changes(
        diff_states(current, current), desired=current, current=current, revision="b", memo=memo
    )
    assert len(memo.chains) < many
