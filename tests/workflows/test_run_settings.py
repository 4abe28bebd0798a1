"""A Workflow's run settings as values: validate's refusals (each naming the field), the
retry policy in the chain a Workflow builds, which log lines a policy keeps, and which
cluster a run's environments and strategy pick (pure, on plain facts)."""

from __future__ import annotations

import textwrap

import pytest

from reconciler.core.chain_builders import ChainRequest, build_chain, workflow_run_chain
from reconciler.core.chains import Chain
from reconciler.core.diff import ObjectState, state_from_document
from reconciler.core.run_targets import (
    Candidate,
    ClusterFacts,
    candidates,
    pick,
    target_run,
)
from reconciler.core.validation.repo import ValidateOptions, validate_sources
from reconciler.engine.step_logs import LogPolicy, policy_of
from reconciler.load.documents import SourceFile
from reconciler.specs import parse_document


def _diagnostics(spec: str) -> list[str]:
    text = "apiVersion: reconciler/v1\nkind: Workflow\nmetadata: {name: w}\nspec:\n" + (
        textwrap.indent(textwrap.dedent(spec), "  ")
        + "  workflows:\n    provision:\n      nodes: [{id: a, type: noop}]\n"
    )
    result = validate_sources(
        [SourceFile("w.yaml", text.encode())], parser=None, options=ValidateOptions(), host=None
    )
    return [d.format() for d in result.diagnostics]


# --- validate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            "environments: [east]\nenvironment_strategy: cost\n",
            "spec.environment_strategy: input should be 'ordered', 'round_robin' or 'time', "
            "got 'cost'",
        ),
        ("environment_strategy: time\n", "environment_strategy picks among environments"),
        ("environment_strategy: round_robin\nenvironments: []\n", "picks among environments"),
        ("environments: [east, east]\n", "environments lists east more than once"),
        ("config: {logs: {level: debug}}\n", "spec.config.logs.level: input should be"),
        ("config: {logs: {keep: true}}\n", "spec.config.logs.keep"),
        (
            "config: {notifications: {secret: hook-key}}\n",
            "secret signs the webhook's bodies, and no webhook is given",
        ),
        (
            "config: {notifications: {email: {to: [not-an-address]}}}\n",
            "'not-an-address' is not an email address",
        ),
        ("config: {notifications: {email: {to: []}}}\n", "spec.config.notifications.email.to"),
        (
            "config: {notifications: {slack: {secret: 'https://hooks.slack.com/x'}}}\n",
            "'secret' takes the NAME of a secret",
        ),
        ("config: {retry_enabled: maybe}\n", "spec.config.retry_enabled"),
    ],
)
def test_validate_refuses_a_bad_run_setting_naming_it(spec: str, words: str) -> None:
    found = _diagnostics(spec)
    assert any(words in line for line in found), found


def test_validate_accepts_every_run_setting() -> None:
    assert (
        _diagnostics(
            """\
            environments: [awsVirginia, staging]
            environment_strategy: round_robin
            config:
              retries: 2
              retry_enabled: false
              logs: {enabled: true, level: warning}
              notifications:
                enabled: false
                webhook: https://hooks.example.internal/x
                secret: hook-key
                slack: {secret: slack-hook}
                email: {to: [ml-team@example.com]}
                events: [start, fail]
            """
        )
        == []
    )


# --- retry policy ------------------------------------------------------------------------


def _workflow(spec: dict[str, object]) -> ObjectState:
    document = parse_document(
        {
            "apiVersion": "reconciler/v1",
            "kind": "Workflow",
            "metadata": {"name": "w"},
            "spec": {
                "trigger": "on_change",
                "workflows": {
                    "provision": {
                        "nodes": [
                            {"id": "a", "type": "noop"},
                            {"id": "b", "type": "noop", "retries": 5},
                        ]
                    }
                },
                **spec,
            },
        }
    )
    return state_from_document(document.model_dump(mode="json"))


def _retries(state: ObjectState) -> dict[str, tuple[int, float]]:
    chain = workflow_run_chain(state, "r1")
    assert chain is not None
    return {s.id: (s.retries, s.retry_delay) for s in chain.steps}


def test_retry_policy_is_the_nodes_retries_unless_retry_is_turned_off() -> None:
    config = {"retries": 3, "retry_delay": "2s"}
    assert _retries(_workflow({"config": config})) == {"a": (3, 2.0), "b": (5, 2.0)}
    off = _workflow({"config": {**config, "retry_enabled": False}})
    assert _retries(off) == {"a": (0, 2.0), "b": (0, 2.0)}
    built = build_chain(ChainRequest("create", off, "r1")).chain
    assert built is not None and [s.retries for s in built.steps] == [0, 0]


# --- step logs ---------------------------------------------------------------------------

LOG = (
    "2025-07-10T14:45:10.000001Z INFO waiting 1s\n"
    "2025-07-10T14:45:11.000001Z WARNING disk almost full\n"
    "  (a second line of the warning)\n"
    "2025-07-10T14:45:12.000001Z ERROR no luck\n"
    "2025-07-10T14:45:13.000001Z INFO retrying in 1s: no luck\n"
)


def test_a_log_policy_keeps_the_lines_at_its_level_and_above() -> None:
    assert LogPolicy().apply(LOG) == LOG
    assert LogPolicy(level="warning").apply(LOG) == (
        "2025-07-10T14:45:11.000001Z WARNING disk almost full\n"
        "  (a second line of the warning)\n"
        "2025-07-10T14:45:12.000001Z ERROR no luck\n"
    )
    assert LogPolicy(level="error").apply(LOG) == "2025-07-10T14:45:12.000001Z ERROR no luck\n"
    assert LogPolicy(enabled=False).apply(LOG) == ""
    assert policy_of({"config": {"logs": {"enabled": False, "level": "error"}}}) == LogPolicy(
        enabled=False, level="error"
    )
    assert policy_of({}) == LogPolicy()


# --- environments -------------------------------------------------------------------------


def _cluster(name: str, environment: str | None = None) -> ObjectState:
    labels = {"reconciler/environment": environment} if environment else {}
    return state_from_document(
        {
            "apiVersion": "reconciler/v1",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"driver": "local"},
        }
    )


CLUSTERS = {
    c.name: c
    for c in (
        _cluster("east-1", "awsVirginia"),
        _cluster("east-2", "awsVirginia"),
        _cluster("west", "dgxCloudCalifornia"),
        _cluster("staging"),
    )
}
EAST1, EAST2 = Candidate("awsVirginia", "east-1"), Candidate("awsVirginia", "east-2")
WEST, STAGING = Candidate("dgxCloudCalifornia", "west"), Candidate("staging", "staging")


def test_an_environment_names_the_cluster_of_its_name_or_its_label() -> None:
    assert candidates(["staging", "awsVirginia", "dgxCloudCalifornia"], CLUSTERS) == [
        STAGING,
        EAST1,
        EAST2,
        WEST,
    ]
    assert candidates(["production"], CLUSTERS) == []


def test_each_strategy_picks_as_documented() -> None:
    among = [EAST1, EAST2, WEST]
    nothing_ready = ClusterFacts()
    assert pick("ordered", among, nothing_ready) == EAST1
    assert pick("ordered", among, ClusterFacts(ready=frozenset({"west", "east-2"}))) == EAST2
    assert pick("round_robin", among, ClusterFacts(previous=None)) == EAST1
    assert pick("round_robin", among, ClusterFacts(previous="east-2")) == WEST
    assert pick("round_robin", among, ClusterFacts(previous="west")) == EAST1
    assert pick("round_robin", among, ClusterFacts(previous="gone")) == EAST1
    ready = frozenset({"east-1", "east-2", "west"})
    busy = {"east-1": 3, "east-2": 1, "west": 1}
    assert pick("time", among, ClusterFacts(ready=ready, busy=busy)) == EAST2
    only_west = ClusterFacts(ready=frozenset({"west"}), busy={"west": 9})
    assert pick("time", among, only_west) == WEST
    assert pick("time", among, ClusterFacts(busy={"east-1": 1})) == EAST2
    with pytest.raises(ValueError, match="environment_strategy 'cost' is not one of"):
        pick("cost", among, nothing_ready)


def _run(params: dict[str, object]) -> Chain:
    return Chain(
        kind="Workflow",
        name="w",
        action="execute",
        revision="r1",
        spec_hash="h",
        steps=(),
        params=params,
    )


def test_a_run_takes_the_picked_cluster_and_its_declared_params() -> None:
    spec = {"environments": ["dgxCloudCalifornia", "awsVirginia"], "environment_strategy": "time"}
    facts = ClusterFacts(busy={"west": 2})
    chain, chosen = target_run(
        _run({"cluster": "", "environment": "", "epochs": 1}), spec, CLUSTERS, facts
    )
    assert chosen == EAST1 and chain.cluster == "east-1"
    assert chain.params == {"cluster": "east-1", "environment": "awsVirginia", "epochs": 1}
    asked, chosen = target_run(
        _run({"cluster": "mine"}), spec, CLUSTERS, facts, environment="dgxCloudCalifornia",
        given={"cluster"},
    )  # fmt: skip
    assert chosen == WEST and asked.cluster == "west" and asked.params == {"cluster": "mine"}
    nowhere, chosen = target_run(
        _run({"environment": ""}), {"environments": ["production"]}, CLUSTERS, facts
    )
    assert chosen is None and nowhere.cluster is None
    assert nowhere.params == {"environment": "production"}
    plain = _run({"environment": "x"})
    assert target_run(plain, {}, CLUSTERS, facts) == (plain, None)


def test_a_canonical_document_read_back_validates_again() -> None:
    """Defaults written out (environment_strategy: ordered with no environments, logs,
    retry_enabled, notifications without a webhook secret) are accepted when sent back."""
    state = _workflow({"config": {"notifications": {"enabled": False}}})
    assert state.spec["environment_strategy"] == "ordered" and state.spec["environments"] == []
    again = parse_document(dict(state.document))
    assert again.model_dump(mode="json") == state.document
