"""Chain builders: which steps each kind's change runs, with which inputs and settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from plan_fixtures import edit, fixture_states, repo_documents, states

from reconciler.core.chain_builders import (
    BUILDERS,
    SUSPENDED_NOTE,
    ChainRequest,
    build_chain,
)
from reconciler.core.chains import Chain, StepNode
from reconciler.core.diff import ObjectState
from reconciler.engine.chain_codec import chain_from_dict, chain_to_dict
from reconciler.engine.node_inputs import check_chain
from reconciler.specs.registry import KINDS

STATES = fixture_states("workflows_extra.yaml")


def _state(key: str, **changes: Any) -> ObjectState:
    if not changes:
        return STATES[key]
    documents = edit(repo_documents(), [{"object": key, "set": changes}])
    return states(documents)[key]


def _build(action: str, state: ObjectState, changed: frozenset[str] = frozenset()) -> Chain | None:
    built = build_chain(ChainRequest(action, state, "rev-1", changed=changed))  # type: ignore[arg-type]
    if built.chain is not None:
        check_chain(built.chain)
        assert chain_from_dict(chain_to_dict(built.chain)) == built.chain
        assert built.chain.revision == "rev-1"
        assert built.chain.spec_hash == state.spec_hash
    return built.chain


# (object, action, edits, changed fields, chain action, step types, chain cluster)
CASES: list[tuple[str, str, dict[str, Any], set[str], str, tuple[str, ...], str | None]] = [
    ("Credential/hf-token", "create", {}, set(), "apply", ("check_secret",), None),
    ("Project/research", "update", {}, set(), "apply", ("record_spec",), None),
    ("Project/research", "delete", {}, set(), "delete", ("record_spec",), None),
    ("Cluster/xeon-dev", "create", {}, set(), "apply", ("check_cluster",), "xeon-dev"),
    ("Cluster/local", "delete", {}, set(), "delete", ("release_cluster",), "local"),
    ("DeploymentTemplate/chat-low-latency", "create", {}, set(), "apply", ("record_spec",), None),
    ("DeploymentTemplate/chat-low-latency", "delete", {}, set(), "delete", ("record_spec",), None),
    ("Model/phi-3-5-mini", "create", {}, set(), "apply", ("add_model", "scan_model"), None),
    ("Model/minilm", "update", {}, set(), "apply", ("add_model", "scan_model"), None),
    ("Model/tiny-gguf", "create", {}, set(), "apply", ("add_model", "scan_model"), None),
    ("Model/gpt-4o-mini", "create", {}, set(), "apply", ("add_model",), None),
    (
        "Model/phi-3-5-mini",
        "create",
        {"spec.security_scan": "skip"},
        set(),
        "apply",
        ("add_model",),
        None,
    ),
    ("Model/phi-3-5-mini", "delete", {}, set(), "delete", ("remove_model",), None),
    (
        "Deployment/phi-chat",
        "create",
        {},
        set(),
        "apply",
        ("deploy_model",),
        "xeon-dev",
    ),
    (
        "Deployment/phi-chat",
        "update",
        {"spec.workers": 3},
        {"spec.workers"},
        "apply",
        ("scale_deployment",),
        "xeon-dev",
    ),
    (
        "Deployment/phi-chat",
        "update",
        {},
        {"spec.workers"},
        "apply",
        ("deploy_model",),
        "xeon-dev",
    ),
    (
        "Deployment/phi-chat",
        "update",
        {"spec.workers": 3, "spec.strategy": "recreate"},
        {"spec.workers", "spec.strategy"},
        "apply",
        ("deploy_model",),
        "xeon-dev",
    ),
    ("Deployment/phi-chat", "delete", {}, set(), "delete", ("undeploy_model",), "xeon-dev"),
    (
        "Deployment/gpt-mini-endpoint",
        "create",
        {},
        set(),
        "apply",
        ("deploy_model",),
        None,
    ),
    (
        "Workflow/nightly-eval",
        "create",
        {},
        set(),
        "execute",
        ("wait_ready", "k8s_job", "http_request"),
        "xeon-dev",
    ),
    ("Workflow/on-request", "update", {}, set(), "apply", ("record_spec",), None),
    ("Workflow/smoke-test", "delete", {}, set(), "delete", ("k8s_job",), "local"),
]


@pytest.mark.parametrize(
    ("key", "action", "edits", "changed", "chain_action", "steps", "cluster"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{'-'.join(sorted(c[3])) or 'all'}-{len(c[2])}" for c in CASES],
)
def test_chain_per_kind(
    key: str,
    action: str,
    edits: dict[str, Any],
    changed: set[str],
    chain_action: str,
    steps: tuple[str, ...],
    cluster: str | None,
) -> None:
    chain = _build(action, _state(key, **edits), frozenset(changed))

    assert chain is not None
    assert (chain.kind, chain.name) == tuple(key.split("/"))
    assert chain.action == chain_action
    assert chain.step_types() == steps
    assert chain.cluster == cluster


@pytest.mark.parametrize(
    ("key", "action", "note"),
    [
        ("Credential/hf-token", "delete", "nothing to run: the secret stays in the host's store"),
        (
            "Workflow/nightly-eval",
            "delete",
            "nothing to run: the workflow has no deprovision graph",
        ),
    ],
)
def test_changes_with_nothing_to_run_say_why(key: str, action: str, note: str) -> None:
    built = build_chain(ChainRequest(action, STATES[key], "rev-1"))  # type: ignore[arg-type]
    assert built.chain is None
    assert built.note == note


@pytest.mark.parametrize(
    "key", ["Deployment/phi-chat", "Model/phi-3-5-mini", "Cluster/local", "Workflow/nightly-eval"]
)
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_a_suspended_object_runs_nothing(key: str, action: str) -> None:
    state = _state(key, **{"spec.suspend": True})
    built = build_chain(ChainRequest(action, state, "rev-1"))  # type: ignore[arg-type]
    assert built == type(built)(None, SUSPENDED_NOTE)


def test_built_in_steps_get_the_spec_fields_and_the_name_under_the_kind_key() -> None:
    model = STATES["Model/phi-3-5-mini"]
    chain = _build("create", model)
    assert chain is not None
    add, scan = chain.steps
    assert add == StepNode(
        id="add_model", type="add_model", inputs={**model.spec, "model": "phi-3-5-mini"}
    )
    assert scan.after == ("add_model",)
    assert scan.inputs == add.inputs

    deployment = STATES["Deployment/phi-chat"]
    deploy_chain = _build("create", deployment)
    assert deploy_chain is not None
    (deploy,) = deploy_chain.steps  # deploy_model waits until the endpoint serves
    assert deploy.inputs == {**deployment.spec, "deployment": "phi-chat"}
    assert deploy.retries > 0  # while its Model is not Ready yet

    project = STATES["Project/research"]
    record = _build("create", project)
    assert record is not None
    assert record.steps[0].inputs == {**project.spec, "kind": "Project", "name": "research"}


def _steps_by_id(chain: Chain) -> Mapping[str, StepNode]:
    return {step.id: step for step in chain.steps}


def test_an_on_change_workflow_executes_its_provision_graph() -> None:
    state = STATES["Workflow/nightly-eval"]
    chain = _build("create", state)
    assert chain is not None
    steps = _steps_by_id(chain)

    assert chain.params == {"endpoint": "phi-chat", "dataset": "s3://datasets/eval/chat.jsonl"}
    assert steps["wait_endpoint"] == StepNode(
        id="wait_endpoint",
        type="wait_ready",
        inputs={"deployment": "${{ endpoint }}"},
        retries=3,
        retry_delay=30.0,
    )
    job = steps["eval_job"]
    assert job.after == ("wait_endpoint",)
    assert job.pass_outputs == {"wait_endpoint": "endpoint_url"}
    assert job.timeout == 45 * 60
    assert job.inputs["args"] == [
        "--endpoint",
        "${{ wait_endpoint.endpoint_url }}",
        "--data",
        "${{ dataset }}",
    ]
    assert steps["report"].after == ("eval_job",)
    assert steps["report"].pass_outputs == {"eval_job": "outputs"}
    assert steps["report"].timeout is None


def test_node_settings_override_the_workflow_config_and_placeholders_imply_edges() -> None:
    chain = _build("update", STATES["Workflow/smoke-test"])
    assert chain is not None
    steps = _steps_by_id(chain)

    assert steps["ready"].timeout == 600.0  # the wait_ready node's literal timeout input
    assert (steps["ready"].retries, steps["ready"].retry_delay) == (1, 5.0)
    assert (steps["ping"].retries, steps["ping"].timeout) == (4, 20.0)
    assert steps["ping"].after == ("ready",)  # from ${{ ready.endpoint_url }}
    assert steps["warm"].after == ("ready",)
    assert steps["done"].after == ("ping", "warm")
    assert chain.cluster is None  # no k8s_job node in the provision graph


def test_every_kind_has_a_builder() -> None:
    assert set(BUILDERS) == set(KINDS)
