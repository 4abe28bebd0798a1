"""Workflow shape: run settings, schedule, notifications, params and the graph's form."""

from __future__ import annotations

import datetime

import pytest

from reconciler.specs import parse_document
from reconciler.specs.workflow import WorkflowDocument
from tests.specs.spec_examples import DELETE, RawDocument, changed, errors_of, example

NIGHTLY = example("Workflow", "nightly-eval")
DURATION_HELP = "use a number and a unit (ms, s, m, h, d), e.g. '30s'"


def parse_workflow(document: RawDocument) -> WorkflowDocument:
    parsed = parse_document(document)
    assert isinstance(parsed, WorkflowDocument)
    return parsed


def test_the_example_reads_as_written() -> None:
    spec = parse_workflow(NIGHTLY).spec
    assert spec.config.timeout_seconds == 7200
    assert spec.config.retry_delay_seconds == 30
    assert spec.config.schedule is not None
    assert spec.config.schedule.timezone is None
    provision = spec.workflows.provision
    assert [n.id for n in provision.nodes] == ["wait_endpoint", "eval_job", "report"]
    assert provision.nodes[1].previous_node_inputs == {"wait_endpoint": "endpoint_url"}
    assert provision.nodes[1].user_inputs["gpus"] == 1
    assert spec.workflows.deprovision is None


def test_minimal_workflow_gets_defaults() -> None:
    spec = {"workflows": {"provision": {"nodes": [{"id": "only", "type": "noop"}]}}}
    parsed = parse_workflow(changed(NIGHTLY, "spec", spec)).spec
    assert (parsed.priority, parsed.trigger, parsed.suspend) == ("medium", "manual", False)
    assert (parsed.config.retries, parsed.config.timeout_seconds) == (0, None)
    assert parsed.workflows.provision.edges == []


@pytest.mark.parametrize("path", ["spec.config.timeout", "spec.config.retry_delay"])
def test_config_durations_are_checked(path: str) -> None:
    assert errors_of(changed(NIGHTLY, path, "2 hours")) == [
        (path, f"invalid duration '2 hours': {DURATION_HELP}")
    ]
    assert errors_of(changed(NIGHTLY, path, 30)) == [
        (path, "expected a duration such as '30s' or '5m', got 30")
    ]


def test_retries_are_not_negative() -> None:
    assert errors_of(changed(NIGHTLY, "spec.config.retries", -1)) == [
        ("spec.config.retries", "Input should be greater than or equal to 0")
    ]


def test_priority_and_trigger_are_closed_sets() -> None:
    assert errors_of(changed(NIGHTLY, "spec.priority", "urgent")) == [
        ("spec.priority", "Input should be 'low', 'medium', 'high' or 'critical'")
    ]
    assert errors_of(changed(NIGHTLY, "spec.trigger", "on_push")) == [
        ("spec.trigger", "Input should be 'on_change' or 'manual'")
    ]


@pytest.mark.parametrize("cron", ["0 0 * * 1", "*/15 * * * *", "@daily", "0 9 * * MON-FRI"])
def test_cron_expressions_are_accepted(cron: str) -> None:
    parse_workflow(changed(NIGHTLY, "spec.config.schedule.cron", cron))


@pytest.mark.parametrize("cron", ["every night", "0 0 * *", "@sometimes"])
def test_cron_that_is_not_one_is_rejected(cron: str) -> None:
    assert errors_of(changed(NIGHTLY, "spec.config.schedule.cron", cron)) == [
        (
            "spec.config.schedule.cron",
            f"cron {cron!r} is not a cron expression: five fields (minute hour day month "
            "weekday), e.g. '0 0 * * 1', or a macro such as @daily",
        )
    ]


def test_schedule_timezone_is_optional_text() -> None:
    schedule = parse_workflow(
        changed(NIGHTLY, "spec.config.schedule.timezone", "Europe/Paris")
    ).spec.config.schedule
    assert schedule is not None
    assert schedule.timezone == "Europe/Paris"


def test_notification_events_are_a_subset_without_repeats() -> None:
    assert errors_of(changed(NIGHTLY, "spec.config.notifications.events", ["start", "done"])) == [
        (
            "spec.config.notifications.events.1",
            "Input should be 'start', 'complete', 'fail' or 'cancel'",
        )
    ]
    assert errors_of(changed(NIGHTLY, "spec.config.notifications.events", ["fail", "fail"])) == [
        ("spec.config.notifications.events", "events lists fail more than once")
    ]


def test_notification_webhook_is_http() -> None:
    assert errors_of(changed(NIGHTLY, "spec.config.notifications.webhook", "hooks")) == [
        (
            "spec.config.notifications.webhook",
            "'hooks' is not an http(s) URL, e.g. 'https://host/path'",
        )
    ]


def test_user_params_take_any_plain_value() -> None:
    params: RawDocument = {
        "n": 3,
        "ratio": 0.5,
        "on": True,
        "none": None,
        "list": [1, "a"],
        "map": {"k": [{}]},
    }
    assert parse_workflow(changed(NIGHTLY, "spec.user_params", params)).spec.user_params == params


def test_user_params_reject_values_that_are_not_plain() -> None:
    value = {"a": [1, {"b": datetime.date(2024, 1, 1)}]}
    assert errors_of(changed(NIGHTLY, "spec.user_params.when", value)) == [
        (
            "spec.user_params.when",
            "a[1].b: a date (2024-01-01) is not a plain value (string, number, boolean, null, "
            "list or mapping); quote it to pass it as text",
        )
    ]


@pytest.mark.parametrize("node_id", ["1st", "has space", "dot.ted", "x" * 64])
def test_node_ids_are_identifiers(node_id: str) -> None:
    assert errors_of(changed(NIGHTLY, "spec.workflows.provision.nodes.0.id", node_id)) == [
        (
            "spec.workflows.provision.nodes.0.id",
            f"node id {node_id!r} is not an identifier: letters, digits, '_' and '-', "
            "starting with a letter or '_', at most 63 chars (it is used in ${{ id.output }})",
        )
    ]


def test_node_type_is_any_text_here() -> None:
    # Unknown step types are the validator's to report, against the step catalogue.
    node = parse_workflow(
        changed(NIGHTLY, "spec.workflows.provision.nodes.0.type", "not_a_step")
    ).spec.workflows.provision.nodes[0]
    assert node.type == "not_a_step"


def test_node_retries_and_timeout() -> None:
    path = "spec.workflows.provision.nodes.2"
    document = changed(changed(NIGHTLY, f"{path}.retries", 2), f"{path}.timeout", "90s")
    node = parse_workflow(document).spec.workflows.provision.nodes[2]
    assert (node.retries, node.timeout_seconds) == (2, 90)
    assert errors_of(changed(NIGHTLY, f"{path}.timeout", "soon")) == [
        (f"{path}.timeout", f"invalid duration 'soon': {DURATION_HELP}")
    ]


def test_previous_node_inputs_map_ids_to_output_keys() -> None:
    path = "spec.workflows.provision.nodes.1.previous_node_inputs.wait_endpoint"
    assert errors_of(changed(NIGHTLY, path, ["endpoint_url"])) == [
        (path, "Input should be a valid string")
    ]


def test_graph_needs_nodes_and_edges_name_source_and_dest() -> None:
    assert errors_of(changed(NIGHTLY, "spec.workflows.provision.nodes", [])) == [
        (
            "spec.workflows.provision.nodes",
            "List should have at least 1 item after validation, not 0",
        )
    ]
    assert errors_of(changed(NIGHTLY, "spec.workflows.provision.edges.0.dest", DELETE)) == [
        ("spec.workflows.provision.edges.0.dest", "Field required")
    ]


def test_deprovision_graph_sits_beside_provision() -> None:
    graph = {
        "nodes": [{"id": "drop", "type": "undeploy_model", "user_inputs": {"deployment": "x"}}]
    }
    spec = parse_workflow(changed(NIGHTLY, "spec.workflows.deprovision", graph)).spec
    assert spec.workflows.deprovision is not None
    assert spec.workflows.deprovision.nodes[0].id == "drop"
    assert errors_of(changed(NIGHTLY, "spec.workflows.teardown", graph)) == [
        ("spec.workflows.teardown", "Extra inputs are not permitted")
    ]
