"""A document that fails its schema still gets its other checks, and unknown fields a hint.

A bad ``metadata.name`` used to hide every graph and reference problem of the same object
until it was fixed; each case here puts one schema problem next to one such problem and
expects both lines. Where the schema itself found the part another check reads malformed,
that check is skipped rather than repeating the problem in other words.
"""

# ruff: noqa: E501  (expected output lines are kept whole, as validate prints them)

from __future__ import annotations

from reconciler.core.validation.repo import validate_sources
from reconciler.load.documents import SourceFile

BAD_NAME = "metadata.name 'Bad_Name' is not a lowercase DNS label (a-z, 0-9, '-', 1-63 chars, starting and ending alphanumeric)"

WORKFLOW = """\
apiVersion: reconciler/v1
kind: Workflow
metadata:
  name: {name}
spec:
  workflows:
    provision:
      nodes:
        - id: pause
          type: noop
          user_inputs:
            delay: 5 minutes
"""

DEPLOYMENT = """\
apiVersion: reconciler/v1
kind: Deployment
metadata:
  name: Bad_Name
spec:
  endpoint_name: chat
  model: phi-3-5-mni
  deploy_config:
    concurrent_requests: 10
    avg_sequence_length: 100
    avg_context_length: 102
"""

MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata:
  name: phi-3-5-mini
spec:
  modality: llm
  source:
    provider_type: hugging_face
    uri: microsoft/Phi-3.5-mini-instruct
    revison: main
"""


def lines(*files: tuple[str, str]) -> list[str]:
    result = validate_sources([SourceFile(name, text.encode()) for name, text in files])
    return [d.format() for d in result.diagnostics]


def test_a_bad_name_does_not_hide_a_bad_duration_in_a_node() -> None:
    assert lines(("wf.yaml", WORKFLOW.format(name="Bad_Name"))) == [
        f"wf.yaml:4:9: error: {BAD_NAME} (Workflow/Bad_Name)",
        "wf.yaml:12:20: error: invalid duration '5 minutes': use a number and a unit (ms, s, m, h, d), e.g. '30s' (Workflow/Bad_Name)",
    ]


def test_the_same_duration_alone_gives_the_same_line() -> None:
    assert lines(("wf.yaml", WORKFLOW.format(name="good-name"))) == [
        "wf.yaml:12:20: error: invalid duration '5 minutes': use a number and a unit (ms, s, m, h, d), e.g. '30s' (Workflow/good-name)",
    ]


def test_a_bad_name_does_not_hide_a_dangling_reference() -> None:
    model = MODEL.replace("    revison", "    revision")
    assert lines(("dep.yaml", DEPLOYMENT), ("model.yaml", model)) == [
        f"dep.yaml:4:9: error: {BAD_NAME} (Deployment/Bad_Name)",
        "dep.yaml:7:10: error: Model 'phi-3-5-mni' does not exist (did you mean 'phi-3-5-mini'?) (Deployment/Bad_Name)",
    ]


def test_a_malformed_graph_is_reported_once_by_the_schema() -> None:
    """A node is not a mapping: the graph checks would only say it again, so they do not
    run, and the delay of the well-formed node is reported once the schema is satisfied."""
    text = WORKFLOW.format(name="Bad_Name").replace(
        "      nodes:\n", "      nodes:\n        - just a string\n"
    )
    found = lines(("wf.yaml", text))
    assert found[0] == f"wf.yaml:4:9: error: {BAD_NAME} (Workflow/Bad_Name)"
    assert len(found) == 2 and "spec.workflows.provision.nodes.0" in found[1], found


def test_a_malformed_reference_field_skips_the_reference_check() -> None:
    text = DEPLOYMENT.replace("model: phi-3-5-mni", "model: [phi-3-5-mni]")
    found = lines(("dep.yaml", text))
    assert found[0] == f"dep.yaml:4:9: error: {BAD_NAME} (Deployment/Bad_Name)"
    assert not any("does not exist" in line for line in found), found


def test_unknown_fields_get_a_did_you_mean_at_every_depth() -> None:
    text = MODEL.replace("  name: phi-3-5-mini\n", "  name: phi-3-5-mini\n  lables: {}\n").replace(
        "spec:\n", "spec:\n  dispaly_name: chat model\n"
    )
    assert lines(("model.yaml", text)) == [
        "model.yaml:5:3: error: unknown field 'metadata.lables' (did you mean 'labels'?) (Model/phi-3-5-mini)",
        "model.yaml:7:3: error: unknown field 'spec.dispaly_name' (did you mean 'display_name'?) (Model/phi-3-5-mini)",
        "model.yaml:12:5: error: unknown field 'spec.source.revison' (did you mean 'revision'?) (Model/phi-3-5-mini)",
    ]


def test_a_workflow_spec_typo_gets_a_did_you_mean() -> None:
    text = WORKFLOW.format(name="good-name").replace("spec:\n", "spec:\n  descriptoin: x\n")
    assert lines(("wf.yaml", text))[0] == (
        "wf.yaml:6:3: error: unknown field 'spec.descriptoin' (did you mean 'description'?) (Workflow/good-name)"
    )


def test_an_unknown_field_with_nothing_close_gets_no_guess() -> None:
    text = MODEL.replace("    revison: main", "    zzzzzz: main")
    assert lines(("model.yaml", text)) == [
        "model.yaml:10:5: error: unknown field 'spec.source.zzzzzz' (Model/phi-3-5-mini)",
    ]
