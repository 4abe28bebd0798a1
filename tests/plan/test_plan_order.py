"""Plan ordering: dependencies before dependants, deletes after applies and reversed."""

from __future__ import annotations

import networkx as nx
from plan_fixtures import CREATE_ORDER, edit, fixture_states, plan_between, repo_documents

from reconciler.core.diff import diff_states
from reconciler.core.plan import dependency_order, plan_changes, reference_graph, references_of

STATES = fixture_states()


def test_references_of_each_kind() -> None:
    assert references_of(STATES["Deployment/phi-chat"]) == [
        "Model/phi-3-5-mini",
        "Cluster/xeon-dev",
        "DeploymentTemplate/chat-low-latency",
        "Project/research",
    ]
    assert references_of(STATES["Deployment/gpt-mini-endpoint"]) == [
        "Model/gpt-4o-mini",
        "Credential/openai-prod",
        "Project/research",
    ]
    assert references_of(STATES["Model/phi-3-5-mini"]) == ["Credential/hf-token"]
    assert references_of(STATES["Model/minilm"]) == []
    # wait_ready's deployment comes from spec.user_params; k8s_job's cluster is literal.
    assert references_of(STATES["Workflow/nightly-eval"]) == [
        "Deployment/phi-chat",
        "Cluster/xeon-dev",
    ]
    assert references_of(STATES["Cluster/xeon-dev"]) == []


def test_creates_run_dependencies_first() -> None:
    plan = plan_between([], repo_documents())
    keys = [item.key for item in plan.items]

    assert keys == CREATE_ORDER
    graph = reference_graph(STATES, {})
    for dependency, dependant in graph.edges:
        assert keys.index(dependency) < keys.index(dependant), (dependency, dependant)
    assert [item.change.action for item in plan.items] == ["create"] * len(keys)


def test_deletes_run_dependants_first() -> None:
    plan = plan_between(repo_documents(), [])
    assert [item.key for item in plan.items] == list(reversed(CREATE_ORDER))


def test_applies_come_before_deletes_in_one_plan() -> None:
    base = repo_documents()
    head = edit(
        base,
        [
            {"object": "Deployment/gpt-mini-endpoint", "delete": True},
            {"object": "Model/gpt-4o-mini", "delete": True},
            {"object": "Credential/openai-prod", "delete": True},
            {"object": "Deployment/phi-chat", "set": {"spec.workers": 2}},
            {"object": "Model/tiny-gguf", "set": {"spec.dtype": "int4"}},
        ],
    )
    plan = plan_between(base, head)
    changed = [(i.change.action, i.key) for i in plan.items if i.change.action != "unchanged"]

    assert changed == [
        ("update", "Model/tiny-gguf"),
        ("update", "Deployment/phi-chat"),
        ("delete", "Deployment/gpt-mini-endpoint"),
        ("delete", "Model/gpt-4o-mini"),
        ("delete", "Credential/openai-prod"),
    ]
    waits = {item.key: item.waits_for for item in plan.items}
    assert waits["Model/gpt-4o-mini"] == ("Deployment/gpt-mini-endpoint",)
    assert waits["Deployment/gpt-mini-endpoint"] == ()


def test_items_wait_for_the_chains_of_their_dependencies() -> None:
    plan = plan_between([], repo_documents())
    waits = {item.key: item.waits_for for item in plan.items}

    assert waits["Deployment/phi-chat"] == (
        "Project/research",
        "Cluster/xeon-dev",
        "DeploymentTemplate/chat-low-latency",
        "Model/phi-3-5-mini",
    )
    assert waits["Model/phi-3-5-mini"] == ("Credential/hf-token",)
    assert waits["Workflow/nightly-eval"] == ("Cluster/xeon-dev", "Deployment/phi-chat")
    assert waits["Credential/hf-token"] == ()


def test_order_follows_references_not_kind_names() -> None:
    """The sort is a topological one: an edge decides even against the name order."""
    graph = nx.DiGraph()
    graph.add_edges_from([("Model/zeta", "Deployment/alpha"), ("Model/alpha", "Deployment/zeta")])
    graph.add_node("Credential/zz")
    assert dependency_order(graph) == [
        "Credential/zz",
        "Model/alpha",
        "Model/zeta",
        "Deployment/alpha",
        "Deployment/zeta",
    ]


def test_a_cycle_falls_back_to_kind_order_instead_of_failing() -> None:
    graph = nx.DiGraph([("Deployment/a", "Model/a"), ("Model/a", "Deployment/a")])
    assert dependency_order(graph) == ["Model/a", "Deployment/a"]


def test_plan_records_the_revision_in_every_chain() -> None:
    changes = diff_states(STATES, {})
    plan = plan_changes(changes, desired=STATES, current={}, revision="abc123")
    assert plan.revision == "abc123"
    assert plan.chains()
    assert {chain.revision for chain in plan.chains()} == {"abc123"}
