"""The step catalogue (JSON Schema per step type), ``reconciler steps``, and validate's
checks of node inputs against it, on graphs of known good and bad shapes."""

from __future__ import annotations

import argparse
import json
import textwrap

import jsonschema
import pytest
import yaml
from flow_template import FLOW_TEMPLATE

from reconciler.cli import steps_cmd
from reconciler.core.step_types import (
    CATALOGUE,
    FLOW_FRAMEWORK_STEP_TYPES,
    WORKFLOW_STEP_TYPES,
    catalogue_entries,
)
from reconciler.core.validation.repo import ValidateOptions, validate_sources
from reconciler.load.documents import SourceFile


def main(argv: list[str]) -> int:
    """``reconciler steps ARGS`` as the CLI runs it (parser of the subcommand, then run)."""
    parser = argparse.ArgumentParser(prog="reconciler steps")
    steps_cmd.configure(parser)
    return steps_cmd.run(parser.parse_args(argv[1:]))


# --- the catalogue itself -------------------------------------------------------------


def test_every_step_type_declares_json_schemas_for_inputs_and_outputs() -> None:
    for entry in catalogue_entries(workflow_only=False):
        assert entry["description"], entry["name"]
        for part in ("inputs", "outputs"):
            schema = entry[part]
            jsonschema.Draft202012Validator.check_schema(schema)
            assert schema["type"] == "object"
            assert set(schema["required"]) <= set(schema["properties"]), (entry["name"], part)
        assert "node_timeout" in entry["inputs"]["properties"], entry["name"]


@pytest.mark.parametrize(
    ("step_type", "required", "outputs"),
    [
        # the spec's table of step types is the minimum
        ("noop", set(), set()),
        ("fail", {"message"}, set()),
        ("http_request", {"method", "url"}, {"status", "body", "json"}),
        ("wait_ready", {"deployment"}, {"endpoint_url"}),
        # image is required on a kubernetes Cluster and refused on a local one (validate
        # checks it against the Cluster), so the catalogue alone requires only the cluster
        ("k8s_job", {"cluster"}, {"logs", "exit_code", "outputs"}),
        ("add_model", set(), {"model_id"}),
        ("scale_deployment", set(), {"workers"}),
        # the flow framework's names, with the inputs and outputs its templates use
        (
            "create_connector",
            {"name", "description", "version", "protocol", "parameters", "credential", "actions"},
            {"connector_id"},
        ),
        ("delete_connector", {"connector_id"}, {"connector_id"}),
        ("register_remote_model", {"name", "connector_id"}, {"model_id", "register_model_status"}),
        (
            "register_local_pretrained_model",
            {"name", "version", "model_format"},
            {"model_id", "register_model_status"},
        ),
        ("deploy_model", set(), {"endpoint_url", "workers", "model_id", "deploy_model_status"}),
        ("undeploy_model", set(), {"success"}),
        ("delete_model", {"model_id"}, {"model_id"}),
    ],
)
def test_signatures(step_type: str, required: set[str], outputs: set[str]) -> None:
    signature = CATALOGUE[step_type]
    assert signature.required == required
    assert outputs <= signature.outputs
    assert step_type in WORKFLOW_STEP_TYPES


def test_flow_framework_names_take_their_model_id_from_previous_nodes() -> None:
    for step_type in ("deploy_model", "undeploy_model", "delete_model"):
        assert "model_id" in CATALOGUE[step_type].inputs
    assert set(FLOW_FRAMEWORK_STEP_TYPES) <= set(WORKFLOW_STEP_TYPES)
    assert CATALOGUE["create_connector"].undo == "delete_connector"
    assert CATALOGUE["register_remote_model"].undo == "delete_model"
    assert CATALOGUE["deploy_model"].undo == "undeploy_model"


def test_steps_command_prints_the_catalogue_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in printed] == list(WORKFLOW_STEP_TYPES)
    assert all(set(entry) == {"name", "description", "inputs", "outputs"} for entry in printed)
    http = next(entry for entry in printed if entry["name"] == "http_request")
    assert http["inputs"]["required"] == ["method", "url"]
    assert http["outputs"]["properties"]["status"] == {"type": "integer"}


def test_steps_command_text_lists_inputs_and_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps"]) == 0
    out = capsys.readouterr().out
    assert "create_connector: create a connector" in out
    assert "    in   connector_id: string, required" in out
    assert "    out  model_id: string" in out
    assert "check_secret" not in out  # internal chain steps are not offered to workflows


# --- validate: graphs of known shapes ---------------------------------------------------


def validate(body: str, name: str = "w") -> list[str]:
    text = textwrap.dedent(
        f"""\
        apiVersion: reconciler/v1
        kind: Workflow
        metadata:
          name: {name}
        spec:
        """
    ) + textwrap.indent(textwrap.dedent(body), "  ")
    result = validate_sources(
        [SourceFile("w.yaml", text.encode())], parser=None, options=ValidateOptions(), host=None
    )
    return [d.format() for d in result.diagnostics]


def test_the_flow_framework_template_validates_unchanged() -> None:
    template = yaml.safe_load(FLOW_TEMPLATE)
    spec = {k: template[k] for k in ("description", "use_case", "workflows")}
    assert validate(yaml.safe_dump(spec, sort_keys=False)) == []


GOOD = {
    "noop-and-fail": """\
        workflows:
          provision:
            nodes:
              - {id: a, type: noop, user_inputs: {delay: 1s}}
              - {id: b, type: fail, user_inputs: {message: no, until_attempt: 2}}
            edges: [{source: a, dest: b}]
        """,
    "http-all-inputs": """\
        workflows:
          provision:
            nodes:
              - id: call
                type: http_request
                user_inputs:
                  method: POST
                  url: http://127.0.0.1:8080/x
                  headers: {X-A: b}
                  body: {any: [1, 2]}
                  expect_status: [200, 2xx]
                  timeout: 5s
        """,
    "placeholders-defer-types": """\
        user_params: {n: 3, wait: 2s}
        workflows:
          provision:
            nodes:
              - {id: a, type: noop, user_inputs: {delay: "${{ wait }}"}}
              - id: b
                type: fail
                user_inputs: {message: "try ${{ n }}", until_attempt: "${{ n }}"}
        """,
    "node-timeout-on-any-type": """\
        workflows:
          provision:
            nodes:
              - {id: a, type: noop, user_inputs: {node_timeout: 2m}}
              - {id: c, type: delete_connector, user_inputs: {connector_id: c1, node_timeout: 10}}
        """,
    "passed-outputs-fill-required-inputs": """\
        workflows:
          provision:
            nodes:
              - id: reg
                type: register_local_pretrained_model
                user_inputs:
                  name: huggingface/sentence-transformers/all-MiniLM-L6-v2
                  version: 1.0.1
                  model_format: TORCH_SCRIPT
              - {id: dep, type: deploy_model, previous_node_inputs: {reg: model_id}}
              - {id: undep, type: undeploy_model, previous_node_inputs: {dep: model_id}}
              - {id: del, type: delete_model, previous_node_inputs: {dep: model_id}}
            edges: [{source: undep, dest: del}]
        """,
}


@pytest.mark.parametrize("shape", sorted(GOOD))
def test_good_graphs_give_no_diagnostics(shape: str) -> None:
    assert validate(GOOD[shape]) == []


BAD = {
    "wrong-type": (
        """\
        workflows:
          provision:
            nodes:
              - {id: b, type: fail, user_inputs: {message: 7, until_attempt: two}}
        """,
        [
            "w.yaml:9:54: error: input 'message' of node 'b' (fail) must be a string, got 7",
            "w.yaml:9:72: error: input 'until_attempt' of node 'b' (fail) must be an integer, "
            "got 'two'",
        ],
    ),
    "missing-required": (
        """\
        workflows:
          provision:
            nodes:
              - id: c
                type: create_connector
                user_inputs: {name: n, description: d, version: 1, protocol: http}
        """,
        [
            f"w.yaml:11:24: error: node 'c' (create_connector) is missing required input '{name}'"
            for name in ("actions", "credential", "parameters")
        ],
    ),
    "unknown-input-did-you-mean": (
        """\
        workflows:
          provision:
            nodes:
              - {id: h, type: http_request, user_inputs: {methd: GET, url: http://x}}
        """,
        [
            "w.yaml:9:52: error: node 'h' (http_request) is missing required input 'method'",
            "w.yaml:9:53: warning: input 'methd' is not used by step type 'http_request' "
            "(did you mean 'method'?)",
        ],
    ),
    "enum-and-nested-items": (
        """\
        workflows:
          provision:
            nodes:
              - id: c
                type: create_connector
                user_inputs:
                  name: n
                  description: d
                  version: "1"
                  protocol: ftp
                  parameters: {model: m}
                  credential: {api_key: k}
                  actions: [{action_type: predict, url: "https://api.openai.com/v1"}, 3]
        """,
        [
            "w.yaml:15:23: error: input 'protocol' of node 'c' (create_connector) must be one "
            "of 'http', 'aws_sigv4', got 'ftp'",
            "w.yaml:18:81: error: input 'actions[1]' of node 'c' (create_connector) must be an "
            "object, got 3",
        ],
    ),
    "duplicate-id-still-checks-inputs": (
        """\
        workflows:
          provision:
            nodes:
              - {id: a, type: noop}
              - {id: a, type: fail, user_inputs: {until_attempt: 0}}
        """,
        [
            "w.yaml:10:16: error: duplicate node id 'a' in provision (first used by node #1)",
            "w.yaml:10:44: error: node 'a' (fail) is missing required input 'message'",
            "w.yaml:10:60: error: input 'until_attempt' of node 'a' (fail) must be at least 1, "
            "got 0",
        ],
    ),
    "bad-node-timeout": (
        """\
        workflows:
          provision:
            nodes:
              - {id: a, type: noop, user_inputs: {node_timeout: soon}}
              - {id: b, type: noop, user_inputs: {node_timeout: true}}
        """,
        [
            "w.yaml:9:59: error: invalid duration 'soon': use a number and a unit "
            "(ms, s, m, h, d), e.g. '30s'",
            "w.yaml:10:59: error: input 'node_timeout' of node 'b' (noop) must be a string or "
            "a number, got True",
        ],
    ),
    "header-values-are-strings": (
        """\
        workflows:
          provision:
            nodes:
              - id: h
                type: http_request
                user_inputs: {method: GET, url: http://x, headers: {X-N: 1}}
        """,
        [
            "w.yaml:11:68: error: input 'headers.X-N' of node 'h' (http_request) must be a "
            "string, got 1",
        ],
    ),
    "every-node-checked-after-the-first-error": (
        """\
        workflows:
          provision:
            nodes:
              - {id: a, type: delete_model}
              - {id: b, type: delete_connector, user_inputs: {connector_id: 5}}
              - {id: c, type: noop, user_inputs: {delay: [1]}}
        """,
        [
            "w.yaml:9:11: error: node 'a' (delete_model) is missing required input 'model_id'",
            "w.yaml:10:71: error: input 'connector_id' of node 'b' (delete_connector) must be "
            "a string, got 5",
            "w.yaml:11:52: error: input 'delay' of node 'c' (noop) must be a string or a "
            "number, got [1]",
        ],
    ),
}


@pytest.mark.parametrize("shape", sorted(BAD))
def test_bad_graphs_give_positioned_diagnostics(shape: str) -> None:
    body, expected = BAD[shape]
    assert validate(body) == [f"{line} (Workflow/w)" for line in expected]
